"""Forwarding content-index requests to an upstream cluster: a second Keyplane process plays the cluster.

The upstream holds the documents; the front holds the users, roles and API keys and authorizes every
request against them before it is forwarded with the front's own credentials.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from keyplane.config import Settings, SettingsError
from tests.e2e.server import PASSWORD, Server, free_port, on_store


@pytest.fixture
def admin(front: Server, upstream: Server) -> Iterator[httpx.Client]:
    for srv in (front, upstream):
        httpx.post(srv.url + "/_keyplane/_reset", auth=("elastic", PASSWORD)).raise_for_status()
    # The superuser's credentials as a default header, so that a request's own Authorization replaces them.
    elastic = "Basic " + base64.b64encode(f"elastic:{PASSWORD}".encode()).decode()
    with httpx.Client(base_url=front.url, headers={"Authorization": elastic}, timeout=10) as client:
        yield client


@pytest.fixture
def direct(upstream: Server) -> Iterator[httpx.Client]:
    """The upstream cluster itself, as its own administrator."""
    with httpx.Client(base_url=upstream.url, auth=("elastic", PASSWORD), timeout=10) as client:
        yield client


def _key(admin: httpx.Client, names: list[str], privileges: list[str]) -> dict[str, str]:
    answer = admin.post(
        "/_security/api_key",
        json={"name": "k", "role_descriptors": {"r": {"indices": [{"names": names, "privileges": privileges}]}}},
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"ApiKey {answer.json()['encoded']}"}


def _seed(admin: httpx.Client) -> None:
    for name, text in (("index-a", "alpha"), ("index-b", "beta")):
        answer = admin.put(f"/{name}/_doc/1", params={"refresh": "true"}, json={"text": text})
        assert answer.status_code == 201, answer.text


def _hit_indices(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return sorted(hit["_index"] for hit in answer.json()["hits"]["hits"])


def test_a_read_key_searches_its_index_through_the_front_and_nothing_else(
    admin: httpx.Client, direct: httpx.Client
) -> None:
    _seed(admin)
    # The documents are in the upstream cluster.
    assert direct.get("/index-a/_doc/1").json()["_source"] == {"text": "alpha"}
    reader = _key(admin, ["index-a"], ["read"])
    assert _hit_indices(admin.get("/index-a/_search", headers=reader)) == ["index-a"]
    refused = admin.get("/index-b/_search", headers=reader)
    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "security_exception"
    assert "on indices [index-b]" in refused.json()["error"]["reason"]
    assert admin.get("/index-a,index-b/_search", headers=reader).status_code == 403
    # Wildcards and "every index" expand over the indices the key may read, resolved upstream.
    assert _hit_indices(admin.get("/_search", headers=reader)) == ["index-a"]
    assert _hit_indices(admin.post("/index-*/_search", headers=reader, json={})) == ["index-a"]
    assert admin.get("/index-*/_count", headers=reader).json()["count"] == 1
    assert _hit_indices(admin.get("/nothing-*/_search", headers=reader)) == []
    assert admin.get("/index-a/_doc/1", headers=reader).json()["found"] is True
    assert admin.get("/index-b/_doc/1", headers=reader).status_code == 403
    assert admin.put("/index-a/_doc/2", headers=reader, json={"text": "no"}).status_code == 403
    # The superuser sees both, through the same path.
    assert _hit_indices(admin.get("/_search")) == ["index-a", "index-b"]


def test_index_metadata_is_filtered_by_the_callers_grants(admin: httpx.Client) -> None:
    _seed(admin)
    viewer = _key(admin, ["index-a"], ["view_index_metadata"])
    answer = admin.get("/index-*", headers=viewer)
    assert answer.status_code == 200, answer.text
    assert sorted(answer.json()) == ["index-a"]
    # A wildcard delete would reach indices beyond the grant: refused before it leaves.
    manager = _key(admin, ["index-*"], ["all"])
    wildcard = admin.delete("/index-*", headers=manager)
    assert wildcard.status_code == 400
    assert wildcard.json()["error"]["reason"] == "Wildcard expressions or all indices are not allowed"


def test_bulk_writes_land_upstream_and_refused_items_answer_in_place(admin: httpx.Client, direct: httpx.Client) -> None:
    admin.put("/index-a").raise_for_status()
    writer = _key(admin, ["index-a"], ["write"])
    body = (
        '{"index":{"_index":"index-a","_id":"1"}}\n{"n":1}\n'
        '{"index":{"_index":"index-b","_id":"1"}}\n{"n":2}\n'
        '{"create":{"_index":"index-a","_id":"2"}}\n{"n":3}\n'
    )
    answer = admin.post(
        "/_bulk",
        params={"refresh": "true", "filter_path": "errors,items.*.status,items.*.error.type"},
        headers={**writer, "content-type": "application/x-ndjson"},
        content=body,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "errors": True,
        "items": [
            {"index": {"status": 201}},
            {"index": {"status": 403, "error": {"type": "security_exception"}}},
            {"create": {"status": 201}},
        ],
    }
    assert direct.get("/index-a/_count").json()["count"] == 2
    assert direct.head("/index-b").status_code == 404  # neither written nor auto-created
    # Without the auto-create privilege a write may not create its index upstream.
    broad_writer = _key(admin, ["index-*"], ["write"])
    created = admin.put("/index-new/_doc/1", headers=broad_writer, json={"n": 1})
    assert created.status_code == 403
    assert "indices:admin/auto_create" in created.json()["error"]["reason"]
    assert direct.head("/index-new").status_code == 404


def test_mget_answers_refused_documents_in_place(admin: httpx.Client) -> None:
    _seed(admin)
    reader = _key(admin, ["index-a"], ["read"])
    answer = admin.post(
        "/_mget",
        headers=reader,
        json={"docs": [{"_index": "index-b", "_id": "1"}, {"_index": "index-a", "_id": "1"}]},
    )
    assert answer.status_code == 200, answer.text
    docs = answer.json()["docs"]
    assert docs[0]["error"]["type"] == "security_exception"
    assert docs[1]["_source"] == {"text": "alpha"}


def test_a_scroll_belongs_to_the_caller_who_opened_it(admin: httpx.Client) -> None:
    _seed(admin)
    reader = _key(admin, ["index-a"], ["read"])
    opened = admin.post("/index-a/_search", params={"scroll": "1m", "size": "1"}, headers=reader, json={})
    assert opened.status_code == 200, opened.text
    scroll_id = opened.json()["_scroll_id"]
    other = admin.post("/_search/scroll", json={"scroll_id": scroll_id, "scroll": "1m"})
    assert other.status_code == 404
    assert other.json()["error"]["type"] == "search_context_missing_exception"
    mine = admin.post("/_search/scroll", headers=reader, json={"scroll_id": scroll_id, "scroll": "1m"})
    assert mine.status_code == 200, mine.text
    cleared = admin.request("DELETE", "/_search/scroll", headers=reader, json={"scroll_id": scroll_id})
    assert cleared.json()["succeeded"] is True


def test_system_indices_and_the_security_api_stay_in_keyplane(admin: httpx.Client, direct: httpx.Client) -> None:
    assert admin.put("/_connector/my-connector", json={"index_name": "search-x"}).status_code in (200, 201)
    local = admin.get("/.elastic-connectors/_search")
    assert local.status_code == 200, local.text
    assert [hit["_id"] for hit in local.json()["hits"]["hits"]] == ["my-connector"]
    assert direct.get("/_connector/my-connector").status_code == 404
    upstream_hits = direct.get("/.elastic-connectors/_search")
    assert upstream_hits.status_code == 404 or upstream_hits.json()["hits"]["hits"] == []
    admin.put("/_security/user/reader", json={"password": "reader-pw", "roles": []}).raise_for_status()
    assert direct.get("/_security/user/reader").status_code == 404
    # A user of the front is not a user of the upstream: it reaches it only through the front.
    assert admin.get("/_security/_authenticate", auth=("reader", "reader-pw")).status_code == 200


def test_an_upstream_that_is_down_answers_a_clean_gateway_error(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    env = {"KEYPLANE_UPSTREAM_URL": closed, "KEYPLANE_UPSTREAM_API_KEY": "a2V5OnNlY3JldA=="}
    with on_store(tmp_path, extra_env=env) as srv:
        answer = httpx.get(srv.url + "/index-a/_search", auth=("elastic", PASSWORD), timeout=15)
        assert answer.status_code == 502
        error: dict[str, Any] = answer.json()["error"]
        assert error["type"] == "upstream_unavailable_exception"
        assert closed in error["reason"]
        assert "a2V5OnNlY3JldA" not in srv.output()
        assert "Traceback" not in srv.output()
        # Keyplane's own APIs do not need the upstream.
        assert httpx.get(srv.url + "/_security/_authenticate", auth=("elastic", PASSWORD)).status_code == 200


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"KEYPLANE_UPSTREAM_USERNAME": "u", "KEYPLANE_UPSTREAM_PASSWORD": "p"}, "need KEYPLANE_UPSTREAM_URL"),
        ({"KEYPLANE_UPSTREAM_URL": "http://h:9200", "KEYPLANE_UPSTREAM_USERNAME": "u"}, "go together"),
        ({"KEYPLANE_UPSTREAM_URL": "ftp://h"}, "must be an http:// or https:// URL"),
        ({"KEYPLANE_UPSTREAM_URL": "https://u:p@h:9200"}, "without credentials"),
    ],
)
def test_upstream_settings_that_cannot_work_are_refused_at_start(environ: dict[str, str], problem: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ)
    assert problem in str(caught.value)


def test_upstream_credentials_that_are_refused_answer_a_gateway_error(tmp_path: Path, upstream: Server) -> None:
    env = {
        "KEYPLANE_UPSTREAM_URL": upstream.url,
        "KEYPLANE_UPSTREAM_USERNAME": "elastic",
        "KEYPLANE_UPSTREAM_PASSWORD": "not-the-password",
    }
    with on_store(tmp_path, extra_env=env) as srv:
        answer = httpx.get(srv.url + "/_search", auth=("elastic", PASSWORD), timeout=15)
        assert answer.status_code == 502
        assert "refused Keyplane's credentials" in answer.json()["error"]["reason"]
        assert "not-the-password" not in srv.output()


def test_a_query_may_not_look_up_documents_of_an_index_the_caller_cannot_read(admin: httpx.Client) -> None:
    for name in ("index-a", "index-b"):
        admin.put(f"/{name}/_doc/1", params={"refresh": "true"}, json={"tags": ["x"]}).raise_for_status()
    reader = _key(admin, ["index-a"], ["read"])
    lookup = {"query": {"terms": {"tags": {"index": "index-b", "id": "1", "path": "tags"}}}}
    refused = admin.post("/index-a/_search", headers=reader, json=lookup)
    assert refused.status_code == 403
    assert "on indices [index-b]" in refused.json()["error"]["reason"]
    own = {"query": {"terms": {"tags": {"index": "index-a", "id": "1", "path": "tags"}}}}
    assert _hit_indices(admin.post("/index-a/_search", headers=reader, json=own)) == ["index-a"]


def test_an_index_created_with_aliases_needs_the_privilege_on_the_aliases(
    admin: httpx.Client, direct: httpx.Client
) -> None:
    creator = _key(admin, ["index-*"], ["create_index"])
    refused = admin.put("/index-c", headers=creator, json={"aliases": {"reports": {}}})
    assert refused.status_code == 403
    assert "indices:admin/aliases" in refused.json()["error"]["reason"]
    assert direct.head("/index-c").status_code == 404
    assert admin.put("/index-c", headers=creator, json={}).status_code == 200


def test_an_empty_index_segment_means_every_index_the_caller_may_see(admin: httpx.Client) -> None:
    _seed(admin)
    refresher = _key(admin, ["index-a"], ["maintenance", "read"])
    base = str(admin.base_url).rstrip("/")  # absolute: httpx reads a relative "//x" as a host name
    for headers in ({}, refresher):
        answer = admin.post(base + "//_refresh", headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["_shards"]["failed"] == 0
    assert _hit_indices(admin.get(base + "//_search", headers=refresher)) == ["index-a"]
