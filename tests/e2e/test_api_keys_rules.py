"""API-key rules through the official client that go past creating and listing keys."""

from __future__ import annotations

import httpx
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


def test_grant_client_authentication_needs_a_jwt(es: Elasticsearch, http: httpx.Client) -> None:
    # The Python client has no client_authentication argument: the docs' JSON is sent as it is.
    es.security.put_user(username="tia", password="tia-secret", roles=[])
    token = es.security.get_token(grant_type="password", username="tia", password="tia-secret")["access_token"]
    client_auth = {"scheme": "SharedSecret", "value": "whatever"}
    by_token = {"grant_type": "access_token", "access_token": token, "api_key": {"name": "k"}}
    plain = http.post("/_security/api_key/grant", json={**by_token, "client_authentication": client_auth})
    assert plain.status_code == 400
    assert plain.json()["error"]["type"] == "security_exception"
    assert (
        plain.json()["error"]["reason"] == "[client_authentication] not supported with the supplied access_token type"
    )
    by_password = {"grant_type": "password", "username": "tia", "password": "tia-secret", "api_key": {"name": "k"}}
    with_password = http.post("/_security/api_key/grant", json={**by_password, "client_authentication": client_auth})
    assert with_password.status_code == 400
    assert "[client_authentication] is not supported for grant_type [password]" in with_password.text
    scheme = http.post(
        "/_security/api_key/grant", json={**by_token, "client_authentication": {"scheme": "Basic", "value": "x"}}
    )
    assert scheme.status_code == 400 and "[client_authentication.scheme] must be set to [SharedSecret]" in scheme.text
    # Without client authentication the same token grants as before.
    assert http.post("/_security/api_key/grant", json=by_token).status_code == 200
