"""API keys through the official Python client, as Elastic's docs use them."""

from __future__ import annotations

import base64
import time

import httpx
import pytest
from elasticsearch import (
    AuthenticationException,
    AuthorizationException,
    BadRequestError,
    Elasticsearch,
    NotFoundError,
)

from tests.e2e.server import PASSWORD, Server


def _key_client(server: Server, encoded: str) -> Elasticsearch:
    return Elasticsearch(server.url, api_key=encoded)


def test_docs_update_api_key_example(es: Elasticsearch, server: Server) -> None:
    key = es.security.create_api_key(name="my-api-key", role_descriptors={}, metadata={"application": "my-app"})
    assert key["encoded"] == base64.b64encode(f"{key['id']}:{key['api_key']}".encode()).decode()
    assert len(key["id"]) == 20 and len(key["api_key"]) == 22
    descriptors = {
        "role-a": {"indices": [{"names": ["*"], "privileges": ["write"]}]},
    }
    first = es.security.update_api_key(
        id=key["id"], role_descriptors=descriptors, metadata={"environment": {"level": 2}}, expiration="30d"
    )
    assert first.body == {"updated": True}
    second = es.security.update_api_key(
        id=key["id"], role_descriptors=descriptors, metadata={"environment": {"level": 2}}
    )
    assert second.body == {"updated": False}
    got = es.security.get_api_key(id=key["id"]).body["api_keys"][0]
    assert got["metadata"] == {"environment": {"level": 2}}
    assert got["role_descriptors"]["role-a"]["indices"][0]["privileges"] == ["write"]
    assert got["expiration"] > got["creation"] + 29 * 86_400_000


def test_docs_cross_cluster_example(es: Elasticsearch) -> None:
    key = es.security.create_cross_cluster_api_key(
        name="my-cross-cluster-api-key",
        access={"search": [{"names": ["logs*"]}]},
        metadata={"application": "search"},
    )
    updated = es.security.update_cross_cluster_api_key(
        id=key["id"], access={"replication": [{"names": ["archive"]}]}, metadata={"application": "replication"}
    )
    assert updated.body == {"updated": True}
    got = es.security.get_api_key(id=key["id"]).body["api_keys"][0]
    assert got["type"] == "cross_cluster"
    assert got["metadata"] == {"application": "replication"}
    assert got["role_descriptors"]["cross_cluster"]["cluster"] == ["cross_cluster_replication"]
    assert got["role_descriptors"]["cross_cluster"]["indices"] == [
        {
            "names": ["archive"],
            "privileges": ["cross_cluster_replication", "cross_cluster_replication_internal"],
            "allow_restricted_indices": False,
        }
    ]
    assert got["access"] == {"replication": [{"names": ["archive"], "allow_restricted_indices": False}]}
    again = es.security.update_cross_cluster_api_key(
        id=key["id"], access=got["access"], metadata={"application": "replication"}
    )
    assert again.body == {"updated": False}


