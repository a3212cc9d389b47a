"""Elasticsearch's wire conventions, checked with raw HTTP."""

from __future__ import annotations

import gzip
import zlib

import httpx
from elasticsearch import Elasticsearch

from tests.e2e.server import PASSWORD, Server

VENDOR8 = "application/vnd.elasticsearch+json; compatible-with=8"
VENDOR9 = "application/vnd.elasticsearch+json; compatible-with=9"


def test_info_and_head(http: httpx.Client) -> None:
    res = http.get("/")
    assert res.status_code == 200
    assert res.headers["x-elastic-product"] == "Elasticsearch"
    body = res.json()
    assert body["version"]["number"].startswith("9.")
    assert body["version"]["build_flavor"] == "default"
    assert body["version"]["distribution"] == "keyplane"
    assert body["tagline"] == "You Know, for Search"
    assert {"name", "cluster_name", "cluster_uuid"} <= set(body)
    head = http.head("/")
    assert head.status_code == 200 and head.content == b""


def test_license_xpack_health(http: httpx.Client) -> None:
    lic = http.get("/_license").json()["license"]
    assert lic["status"] == "active" and lic["type"] in ("trial", "basic")
    assert http.get("/_xpack").status_code == 200
    health = http.get("/_cluster/health", params={"wait_for_status": "yellow"}).json()
    assert health["status"] == "green" and health["timed_out"] is False


def test_compatible_media_types_are_echoed(http: httpx.Client) -> None:
    res = http.get("/_security/_authenticate", headers={"Accept": VENDOR8})
    assert res.status_code == 200
    assert res.headers["content-type"] == "application/vnd.elasticsearch+json;compatible-with=8"
    res = http.put("/_security/role/r", headers={"Accept": VENDOR9, "Content-Type": VENDOR9}, content=b'{"cluster":[]}')
    assert res.status_code == 200
    assert res.headers["content-type"].endswith("compatible-with=9")
    # JS clients append text/plain to Accept
    assert http.get("/", headers={"Accept": VENDOR9 + ",text/plain"}).status_code == 200


def test_media_type_errors(http: httpx.Client) -> None:
    res = http.get("/", headers={"Accept": "application/vnd.elasticsearch+json; compatible-with=7"})
    assert res.status_code == 400
    assert "Accept version must be either version 9 or 8, but found 7" in res.json()["error"]["reason"]
    res = http.put("/_security/role/r", headers={"Accept": VENDOR8, "Content-Type": VENDOR9}, content=b"{}")
    assert res.status_code == 400
    assert "compatible versions must match" in res.json()["error"]["reason"]
    res = http.put("/_security/role/r", headers={"Content-Type": "text/plain"}, content=b"{}")
    assert res.status_code == 406
    assert res.json() == {"error": "Content-Type header [text/plain] is not supported", "status": 406}


def test_unknown_path_and_wrong_method(http: httpx.Client) -> None:
    res = http.get("/_nothing_here")
    assert res.status_code == 400
    assert res.json() == {"error": "no handler found for uri [/_nothing_here] and method [GET]"}
    res = http.patch("/_security/role/x")
    assert res.status_code == 405
    assert res.headers["allow"] == "DELETE,GET,POST,PUT"
    assert res.json()["error"].startswith("Incorrect HTTP method for uri [/_security/role/x] and method [PATCH]")
    options = http.options("/_security/role/x")
    assert options.status_code == 200 and options.headers["allow"] == "DELETE,GET,POST,PUT"


def test_unauthenticated_everywhere(server: Server) -> None:
    res = httpx.get(server.url + "/_nothing_here")
    assert res.status_code == 401
    assert res.headers.get_list("www-authenticate") == [
        'Basic realm="security", charset="UTF-8"',
        'Bearer realm="security"',
        "ApiKey",
    ]
    assert res.headers["x-elastic-product"] == "Elasticsearch"


def test_pretty_and_filter_path(http: httpx.Client) -> None:
    http.put("/_security/user/pat", json={"password": "secret-pw", "roles": ["viewer"], "metadata": {"a": 1}})
    pretty = http.get("/_security/user/pat", params={"pretty": "true"})
    assert pretty.text.startswith("{\n")
    res = http.get("/_security/user/pat", params={"filter_path": "pat.roles,pat.metadata.a"})
    assert res.json() == {"pat": {"roles": ["viewer"], "metadata": {"a": 1}}}
    res = http.get("/_security/user/pat", params={"filter_path": "-**.metadata,-*.email"})
    assert "metadata" not in res.json()["pat"] and "email" not in res.json()["pat"]
    assert "roles" in res.json()["pat"]
    res = http.get("/_security/user", params={"filter_path": "*.username"})
    assert res.json()["pat"] == {"username": "pat"}


