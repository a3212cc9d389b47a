"""Which audit event types a node writes (KEYPLANE_AUDIT_EVENTS_INCLUDE/EXCLUDE)."""

from __future__ import annotations

import pytest

from keyplane.audit.events import EVENT_TYPES, enabled_events
from keyplane.config import Settings


def test_all_is_every_type_and_excludes_win() -> None:
    assert enabled_events(("_all",), None) == EVENT_TYPES
    chosen = enabled_events(("_all",), ("authentication_success", "access_granted"))
    assert chosen == EVENT_TYPES - {"authentication_success", "access_granted"}
    assert enabled_events(("access_denied", "security_config_change"), ("access_denied",)) == {"security_config_change"}
    assert enabled_events(("_all",), ("_all",)) == frozenset()


def test_elasticsearch_names_copied_from_elasticsearch_yml_are_accepted() -> None:
    # Keyplane has no transport layer nor IP filter, but a setting naming their events still starts.
    assert "connection_denied" in enabled_events(("connection_denied", "tampered_request"), None)


def test_unknown_names_are_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError) as refused:
        enabled_events(("access_granted", "acess_denied"), ("authentication_sucess",))
    message = str(refused.value)
    assert "acess_denied, authentication_sucess" in message
    assert "KEYPLANE_AUDIT_EVENTS_INCLUDE/EXCLUDE" in message and "access_denied" in message


def test_the_default_is_elasticsearchs_selection() -> None:
    """Every type but authentication_success, which alone would add a line per request."""
    chosen = enabled_events(Settings.from_env({}).audit_include, None)
    assert chosen == EVENT_TYPES - {
        "authentication_success",
        "realm_authentication_failed",
        "connection_granted",
        "system_access_granted",
    }
