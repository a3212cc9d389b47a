"""Elasticsearch's limits (nesting, ids) and values PostgreSQL cannot hold as such (NUL, long text).

Every case answers the same on SQLite and PostgreSQL, and that answer is Elasticsearch's: a 4xx
with its reason, or success with the value stored and read back exactly.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.e2e.server import PASSWORD, Server

JSON = {"Content-Type": "application/json"}
DEPTH_REASON = "The nested depth of the query exceeds the maximum nested depth for queries set in"


def _send(http: httpx.Client, method: str, path: str, text: str) -> httpx.Response:
    return http.request(method, path, content=text.encode(), headers=JSON)


def _objects(depth: int) -> str:
    """JSON text of ``depth`` nested objects: {"a":{"a":...1...}}."""
    return '{"a":' * depth + "1" + "}" * depth


def _bools(depth: int) -> str:
    """A query of ``depth`` nested queries: bool inside bool, a match_all innermost."""
    return '{"bool":{"must":[' * (depth - 1) + '{"match_all":{}}' + "]}}" * (depth - 1)


def _error(res: httpx.Response, status: int = 400) -> dict:
    assert res.status_code == status, res.text
    return res.json()["error"]


@pytest.fixture
def log_start(server: Server) -> int:
    return len(server.output())


def _no_tracebacks(server: Server, start: int) -> None:
    """The server logged no error since ``start`` (its log is shared by the whole session)."""
    assert "Traceback" not in server.output()[start:]


# -- request nesting -----------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1001, 1024, 1030, 5000])
def test_bodies_deeper_than_1000_levels_are_refused(
    http: httpx.Client, server: Server, log_start: int, depth: int
) -> None:
    for text in ("[" * depth + "]" * depth, '{"metadata":' + _objects(depth - 1) + "}"):
        err = _error(_send(http, "POST", "/_security/api_key", text))
        assert err["type"] == "x_content_parse_exception"
        assert "Document nesting depth (1001) exceeds the maximum allowed (1000" in err["reason"]
    _no_tracebacks(server, log_start)


def test_a_body_of_1000_levels_reaches_the_api(http: httpx.Client) -> None:
    # The parser takes it; the API then applies its own rule (here the flattened depth limit).
    res = _send(http, "POST", "/_security/api_key", '{"name":"k","metadata":' + _objects(998) + "}")
    assert _error(res)["type"] == "document_parsing_exception"


# -- flattened fields: API-key metadata, profile labels ----------------------------------------------------


def test_api_key_metadata_deeper_than_the_flattened_limit_is_refused(
    http: httpx.Client, server: Server, log_start: int
) -> None:
    ok = _send(http, "POST", "/_security/api_key", '{"name":"k20","metadata":' + _objects(20) + "}")
    assert ok.status_code == 200, ok.text
    key_id = ok.json()["id"]
    for method, path, text in [
        ("POST", "/_security/api_key", '{"name":"k21","metadata":' + _objects(21) + "}"),
        ("PUT", f"/_security/api_key/{key_id}", '{"metadata":' + _objects(21) + "}"),
        ("POST", "/_security/api_key/_bulk_update", f'{{"ids":["{key_id}"],"metadata":' + _objects(300) + "}"),
        (
            "POST",
            "/_security/api_key/grant",
            f'{{"grant_type":"password","username":"elastic","password":"{PASSWORD}",'
            '"api_key":{"name":"g","metadata":' + _objects(260) + "}}",
        ),
    ]:
        err = _error(_send(http, method, path, text))
        assert err["type"] == "document_parsing_exception", (path, err)
        assert err["root_cause"][0]["type"] == "document_parsing_exception"
        assert err["caused_by"] == {
            "type": "illegal_argument_exception",
            "reason": "The provided [flattened] field [metadata_flattened] exceeds the maximum depth limit of [20].",
        }
    # Nothing was written: the stored key keeps its metadata, and listing works for everyone.
    got = http.get("/_security/api_key", params={"id": key_id}).json()["api_keys"][0]
    assert got["metadata"] == httpx.Response(200, content=_objects(20)).json()
    assert http.get("/_security/api_key").status_code == 200
    assert http.post("/_security/_query/api_key", json={}).json()["total"] == 1
    _no_tracebacks(server, log_start)


def test_arrays_do_not_count_towards_the_flattened_depth(http: httpx.Client) -> None:
    metadata = "[" * 50 + _objects(20) + "]" * 50
    res = _send(http, "POST", "/_security/api_key", '{"name":"arrays","metadata":{"list":' + metadata + "}}")
    assert res.status_code == 400  # 21 objects: the metadata object plus 20 inside
    res = _send(http, "POST", "/_security/api_key", '{"name":"arrays","metadata":{"list":' + "[" * 50 + _objects(19))
    assert res.status_code == 400  # malformed (unclosed): still a 400
    text = '{"name":"arrays","metadata":{"list":' + "[" * 50 + _objects(19) + "]" * 50 + "}}"
    assert _send(http, "POST", "/_security/api_key", text).status_code == 200


def _profile_uid(http: httpx.Client) -> str:
    http.put("/_security/user/pat", json={"password": "pat-secret", "roles": []}).raise_for_status()
    res = http.post(
        "/_security/profile/_activate", json={"grant_type": "password", "username": "pat", "password": "pat-secret"}
    )
    return res.json()["uid"]


def test_profile_labels_follow_the_flattened_limit(http: httpx.Client, server: Server, log_start: int) -> None:
    uid = _profile_uid(http)
    path = f"/_security/profile/{uid}/_data"
    assert _send(http, "POST", path, '{"labels":' + _objects(20) + "}").status_code == 200
    err = _error(_send(http, "POST", path, '{"labels":{"b":' + _objects(20) + "}}"))
    assert err["caused_by"]["reason"] == (
        "The provided [flattened] field [user_profile.labels] exceeds the maximum depth limit of [20]."
    )
    err = _error(_send(http, "POST", path, '{"labels":' + '{"a":' * 20 + '{"z":1}' + "}" * 20 + "}"))
    assert err["type"] == "document_parsing_exception"
    labels = http.get(f"/_security/profile/{uid}").json()["profiles"][0]["labels"]
    assert labels == httpx.Response(200, content=_objects(20)).json()
    _no_tracebacks(server, log_start)


def test_deep_profile_data_is_stored_and_read_back(http: httpx.Client) -> None:
    uid = _profile_uid(http)
    assert _send(http, "POST", f"/_security/profile/{uid}/_data", '{"data":{"app":' + _objects(900) + "}}").is_success
    res = http.get(f"/_security/profile/{uid}", params={"data": "app"})
    assert res.status_code == 200, res.text
    assert res.content.count(b'{"a":') == 900


def test_profile_suggest_refuses_a_name_that_is_not_a_string(http: httpx.Client) -> None:
    for name in (_objects(300), "[" * 300 + "]" * 300, '{"a":1}'):
        err = _error(_send(http, "POST", "/_security/profile/_suggest", '{"name":' + name + "}"))
        assert err["type"] == "x_content_parse_exception"
        assert "[name]" in err["reason"]


# -- query nesting ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["api_key", "user", "role"])
def test_queries_nest_at_most_30_deep(http: httpx.Client, server: Server, log_start: int, api: str) -> None:
    path = f"/_security/_query/{api}"
    assert _send(http, "POST", path, '{"query":' + _bools(30) + "}").status_code == 200
    for depth in (31, 300):  # deeper bodies fail at the parser's 1000 levels
        err = _error(_send(http, "POST", path, '{"query":' + _bools(depth) + "}"))
        assert err["type"] == "illegal_argument_exception"
        assert err["reason"].startswith(DEPTH_REASON)
    _no_tracebacks(server, log_start)


def test_aggregation_filters_nest_at_most_30_deep(http: httpx.Client) -> None:
    body = '{"size":0,"aggs":{"f":{"filter":' + _bools(31) + "}}}"
    err = _error(_send(http, "POST", "/_security/_query/api_key", body))
    assert err["reason"].startswith(DEPTH_REASON)


# -- NUL characters -----------------------------------------------------------------------------------------


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_nul_in_credentials_is_an_authentication_failure(server: Server, log_start: int) -> None:
    cases = [
        _basic("el\x00astic", PASSWORD),
        _basic("elastic", PASSWORD + "\x00"),
        {"Authorization": "ApiKey " + base64.b64encode(b"id\x00x:secret").decode()},
        {"Authorization": "Bearer " + base64.b64encode(b"tok\x00en").decode()},
    ]
    for headers in cases:
        res = httpx.get(server.url + "/_security/_authenticate", headers=headers)
        assert res.status_code == 401, (headers, res.text)
        assert res.json()["error"]["type"] == "security_exception"
    _no_tracebacks(server, log_start)


@pytest.mark.parametrize(
    "path",
    [
        "/_security/user/a%00b",
        "/_security/role/a%00b",
        "/_security/role_mapping/a%00b",
        "/_security/privilege/a%00b/c",
        "/_connector/a%00b",
        "/_connector/_sync_job/a%00b",
        "/_connector/_secret/a%00b",
    ],
)
def test_nul_in_a_path_id_is_not_found(http: httpx.Client, server: Server, log_start: int, path: str) -> None:
    res = http.get(path)
    assert res.status_code == 404, res.text
    _no_tracebacks(server, log_start)


def test_nul_in_lookups_by_query_parameter(http: httpx.Client, server: Server, log_start: int) -> None:
    assert http.get("/_security/api_key", params={"id": "a\x00b"}).status_code == 404
    missing = http.get("/_security/api_key", params={"name": "missing"})
    res = http.get("/_security/api_key", params={"name": "a\x00b"})
    assert (res.status_code, res.json()) == (missing.status_code, missing.json())
    res = http.get("/_security/profile/a%00b")
    assert res.status_code == 200 and res.json()["profiles"] == []
    _no_tracebacks(server, log_start)


def test_nul_in_values_is_stored_faithfully(http: httpx.Client, server: Server, log_start: int) -> None:
    created = http.post("/_security/api_key", json={"name": "n\x00m", "metadata": {"k\x00": ["v\x00", "w"], "é": "è"}})
    assert created.status_code == 200, created.text
    key = http.get("/_security/api_key", params={"name": "n\x00m"}).json()["api_keys"][0]
    assert key["name"] == "n\x00m" and key["metadata"] == {"k\x00": ["v\x00", "w"], "é": "è"}
    for field, value in (("metadata.k\x00", "w"), ("metadata.é", "è")):
        assert http.post("/_security/_query/api_key", json={"query": {"term": {field: value}}}).json()["total"] == 1
    found = http.post("/_security/_query/api_key", json={"query": {"term": {"metadata.k\x00": "v\x00"}}}).json()
    assert found["total"] == 1
    found = http.post("/_security/_query/api_key", json={"query": {"prefix": {"name": "n\x00"}}}).json()
    assert found["total"] == 1
    aggs = http.post(
        "/_security/_query/api_key", json={"size": 0, "aggs": {"t": {"terms": {"field": "metadata.k\x00"}}}}
    ).json()["aggregations"]["t"]["buckets"]
    assert sorted(b["key"] for b in aggs) == ["v\x00", "w"]

    put = http.put("/_connector/c%00d", json={"index_name": "search-nul", "name": "x\x00y", "service_type": "s\x00"})
    assert put.status_code == 201, put.text
    got = http.get("/_connector/c%00d").json()
    assert (got["id"], got["name"], got["service_type"]) == ("c\x00d", "x\x00y", "s\x00")
    listed = http.get("/_connector", params={"service_type": "s\x00"}).json()
    assert [c["id"] for c in listed["results"]] == ["c\x00d"]
    _no_tracebacks(server, log_start)


# -- ids and long values -------------------------------------------------------------------------------------


def test_document_ids_are_at_most_512_bytes(http: httpx.Client, server: Server, log_start: int) -> None:
    assert http.put("/_connector/" + "c" * 512, json={"index_name": "search-a"}).status_code == 201
    assert http.put("/_connector/" + "é" * 256, json={"index_name": "search-b"}).status_code == 201
    for connector_id, size in (("c" * 513, 513), ("é" * 257, 514)):
        err = _error(http.put("/_connector/" + connector_id, json={"index_name": "search-c"}))
        assert err["type"] == "action_request_validation_exception"
        assert err["reason"].endswith(f"must be no longer than 512 bytes but was: {size};")
    err = _error(http.put("/_connector/_secret/" + "s" * 600, json={"value": "v"}))
    assert "must be no longer than 512 bytes but was: 600" in err["reason"]
    mapping = {"roles": ["r"], "enabled": True, "rules": {"field": {"username": "*"}}}
    assert http.put("/_security/role_mapping/" + "m" * 499, json=mapping).status_code == 200
    err = _error(http.put("/_security/role_mapping/" + "m" * 500, json=mapping))
    assert "id [role-mapping_" in err["reason"] and "but was: 513" in err["reason"]
    # Looking up longer ids is simply not finding them.
    assert http.get("/_connector/" + "c" * 5000).status_code == 404
    assert http.get("/_security/role_mapping/" + "m" * 5000).status_code == 404
    assert http.get("/_connector/_sync_job/" + "j" * 5000).status_code == 404
    _no_tracebacks(server, log_start)


def test_long_values_are_stored_on_both_stores(http: httpx.Client, server: Server, log_start: int) -> None:
    # Past PostgreSQL's varchar(512) and its ~2700-byte btree entries; SQLite never minded.
    big, service_type = "x" * 1_000_000, "s" * 5000
    res = http.put("/_connector/long", json={"index_name": "search-long", "name": big, "service_type": service_type})
    assert res.status_code == 201, res.text
    got = http.get("/_connector/long").json()
    assert got["name"] == big and got["service_type"] == service_type
    listed = http.get("/_connector", params={"service_type": service_type}).json()["results"]
    assert [c["id"] for c in listed] == ["long"]
    _no_tracebacks(server, log_start)


def test_deep_role_mapping_rules_are_checked(http: httpx.Client) -> None:
    rules = '{"all":[' * 100 + '{"field":{"username":"*"}}' + "]}" * 100
    res = _send(http, "PUT", "/_security/role_mapping/deep", '{"roles":["r"],"enabled":true,"rules":' + rules + "}")
    assert res.status_code == 200, res.text
    bad = '{"all":[' * 450 + '{"nope":1}' + "]}" * 450
    res = _send(http, "PUT", "/_security/role_mapping/bad", '{"roles":["r"],"enabled":true,"rules":' + bad + "}")
    assert _error(res)["type"] == "parse_exception"


@pytest.mark.parametrize(
    ("method", "path", "text"),
    [
        ("PUT", "/_security/role/deep", '{"metadata":' + _objects(900) + "}"),
        ("PUT", "/_security/user/deep", '{"password":"deep-secret","roles":[],"metadata":' + _objects(900) + "}"),
        ("PUT", "/_security/privilege", '{"app":{"p":{"actions":["a:b"],"metadata":' + _objects(900) + "}}}"),
        (
            "PUT",
            "/_security/role_mapping/deep",
            '{"roles":["r"],"enabled":true,"rules":{"field":{"username":"*"}},"metadata":' + _objects(900) + "}",
        ),
        ("PUT", "/_connector/deep/_last_sync", '{"sync_cursor":' + _objects(900) + "}"),
    ],
)
def test_values_as_deep_as_a_body_are_stored(http: httpx.Client, method: str, path: str, text: str) -> None:
    http.put("/_connector/deep", json={"index_name": "search-deep"}).raise_for_status()
    assert _send(http, method, path, text).is_success


def test_application_privilege_ids_stay_within_the_document_id_limit(http: httpx.Client) -> None:
    name = "p" * 600
    answer = http.put("/_security/privilege", json={"app": {name: {"actions": ["a:b"]}}})
    assert answer.status_code == 400
    assert f"id [application-privilege_app:{name}] is too long, must be no longer than 512 bytes" in answer.text
    assert http.get("/_security/privilege/app").json() == {}


# Filters reach as deep as Elasticsearch's 1000-level body allows; terms, with a query per bucket, less far.
@pytest.mark.parametrize(("kind", "levels"), [("filter", 330), ("terms", 150)])
def test_aggregations_as_deep_as_a_body_allows(http: httpx.Client, kind: str, levels: int) -> None:
    http.post("/_security/api_key", json={"name": "deep-aggs"}).raise_for_status()
    agg: dict[str, Any] = {"filter": {"match_all": {}}} if kind == "filter" else {"terms": {"field": "name"}}
    root = dict(agg)
    current = root
    for level in range(levels - 1):
        child = dict(agg)
        current["aggs"] = {f"a{level}": child}
        current = child
    # One database query per bucket: slow at this depth, but an answer, not a failure.
    answer = http.post("/_security/_query/api_key", json={"size": 0, "aggs": {"top": root}}, timeout=60)
    assert answer.status_code == 200, answer.text[:300]
    assert answer.content.count(b'"doc_count":1') == levels