def test_path_segments_are_decoded_one_by_one(http: httpx.Client) -> None:
    assert http.put("/_security/role/a%2Fb%2Cc", json={"cluster": []}).status_code == 200
    assert "a/b,c" in http.get("/_security/role").json()
    http.put("/_security/role/d", json={"cluster": []})
    both = http.get("/_security/role/d%2Ca%2Fb%2Cc").json()
    assert "d" in both


def test_boolean_params_are_strict(http: httpx.Client) -> None:
    assert http.get("/_security/user", params={"with_profile_uid": "true"}).status_code == 200
    assert http.get("/_security/user?with_profile_uid").status_code == 200
    res = http.get("/_security/user", params={"with_profile_uid": "yes"})
    assert res.status_code == 400
    assert res.json()["error"]["reason"] == "Failed to parse value [yes] as only [true] or [false] are allowed."


def test_unrecognized_parameter(http: httpx.Client) -> None:
    res = http.get("/_security/user", params={"bogus": "1"})
    assert res.status_code == 400
    assert res.json()["error"]["reason"] == "request [/_security/user] contains unrecognized parameter: [bogus]"


def test_compressed_requests_and_answers(server: Server, http: httpx.Client) -> None:
    # The official client's http_compress gzips request bodies and accepts gzipped answers.
    client = Elasticsearch(server.url, basic_auth=("elastic", PASSWORD), http_compress=True)
    key = client.security.create_api_key(name="zipped", metadata={"padding": "x" * 2000})
    assert client.security.get_api_key(id=key["id"])["api_keys"][0]["metadata"]["padding"] == "x" * 2000

    plain = {"content-type": "application/json"}
    created = http.post(
        "/_security/api_key", content=gzip.compress(b'{"name":"gz"}'), headers={**plain, "content-encoding": "gzip"}
    )
    assert created.status_code == 200 and created.json()["name"] == "gz"
    deflated = http.post(
        "/_security/api_key", content=zlib.compress(b'{"name":"df"}'), headers={**plain, "content-encoding": "deflate"}
    )
    assert deflated.json()["name"] == "df"
    broken = http.post("/_security/api_key", content=b"not gzip", headers={**plain, "content-encoding": "gzip"})
    assert broken.status_code == 400 and broken.json()["error"]["type"] == "illegal_argument_exception"
    bomb = gzip.compress(b" " * (101 * 1024 * 1024))  # more than http.max_content_length once inflated
    assert (
        http.post("/_security/api_key", content=bomb, headers={**plain, "content-encoding": "gzip"}).status_code == 413
    )

    with httpx.Client(base_url=server.url, auth=("elastic", PASSWORD)) as raw:
        big = raw.get("/_security/privilege/_builtin", headers={"accept-encoding": "gzip"})
        assert big.headers["content-encoding"] == "gzip" and "all" in big.json()["cluster"]
        small = raw.get("/_security/_authenticate", headers={"accept-encoding": "gzip"})
        assert "content-encoding" not in small.headers  # too small to be worth it
        refused = raw.get("/_security/privilege/_builtin", headers={"accept-encoding": "gzip;q=0"})
        assert "content-encoding" not in refused.headers


def test_opaque_id_is_returned(http: httpx.Client) -> None:
    assert http.get("/", headers={"X-Opaque-Id": "trace-42"}).headers["x-opaque-id"] == "trace-42"
    assert http.get("/nope", headers={"X-Opaque-Id": "trace-43"}).headers["x-opaque-id"] == "trace-43"
    assert "x-opaque-id" not in http.get("/").headers


def test_bodies_come_by_length_or_in_chunks_and_requests_without_either_have_none(http: httpx.Client) -> None:
    # Transfer-Encoding: chunked (httpx streams an iterator so): the dispatcher reads every chunk.
    parts = iter([b'{"password": "wire-pw-1", ', b'"roles": ["viewer"], "full_name": "Chunked"}'])
    res = http.put("/_security/user/wire_chunked", content=parts, headers={"content-type": "application/json"})
    assert res.status_code == 200, res.text
    assert http.get("/_security/user/wire_chunked").json()["wire_chunked"]["full_name"] == "Chunked"
    # Content-Length: the usual way.
    res = http.post("/_security/user/wire_chunked", json={"password": "wire-pw-2", "roles": [], "full_name": "Sized"})
    assert res.status_code == 200 and res.json() == {"created": False}
    # Neither header: no body, so a write that needs one says it is missing (and nothing waits for one).
    res = http.put("/_security/user/wire_chunked")
    assert res.status_code == 400 and res.json()["error"]["type"] in (
        "parse_exception",
        "action_request_validation_exception",
    )
    http.delete("/_security/user/wire_chunked")