def test_authentication_by_api_key_and_its_limits(es: Elasticsearch, server: Server) -> None:
    es.security.put_role(
        name="reader",
        cluster=["monitor", "manage_own_api_key"],
        indices=[{"names": ["logs-*"], "privileges": ["read"]}],
    )
    es.security.put_user(username="kim", password="kim-secret", roles=["reader"], full_name="Kim K")
    kim = Elasticsearch(server.url, basic_auth=("kim", "kim-secret"))
    key = kim.security.create_api_key(
        name="kim-key", expiration="1d", role_descriptors={"narrow": {"cluster": ["monitor", "manage_own_api_key"]}}
    )
    with_key = _key_client(server, key["encoded"])
    me = with_key.security.authenticate().body
    assert me["username"] == "kim" and me["roles"] == [] and me["full_name"] == "Kim K"
    assert me["authentication_type"] == "api_key"
    assert me["authentication_realm"] == {"name": "_es_api_key", "type": "_es_api_key"}
    assert me["api_key"] == {"id": key["id"], "name": "kim-key", "managed_by": "elasticsearch"}
    assert with_key.cluster.health()["status"] == "green"
    privileges = with_key.security.has_privileges(
        cluster=["monitor", "manage_api_key"], index=[{"names": ["logs-1"], "privileges": ["read"]}]
    ).body
    # The key's role grants no index privilege although its owner may read logs-*: an intersection.
    assert privileges["cluster"] == {"monitor": True, "manage_api_key": False}
    assert privileges["index"]["logs-1"]["read"] is False
    with pytest.raises(AuthorizationException) as denied:
        with_key.security.put_user(username="x", password="xxxxxx", roles=[])
    assert denied.value.body["error"]["reason"].startswith(
        f"action [cluster:admin/xpack/security/user/put] is unauthorized for API key id [{key['id']}] of user [kim]"
    )
    with pytest.raises(BadRequestError) as derived:
        with_key.security.create_api_key(name="child", role_descriptors={"r": {"cluster": ["all"]}})
    assert "creating derived api keys requires an explicit role descriptor" in derived.value.body["error"]["reason"]
    with pytest.raises(BadRequestError) as upd:
        with_key.security.update_api_key(id=key["id"], metadata={"a": 1})
    assert upd.value.body["error"]["reason"] == (
        "authentication via API key not supported: only the owner user can update an API key"
    )


def test_invalidated_expired_unknown_and_cross_cluster_keys_are_refused(es: Elasticsearch, server: Server) -> None:
    rest = es.security.create_api_key(name="short")
    expiring = es.security.create_api_key(name="tiny", expiration="1s")
    cc = es.security.create_cross_cluster_api_key(name="cc", access={"search": [{"names": ["*"]}]})
    es.security.invalidate_api_key(ids=[rest["id"]])
    with pytest.raises(AuthenticationException) as exc:
        _key_client(server, rest["encoded"]).security.authenticate()
    assert exc.value.body["error"]["additional_unsuccessful_credentials"] == (
        f"API key: api key [{rest['id']}] has been invalidated"
    )
    time.sleep(1.1)
    with pytest.raises(AuthenticationException) as exc:
        _key_client(server, expiring["encoded"]).security.authenticate()
    assert exc.value.body["error"]["additional_unsuccessful_credentials"] == "API key: api key is expired"
    with pytest.raises(AuthenticationException) as exc:
        _key_client(server, cc["encoded"]).security.authenticate()
    assert exc.value.body["error"]["reason"] == (
        f"authentication expected API key type of [rest], but API key [{cc['id']}] has type [cross_cluster]"
    )
    bogus = base64.b64encode(b"nope:secretsecretsecret12").decode()
    with pytest.raises(AuthenticationException) as exc:
        _key_client(server, bogus).security.authenticate()
    reason = exc.value.body["error"]["additional_unsuccessful_credentials"]
    assert reason == "API key: unable to find apikey with id nope"
    wrong = base64.b64encode(f"{expiring['id']}:wrongwrongwrongwrongwr".encode()).decode()
    with pytest.raises(AuthenticationException):
        _key_client(server, wrong).security.authenticate()


