"""The audit event types (Elasticsearch's names) and which of them a node writes."""

from __future__ import annotations

from collections.abc import Iterable

AUTHENTICATION_SUCCESS = "authentication_success"
AUTHENTICATION_FAILED = "authentication_failed"
REALM_AUTHENTICATION_FAILED = "realm_authentication_failed"
ANONYMOUS_ACCESS_DENIED = "anonymous_access_denied"
ACCESS_GRANTED = "access_granted"
ACCESS_DENIED = "access_denied"
RUN_AS_GRANTED = "run_as_granted"
RUN_AS_DENIED = "run_as_denied"
TAMPERED_REQUEST = "tampered_request"
SECURITY_CONFIG_CHANGE = "security_config_change"

# Every name Elasticsearch's logfile audit trail accepts in events.include/exclude. The transport and
# IP-filter ones never happen here (Keyplane has no transport layer nor IP filter), but are accepted so
# that settings copied from elasticsearch.yml work.
EVENT_TYPES = frozenset(
    {
        AUTHENTICATION_SUCCESS,
        AUTHENTICATION_FAILED,
        REALM_AUTHENTICATION_FAILED,
        ANONYMOUS_ACCESS_DENIED,
        ACCESS_GRANTED,
        ACCESS_DENIED,
        RUN_AS_GRANTED,
        RUN_AS_DENIED,
        TAMPERED_REQUEST,
        SECURITY_CONFIG_CHANGE,
        "connection_granted",
        "connection_denied",
        "system_access_granted",
    }
)
ALL = "_all"


def enabled_events(include: Iterable[str], exclude: Iterable[str] | None) -> frozenset[str]:
    """The event types to write; raises ValueError naming any unknown type (a start-up error)."""
    include = [name.strip() for name in include if name.strip()]
    exclude = [name.strip() for name in exclude or () if name.strip()]
    unknown = sorted({name for name in (*include, *exclude) if name != ALL and name not in EVENT_TYPES})
    if unknown:
        raise ValueError(
            f"unknown audit event type(s) {', '.join(unknown)} in KEYPLANE_AUDIT_EVENTS_INCLUDE/EXCLUDE; "
            f"known types: {ALL}, {', '.join(sorted(EVENT_TYPES))}"
        )
    chosen = set(EVENT_TYPES) if ALL in include else set(include)
    if ALL in exclude:
        return frozenset()
    return frozenset(chosen - set(exclude))
