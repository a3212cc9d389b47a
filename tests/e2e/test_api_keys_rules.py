"""API-key rules through the official client that go past creating and listing keys."""

from __future__ import annotations

import base64

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


def test_clone_keeps_roles_owner_and_expiry(es: Elasticsearch, server: Server, http: httpx.Client) -> None:
    es.security.put_role(name="keys", cluster=["manage_own_api_key"])
    es.security.put_user(username="kim", password="kim-secret", roles=["keys"])
    kim = Elasticsearch(server.url, basic_auth=("kim", "kim-secret"))
    descriptors = {"reader": {"cluster": ["monitor"], "indices": [{"names": ["logs-*"], "privileges": ["read"]}]}}
    source = kim.security.create_api_key(
        name="source", expiration="1d", role_descriptors=descriptors, metadata={"team": "a"}
    )
    # Cloning needs clone_api_key or manage_api_key: owning the source is not enough.
    with pytest.raises(AuthorizationException):
        kim.security.clone_api_key(api_key=source["encoded"], name="mine")
    clone = es.security.clone_api_key(api_key=source["encoded"], name="copy").body
    assert set(clone) == {"id", "name", "expiration", "api_key", "encoded"} and clone["name"] == "copy"
    (original,) = es.security.get_api_key(id=source["id"], with_limited_by=True)["api_keys"]
    (copy,) = es.security.get_api_key(id=clone["id"], with_limited_by=True)["api_keys"]
    assert copy["expiration"] == original["expiration"]  # the source's expiry time, not a new day
    assert copy["username"] == "kim" and copy["realm"] == original["realm"]  # the source's owner
    assert copy["role_descriptors"] == original["role_descriptors"]
    assert copy["limited_by"] == original["limited_by"]
    assert copy["metadata"] == {"team": "a", "_cloned_from": source["id"]}
    assert Elasticsearch(server.url, api_key=clone["encoded"]).security.authenticate()["username"] == "kim"
    # expiration null: never expires; metadata given: replaces the source's.
    forever = es.security.clone_api_key(
        body={"api_key": source["encoded"], "name": "forever", "expiration": None, "metadata": {"b": 1}}
    ).body
    (got,) = es.security.get_api_key(id=forever["id"])["api_keys"]
    assert "expiration" not in got and got["metadata"] == {"b": 1, "_cloned_from": source["id"]}
    later = es.security.clone_api_key(api_key=source["encoded"], name="later", expiration="30d").body
    assert later["expiration"] > original["expiration"]


def test_clone_refuses_bad_sources(es: Elasticsearch, http: httpx.Client) -> None:
    source = es.security.create_api_key(name="source")
    es.security.invalidate_api_key(ids=[source["id"]])
    cross = es.security.create_cross_cluster_api_key(name="cc", access={"search": [{"names": ["*"]}]})
    wrong = base64.b64encode(f"{source['id']}:not-the-secret".encode()).decode()
    for credential in (source["encoded"], cross["encoded"], wrong):
        refused = http.post("/_security/api_key/clone", json={"api_key": credential, "name": "x"})
        assert refused.status_code == 403 and refused.json()["error"]["reason"] == "Failed to clone API key"
    bad = http.post("/_security/api_key/clone", json={"api_key": "!!!", "name": "x"})
    assert bad.status_code == 400 and bad.json()["error"] == {
        "root_cause": [{"type": "status_exception", "reason": "invalid API key credential: invalid ApiKey value"}],
        "type": "status_exception",
        "reason": "invalid API key credential: invalid ApiKey value",
    }
    missing = http.put("/_security/api_key/clone", json={"name": "_x", "metadata": {"_cloned_from": "me"}})
    reason = missing.json()["error"]["reason"]
    assert missing.status_code == 400 and reason.startswith("Validation Failed: 1: api key credential is required;")
    assert (
        "api key name may not begin with an underscore" in reason and "metadata keys may not start with [_]" in reason
    )
    assert (
        http.post("/_security/api_key/clone", json={"api_key": "x", "name": "y", "role_descriptors": {}}).status_code
        == 400
    )


def test_search_after_takes_scalars_only(http: httpx.Client) -> None:
    for bad, found in (([[1, 2]], "START_ARRAY"), ([{"a": 1}], "START_OBJECT"), ([[[[[]]]]], "START_ARRAY")):
        answer = http.post("/_security/_query/api_key", json={"sort": ["name"], "search_after": bad})
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["root_cause"][0]["reason"] == (
            "Expected [VALUE_STRING] or [VALUE_NUMBER] or [VALUE_BOOLEAN] or [VALUE_NULL] "
            f"but found [{found}] inside search_after."
        )
    ok = http.post("/_security/_query/api_key", json={"sort": ["name"], "search_after": ["a"]})
    assert ok.status_code == 200


def test_cross_cluster_certificate_identity(es: Elasticsearch, http: httpx.Client) -> None:
    access = {"search": [{"names": ["logs-*"]}]}
    key = es.security.create_cross_cluster_api_key(name="cc", access=access, certificate_identity="CN=remote-.*")
    (got,) = es.security.get_api_key(id=key["id"])["api_keys"]
    assert got["certificate_identity"] == "CN=remote-.*"
    queried = es.security.query_api_keys(query={"ids": {"values": [key["id"]]}})["api_keys"][0]
    assert queried["certificate_identity"] == "CN=remote-.*"
    # The same value is a noop; another value or null is an update of its own (the client insists on access).
    path = f"/_security/cross_cluster/api_key/{key['id']}"
    assert http.put(path, json={"certificate_identity": "CN=remote-.*"}).json() == {"updated": False}
    assert es.security.update_cross_cluster_api_key(id=key["id"], access=access, certificate_identity="CN=other")[
        "updated"
    ]
    assert es.security.get_api_key(id=key["id"])["api_keys"][0]["certificate_identity"] == "CN=other"
    cleared = http.put(f"/_security/cross_cluster/api_key/{key['id']}", json={"certificate_identity": None})
    assert cleared.json() == {"updated": True}
    assert "certificate_identity" not in es.security.get_api_key(id=key["id"])["api_keys"][0]
    # Not a regular expression, or on a REST key: refused.
    bad = http.post(
        "/_security/cross_cluster/api_key", json={"name": "bad", "access": access, "certificate_identity": "CN=("}
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["reason"] == "Invalid certificate_identity format: [CN=(]. Must be a valid regex."
    rest = http.post("/_security/api_key", json={"name": "r", "certificate_identity": "CN=x"})
    assert rest.status_code == 400 and "unknown field [certificate_identity]" in rest.text
    plain = es.security.create_cross_cluster_api_key(name="plain", access=access)
    assert "certificate_identity" not in es.security.get_api_key(id=plain["id"])["api_keys"][0]
