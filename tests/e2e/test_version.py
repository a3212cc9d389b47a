"""The Elasticsearch version a server reports: 9.5 by default, as the connectors service 9.5 requires,
or what KEYPLANE_ES_VERSION says."""

from __future__ import annotations

from pathlib import Path

from elasticsearch import Elasticsearch

from keyplane import ES_VERSION
from tests.e2e.server import PASSWORD, Server, on_store


def _reported(server: Server) -> str:
    info = Elasticsearch(server.url, basic_auth=("elastic", PASSWORD)).info()
    return str(info["version"]["number"])


def _accepted_by_connectors(reported: str, service: str) -> bool:
    """The connectors service's startup rule: the same major, a minor no older than its own."""
    (major, minor), (own_major, own_minor) = (tuple(int(p) for p in v.split(".")[:2]) for v in (reported, service))
    return major == own_major and minor >= own_minor


def test_the_default_version_is_accepted_by_the_connectors_service_of_the_same_minor(server: Server) -> None:
    assert _reported(server) == ES_VERSION == "9.5.0"
    assert _accepted_by_connectors(_reported(server), "9.5.2")
    assert not _accepted_by_connectors(_reported(server), "9.6.0")


def test_a_setting_overrides_the_reported_version(tmp_path: Path) -> None:
    with on_store(tmp_path, extra_env={"KEYPLANE_ES_VERSION": "9.6.1"}) as srv:
        assert _reported(srv) == "9.6.1"