def test_get_query_and_invalidate(es: Elasticsearch, server: Server) -> None:
    es.security.put_role(name="own", cluster=["manage_own_api_key"])
    es.security.put_user(username="lea", password="lea-secret", roles=["own"])
    lea = Elasticsearch(server.url, basic_auth=("lea", "lea-secret"))
    mine = [lea.security.create_api_key(name=f"lea-{i}", metadata={"n": i}) for i in range(3)]
    admin_key = es.security.create_api_key(name="admin-key")
    with pytest.raises(AuthorizationException):
        lea.security.get_api_key()
    assert len(lea.security.get_api_key(owner=True)["api_keys"]) == 3
    assert lea.security.query_api_keys()["total"] == 3  # silently only her own
    assert es.security.query_api_keys()["total"] == 4
    page = es.security.query_api_keys(query={"prefix": {"name": "lea-"}}, sort=[{"name": "desc"}], size=2).body
    assert [k["name"] for k in page["api_keys"]] == ["lea-2", "lea-1"]
    assert page["api_keys"][0]["_sort"] == ["lea-2"]
    after = es.security.query_api_keys(
        query={"prefix": {"name": "lea-"}}, sort=[{"name": "desc"}], size=2, search_after=page["api_keys"][1]["_sort"]
    ).body
    assert [k["name"] for k in after["api_keys"]] == ["lea-0"]
    by_meta = es.security.query_api_keys(query={"term": {"metadata.n": 1}}).body
    assert [k["name"] for k in by_meta["api_keys"]] == ["lea-1"]
    aggs = es.security.query_api_keys(size=0, aggs={"owners": {"terms": {"field": "username"}}}).body
    buckets = {b["key"]: b["doc_count"] for b in aggs["aggregations"]["owners"]["buckets"]}
    assert buckets == {"lea": 3, "elastic": 1}
    with pytest.raises(NotFoundError) as missing:
        es.security.get_api_key(id="does-not-exist")
    assert missing.value.body == {"api_keys": []}
    with pytest.raises(AuthorizationException) as denied:
        lea.security.invalidate_api_key(ids=[admin_key["id"]])
    assert denied.value.body["error"]["reason"].endswith("[manage_api_key,manage_security,all]")
    done = lea.security.invalidate_api_key(owner=True).body
    assert sorted(done["invalidated_api_keys"]) == sorted(k["id"] for k in mine)
    assert done["error_count"] == 0
    again = lea.security.invalidate_api_key(owner=True).body
    assert again["invalidated_api_keys"] == [] and again["previously_invalidated_api_keys"] == []
    active = es.security.get_api_key(active_only=True).body["api_keys"]
    assert [k["name"] for k in active] == ["admin-key"]


def test_bulk_update_and_errors(es: Elasticsearch) -> None:
    a = es.security.create_api_key(name="a")
    b = es.security.create_api_key(name="b")
    cc = es.security.create_cross_cluster_api_key(name="cc", access={"search": [{"names": ["x"]}]})
    dead = es.security.create_api_key(name="dead")
    es.security.invalidate_api_key(ids=[dead["id"]])
    res = es.security.bulk_update_api_keys(
        ids=[a["id"], b["id"], cc["id"], dead["id"], "ghost"], metadata={"tag": "x"}
    ).body
    assert res["updated"] == [a["id"], b["id"]]
    assert res["noops"] == []
    details = res["errors"]["details"]
    assert res["errors"]["count"] == 3
    assert details[cc["id"]]["reason"] == "cannot update API key of type [cross_cluster] while expected type is [rest]"
    assert details[dead["id"]]["reason"] == f"cannot update invalidated API key [{dead['id']}]"
    assert details["ghost"] == {
        "type": "resource_not_found_exception",
        "reason": "no API key owned by requesting user found for ID [ghost]",
    }
    noop = es.security.bulk_update_api_keys(ids=[a["id"], b["id"]]).body
    assert noop == {"updated": [], "noops": [a["id"], b["id"]]}
    with pytest.raises(BadRequestError) as exc:
        es.security.update_api_key(id=a["id"], expiration="0")
    assert "API key expiration must be in the future" in exc.value.body["error"]["reason"]
    with pytest.raises(NotFoundError):
        es.security.update_api_key(id="ghost", metadata={})


