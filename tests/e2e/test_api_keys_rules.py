"""API-key rules through the official client that go past creating and listing keys."""

from __future__ import annotations

import pytest
from elasticsearch import AuthorizationException, Elasticsearch

from tests.e2e.server import Server


def test_a_key_reads_itself_without_privileges(es: Elasticsearch, server: Server) -> None:
    bare = es.security.create_api_key(name="bare", role_descriptors={"nothing": {"cluster": []}})
    other = es.security.create_api_key(name="other")
    key = Elasticsearch(server.url, api_key=bare["encoded"])
    own = key.security.get_api_key(id=bare["id"]).body["api_keys"]
    assert [k["name"] for k in own] == ["bare"] and "limited_by" not in own[0]
    # Its owner's roles (limited_by) and other keys need manage_api_key or manage_own_api_key.
    with pytest.raises(AuthorizationException):
        key.security.get_api_key(id=bare["id"], with_limited_by=True)
    with pytest.raises(AuthorizationException):
        key.security.get_api_key(id=other["id"])
    with pytest.raises(AuthorizationException):
        key.security.get_api_key()
