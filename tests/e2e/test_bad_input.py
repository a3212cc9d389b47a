"""Every parser answers bad input with an Elasticsearch 4xx, never a 500, and changes nothing."""

from __future__ import annotations

import base64
import socket

import httpx
import pytest

from tests.e2e.server import PASSWORD, Server


def _error(res: httpx.Response, status: int = 400) -> dict:
    assert res.status_code == status, res.text
    body = res.json()
    assert body["status"] == status
    assert {"root_cause", "type", "reason"} <= set(body["error"])
    return body["error"]


ROUTES = [
    ("PUT", "/_security/user/x"),
    ("PUT", "/_security/role/x"),
    ("POST", "/_security/role"),
    ("DELETE", "/_security/role"),
    ("PUT", "/_security/privilege"),
    ("POST", "/_security/user/x/_password"),
    ("POST", "/_security/_query/user"),
    ("POST", "/_security/_query/role"),
    ("POST", "/_security/user/_has_privileges"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_malformed_json(http: httpx.Client, method: str, path: str) -> None:
    err = _error(http.request(method, path, content=b'{"a": ', headers={"Content-Type": "application/json"}))
    assert err["type"] in ("x_content_parse_exception", "parse_exception")


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_not_an_object(http: httpx.Client, method: str, path: str) -> None:
    res = http.request(method, path, content=b"[1,2]", headers={"Content-Type": "application/json"})
    assert 400 <= res.status_code < 500, res.text


def test_user_field_errors(http: httpx.Client) -> None:
    err = _error(http.put("/_security/user/x", json={"password": "secret1", "roles": [], "bogus": 1}))
    assert err["reason"] == "failed to parse add user request. unexpected field [bogus]"
    err = _error(http.put("/_security/user/x", json={"password": 123456, "roles": []}))
    assert err["reason"] == "expected field [password] to be of type string, but found [VALUE_NUMBER] instead"
    err = _error(http.put("/_security/user/x", json={"password": "short", "roles": []}))
    assert err["reason"] == "Validation Failed: 1: passwords must be at least [6] characters long;"
    err = _error(http.put("/_security/user/x", json={"roles": []}))
    assert "password must be specified unless you are updating an existing user" in err["reason"]
    err = _error(http.put("/_security/user/x", json={"password_hash": "plain", "roles": []}))
    assert "supported hash" in err["reason"]
    err = _error(http.put("/_security/user/x", json={"password": "secret1", "roles": [], "metadata": {"_a": 1}}))
    assert "metadata keys may not start with [_]" in err["reason"]
    err = _error(http.put("/_security/user/%20x", json={"password": "secret1", "roles": []}))
    assert "Invalid username" in err["reason"]
    assert http.get("/_security/user/x").status_code == 404  # nothing was written


def test_empty_ids(http: httpx.Client) -> None:
    assert http.put("/_security/user/", json={"password": "secret1", "roles": []}).status_code in (400, 405)
    err = _error(http.put("/_security/role/%20", json={}))
    assert "Role names must be at least 1" in err["reason"]


def test_role_field_errors(http: httpx.Client) -> None:
    err = _error(http.put("/_security/role/r", json={"clusterz": []}))
    assert err == {**err, "type": "parse_exception", "reason": "failed to parse role [r]. unexpected field [clusterz]"}
    err = _error(http.put("/_security/role/r", json={"indices": [{"names": ["a"]}]}))
    assert err["reason"] == "failed to parse indices privileges for role [r]. missing required [privileges] field"
    err = _error(http.put("/_security/role/r", json={"indices": [{"names": [], "privileges": ["read"]}]}))
    assert err["reason"] == "failed to parse indices privileges for role [r]. [names] cannot be an empty array"
    err = _error(http.put("/_security/role/r", json={"cluster": ["fly"]}))
    assert err["type"] == "action_request_validation_exception"
    assert err["reason"].startswith("Validation Failed: 1: unknown cluster privilege [fly].")
    err = _error(http.put("/_security/role/r", json={"indices": [{"names": ["a"], "privileges": ["zap"]}]}))
    assert "unknown index privilege [zap]" in err["reason"]
    err = _error(http.put("/_security/role/r", json={"metadata": {"_x": 1}}))
    assert "metadata keys may not start with [_]" in err["reason"]
    err = _error(http.put("/_security/role/r", json={"cluster": 5}))
    assert err["type"] == "parse_exception"
    assert http.get("/_security/role/r").status_code == 404


def test_missing_body(http: httpx.Client) -> None:
    err = _error(http.put("/_security/role/r"))
    assert err["reason"] == "request body is required"


def test_query_errors(http: httpx.Client) -> None:
    err = _error(http.post("/_security/_query/user", json={"query": {"fuzzy": {"username": "x"}}}))
    assert err["reason"] == "Query type [fuzzy] is not currently supported in this context"
    err = _error(http.post("/_security/_query/user", json={"query": {"term": {"password": "x"}}}))
    assert err["reason"] == "Field [password] is not allowed for querying or aggregation"
    err = _error(http.post("/_security/_query/user", json={"from": -1}))
    assert "[from] parameter cannot be negative but was [-1]" in err["reason"]
    err = _error(http.post("/_security/_query/user", json={"size": "many"}))
    assert err["type"] == "x_content_parse_exception"
    err = _error(http.post("/_security/_query/user", json={"sizee": 1}))
    assert "unknown field [sizee]" in err["reason"]


def test_huge_body_is_refused(server: Server) -> None:
    """A declared length over the limit is refused before the body is read."""
    auth = base64.b64encode(f"elastic:{PASSWORD}".encode()).decode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            f"PUT /_security/role/r HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {200 * 1024 * 1024}\r\n\r\n{{".encode()
        )
        head = sock.recv(4096).decode()
    assert head.startswith("HTTP/1.1 413")


def test_has_privileges_errors(http: httpx.Client) -> None:
    err = _error(http.post("/_security/user/_has_privileges", json={"cluster": ["fly"]}))
    assert "unknown cluster privilege [fly]" in err["reason"]
    err = _error(http.post("/_security/user/_has_privileges", json={}))
    assert "must specify at least one privilege" in err["reason"]