def test_grant_with_password_and_token(es: Elasticsearch, server: Server) -> None:
    es.security.put_role(name="granter", cluster=["grant_api_key"])
    es.security.put_user(username="gus", password="gus-secret", roles=["granter"])
    es.security.put_role(name="target", cluster=["manage_token"])
    es.security.put_user(username="tia", password="tia-secret", roles=["target"])
    gus = Elasticsearch(server.url, basic_auth=("gus", "gus-secret"))
    key = gus.security.grant_api_key(
        grant_type="password", username="tia", password="tia-secret", api_key={"name": "for-tia"}
    )
    assert _key_client(server, key["encoded"]).security.authenticate()["username"] == "tia"
    token = es.security.get_token(grant_type="password", username="tia", password="tia-secret")
    assert token["type"] == "Bearer" and token["expires_in"] == 1200
    bearer = httpx.get(
        server.url + "/_security/_authenticate", headers={"Authorization": f"Bearer {token['access_token']}"}
    ).json()
    assert bearer["username"] == "tia" and bearer["authentication_type"] == "token"
    key2 = gus.security.grant_api_key(
        grant_type="access_token", access_token=token["access_token"], api_key={"name": "via-token"}
    )
    assert _key_client(server, key2["encoded"]).security.authenticate()["username"] == "tia"
    with pytest.raises(AuthorizationException) as bad:
        gus.security.grant_api_key(grant_type="password", username="tia", password="wrong-pw", api_key={"name": "nope"})
    assert bad.value.body["error"]["reason"] == "Failed to authenticate api key grant"
    invalidated = es.security.invalidate_token(token=token["access_token"]).body
    assert invalidated["invalidated_tokens"] == 1
    assert (
        httpx.get(
            server.url + "/_security/_authenticate", headers={"Authorization": f"Bearer {token['access_token']}"}
        ).status_code
        == 401
    )


def test_bulk_grant(es: Elasticsearch, server: Server) -> None:
    es.security.put_role(name="bulk-granter", cluster=["grant_api_key"])
    es.security.put_user(username="bea", password="bea-secret", roles=["bulk-granter"])
    es.security.put_role(name="bulk-target", cluster=["manage_token"])
    es.security.put_user(username="tom", password="tom-secret", roles=["bulk-target"])
    bea = Elasticsearch(server.url, basic_auth=("bea", "bea-secret"))
    tom = Elasticsearch(server.url, basic_auth=("tom", "tom-secret"))
    headers = {"content-type": "application/json", "accept": "application/json"}

    def bulk_grant(client: Elasticsearch, body: dict) -> dict:  # type: ignore[type-arg]
        return client.perform_request("POST", "/_security/api_key/_bulk_grant", headers=headers, body=body).body

    grant = {"grant_type": "password", "username": "tom", "password": "tom-secret"}
    out = bulk_grant(
        bea,
        {
            **grant,
            "api_keys": [
                {"name": "bulk-1", "expiration": "1d", "metadata": {"managed": True}},
                {"name": "bulk-2"},
            ],
        },
    )
    assert [k["name"] for k in out["created"]] == ["bulk-1", "bulk-2"] and "errors" not in out
    assert "expiration" in out["created"][0] and "expiration" not in out["created"][1]
    for key in out["created"]:
        me = _key_client(server, key["encoded"]).security.authenticate()
        assert me["username"] == "tom" and me["api_key"]["name"] == key["name"]
    got = es.security.get_api_key(id=out["created"][0]["id"]).body["api_keys"][0]
    assert got["metadata"] == {"managed": True} and got["username"] == "tom"

    with pytest.raises(AuthorizationException) as denied:
        bulk_grant(
            tom, {"grant_type": "password", "username": "bea", "password": "bea-secret", "api_keys": [{"name": "nope"}]}
        )
    assert denied.value.body["error"]["reason"] == (
        "action [cluster:admin/xpack/security/api_key/grant/bulk] is unauthorized for user [tom] with effective "
        "roles [bulk-target], this action is granted by the cluster privileges "
        "[grant_api_key,manage_api_key,manage_security,all]"
    )
    with pytest.raises(BadRequestError) as empty:
        bulk_grant(bea, grant)
    assert empty.value.body["error"]["type"] == "action_request_validation_exception"
    assert empty.value.body["error"]["reason"] == "Validation Failed: 1: [api_keys] must not be empty;"
    with pytest.raises(BadRequestError) as unnamed:
        bulk_grant(bea, {**grant, "api_keys": [{"expiration": "1d"}]})
    assert unnamed.value.body["error"]["type"] == "x_content_parse_exception"
    with pytest.raises(AuthorizationException) as wrong:
        bulk_grant(bea, {**grant, "password": "wrong", "api_keys": [{"name": "x"}]})
    assert wrong.value.body["error"]["reason"] == "Failed to authenticate api key grant"
    before = es.security.query_api_keys(query={"prefix": {"name": "bulk-"}}).body["total"]
    with pytest.raises(BadRequestError):  # one bad key fails the whole request: nothing is created
        bulk_grant(bea, {**grant, "api_keys": [{"name": "bulk-3"}, {"name": "bulk-4", "metadata": {"_x": 1}}]})
    assert es.security.query_api_keys(query={"prefix": {"name": "bulk-"}}).body["total"] == before


def test_last_used_is_recorded_without_a_write_per_request(es: Elasticsearch, server: Server) -> None:
    key = es.security.create_api_key(name="used")
    unused = es.security.create_api_key(name="unused")
    client = _key_client(server, key["encoded"])
    for _ in range(5):
        client.security.authenticate()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        got = es.security.get_api_key(id=key["id"]).body["api_keys"][0]
        if "last_used" in got:
            break
        time.sleep(0.2)
    assert got["last_used"] <= int(time.time() * 1000)
    assert "last_used" not in es.security.get_api_key(id=unused["id"]).body["api_keys"][0]
    used = es.security.query_api_keys(query={"exists": {"field": "last_used"}}, sort=[{"last_used": "desc"}]).body
    assert [k["id"] for k in used["api_keys"]] == [key["id"]]


def test_clear_cache_and_http_shapes(http: httpx.Client, es: Elasticsearch) -> None:
    key = es.security.create_api_key(name="c")
    res = http.post(f"/_security/api_key/{key['id']},other/_clear_cache").json()
    assert res["_nodes"]["failed"] == 0
    assert http.post("/_security/api_key/*/_clear_cache").status_code == 200


def test_api_key_bad_input(http: httpx.Client) -> None:
    def err(res: httpx.Response, status: int = 400) -> dict:
        assert res.status_code == status, res.text
        return res.json()["error"]

    assert err(http.post("/_security/api_key"))["reason"] == "request body is required"
    assert err(http.post("/_security/api_key", json={}))["reason"] == "Required [name]"
    assert "unknown field [nme]" in err(http.post("/_security/api_key", json={"name": "a", "nme": 1}))["reason"]
    e = err(http.post("/_security/api_key", json={"name": "_a", "metadata": {"_x": 1}}))
    assert e["reason"] == (
        "Validation Failed: 1: api key name may not begin with an underscore;"
        "2: API key metadata keys may not start with [_];"
    )
    e = err(http.post("/_security/api_key", json={"name": "a", "expiration": "10 parsecs"}))
    assert e["type"] == "x_content_parse_exception" and e["root_cause"][0]["type"] == "parse_exception"
    e = err(http.post("/_security/api_key", json={"name": "a", "role_descriptors": {"r": {"description": "x"}}}))
    assert e["root_cause"][0]["reason"] == "failed to parse role [r]. unexpected field [description]"
    e = err(http.post("/_security/api_key", json={"name": "a", "expiration": None}))
    assert "expiration doesn't support values of type: VALUE_NULL" in e["reason"]
    e = err(http.request("DELETE", "/_security/api_key", json={}))
    assert "One of [api key id(s), api key name, username, realm name] must be specified" in e["reason"]
    e = err(http.request("DELETE", "/_security/api_key", json={"ids": []}))
    assert e["root_cause"][0]["reason"] == "Validation Failed: 1: Field [ids] cannot be an empty array;"
    e = err(http.post("/_security/api_key/_bulk_update", json={"ids": []}))
    assert e["reason"] == "Validation Failed: 1: Field [ids] cannot be empty;"
    e = err(http.post("/_security/_query/api_key", json={"query": {"fuzzy": {"name": "a"}}}))
    assert e["reason"] == "Query type [fuzzy] is not currently supported in this context"
    e = err(http.post("/_security/_query/api_key", json={"query": {"term": {"id": "a"}}}))
    assert e["reason"] == "Field [id] is not allowed for querying or aggregation"
    e = err(http.post("/_security/_query/api_key", json={"aggs": {"m": {"max": {"field": "creation"}}}}))
    assert e["reason"] == "Unsupported API Keys agg [m] of type [max]"
    e = err(http.post("/_security/cross_cluster/api_key", json={"name": "c", "access": {}}))
    assert "must specify non-empty access for either [search] or [replication]" in str(e)
    e = err(
        http.post(
            "/_security/cross_cluster/api_key",
            json={"name": "c", "access": {"replication": [{"names": ["a"], "query": {"match_all": {}}}]}},
        )
    )
    assert "replication does not support document or field level security" in str(e)
    e = err(http.put("/_security/cross_cluster/api_key/x", json={}))
    assert "must update either [access] or [metadata] for cross-cluster API keys" in e["reason"]
    e = err(http.get("/_security/api_key", params={"id": "a", "username": "b"}))
    assert "username or realm name must not be specified" in e["reason"]
    assert http.get("/_security/api_key", params={"owner": "maybe"}).status_code == 400
    bad_header = httpx.get(
        str(http.base_url) + "/_security/_authenticate", headers={"Authorization": "ApiKey !!!not-base64"}
    )
    assert bad_header.status_code == 401


def test_admin_cannot_update_someone_elses_key_but_run_as_can(es: Elasticsearch, server: Server) -> None:
    es.security.put_role(name="own2", cluster=["manage_own_api_key"])
    es.security.put_user(username="max", password="max-secret", roles=["own2"])
    key = Elasticsearch(server.url, basic_auth=("max", "max-secret")).security.create_api_key(name="m")
    with pytest.raises(NotFoundError) as exc:
        es.security.update_api_key(id=key["id"], metadata={"a": 1})
    assert exc.value.body["error"]["reason"] == f"no API key owned by requesting user found for ID [{key['id']}]"
    as_max = es.options(headers={"es-security-runas-user": "max"})
    assert as_max.security.update_api_key(id=key["id"], metadata={"a": 1}).body == {"updated": True}


def test_pbkdf2_hash_is_selectable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    srv = Server(tmp_path)
    srv.env["KEYPLANE_API_KEY_HASH"] = "pbkdf2"
    srv.start()
    try:
        es = Elasticsearch(srv.url, basic_auth=("elastic", PASSWORD))
        key = es.security.create_api_key(name="slow")
        assert _key_client(srv, key["encoded"]).security.authenticate()["api_key"]["id"] == key["id"]
    finally:
        srv.stop()


def test_token_grants(es: Elasticsearch, server: Server) -> None:
    es.security.put_role(name="tokens", cluster=["manage_token"])
    es.security.put_user(username="tom", password="tom-secret", roles=["tokens"])
    tom = Elasticsearch(server.url, basic_auth=("tom", "tom-secret"))
    own = tom.security.get_token(grant_type="client_credentials").body
    assert "refresh_token" not in own and own["authentication"]["username"] == "tom"
    first = es.security.get_token(grant_type="password", username="tom", password="tom-secret").body
    refreshed = es.security.get_token(grant_type="refresh_token", refresh_token=first["refresh_token"]).body
    assert refreshed["access_token"] != first["access_token"]
    with pytest.raises(BadRequestError) as again:  # a refresh token works once
        es.security.get_token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert again.value.body["error"] == "invalid_grant"
    with pytest.raises(BadRequestError):
        es.security.get_token(grant_type="password", username="tom", password="wrong-password")
    done = es.security.invalidate_token(username="tom").body
    assert done["invalidated_tokens"] >= 1
    bearer = httpx.get(
        server.url + "/_security/_authenticate", headers={"Authorization": f"Bearer {refreshed['access_token']}"}
    )
    assert bearer.status_code == 401
