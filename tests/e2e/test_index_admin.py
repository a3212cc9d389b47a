"""Index metadata APIs: mappings (get, put and the merge rules), statistics, _cat/indices, aliases named
where concrete indices are needed, date math in index names, and the privileges each needs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from elasticsearch import AuthorizationException, BadRequestError, Elasticsearch, NotFoundError

from tests.e2e.server import PASSWORD, Server, on_store


def test_mappings_are_read_merged_and_type_changes_refused(es: Elasticsearch) -> None:
    es.indices.create(index="books", mappings={"properties": {"title": {"type": "text"}}})
    es.indices.create(index="films")
    assert es.indices.get_mapping(index="books").body == {
        "books": {"mappings": {"properties": {"title": {"type": "text"}}}}
    }
    assert es.indices.get_mapping().body == {
        "books": {"mappings": {"properties": {"title": {"type": "text"}}}},
        "films": {"mappings": {}},
    }
    assert es.indices.put_mapping(index="b*", properties={"year": {"type": "long"}}).body == {"acknowledged": True}
    assert es.indices.get_mapping(index="books").body["books"]["mappings"]["properties"] == {
        "title": {"type": "text"},
        "year": {"type": "long"},
    }
    with pytest.raises(BadRequestError) as refused:
        es.indices.put_mapping(index="books", properties={"year": {"type": "keyword"}})
    assert refused.value.body["error"]["type"] == "illegal_argument_exception"
    assert refused.value.body["error"]["reason"] == "mapper [year] cannot be changed from type [long] to [keyword]"
    with pytest.raises(BadRequestError) as unknown:
        es.indices.put_mapping(index="books", properties={"x": {"type": "nope"}})
    assert unknown.value.body["error"]["type"] == "mapper_parsing_exception"
    with pytest.raises(NotFoundError):
        es.indices.get_mapping(index="missing")


def test_stats_count_documents_per_index(es: Elasticsearch) -> None:
    es.indices.create(index="s1", settings={"number_of_replicas": 0, "number_of_shards": 2})
    es.indices.create(index="s2")
    for n in range(3):
        es.index(index="s1", id=str(n), document={"n": n, "text": "some words"})
    es.index(index="s2", id="x", document={"a": 1})
    body = es.indices.stats(index="*").body
    assert body["_shards"] == {"total": 4, "successful": 3, "failed": 0}  # s1: 2 primaries; s2: 1 + 1 replica
    s1 = body["indices"]["s1"]
    assert (s1["health"], s1["status"], s1["primaries"]["docs"]["count"]) == ("green", "open", 3)
    assert s1["primaries"]["store"]["size_in_bytes"] > 0
    assert body["indices"]["s2"]["health"] == "yellow"
    assert body["_all"]["primaries"]["docs"]["count"] == 4
    only_docs = es.indices.stats(index="s2", metric="docs").body
    assert set(only_docs["indices"]["s2"]["primaries"]) == {"docs"}
    with pytest.raises(BadRequestError):
        es.indices.stats(index="s2", metric="nope")


def test_cat_indices_as_json_filters_and_sorts(es: Elasticsearch, http: httpx.Client) -> None:
    es.indices.create(index="foo", settings={"number_of_replicas": 0})
    es.indices.create(index="bar")
    es.index(index="foo", id="1", document={"a": "b"})
    rows = http.get("/_cat/indices", params={"format": "json", "h": "i,health,dc,pri,rep", "s": "index"}).json()
    assert rows == [
        {"index": "bar", "health": "yellow", "docs.count": "0", "pri": "1", "rep": "1"},
        {"index": "foo", "health": "green", "docs.count": "1", "pri": "1", "rep": "0"},
    ]
    greens = http.get(
        "/_cat/indices/f*", params={"format": "json", "health": "green", "h": "index,store.size", "bytes": "b"}
    )
    assert [r["index"] for r in greens.json()] == ["foo"] and int(greens.json()[0]["store.size"]) > 0
    assert http.get("/_cat/indices", params={"health": "purple"}).status_code == 400


def test_an_alias_is_not_an_index_to_delete(es: Elasticsearch, http: httpx.Client) -> None:
    es.indices.create(index="index", aliases={"alias": {}})
    es.indices.create(index="index2")
    refused = http.delete("/alias")
    assert refused.status_code == 400
    assert refused.json()["error"]["reason"] == (
        "The provided expression [alias] matches an alias, specify the corresponding concrete indices instead."
    )
    assert es.indices.delete(index="alias,index2", ignore_unavailable=True).body == {"acknowledged": True}
    assert es.indices.exists(index="index") and not es.indices.exists(index="index2")
    assert list(es.indices.get(index="alias").body) == ["index"]  # other APIs resolve an alias to its indices


def test_date_math_index_names(es: Elasticsearch, http: httpx.Client) -> None:
    today = datetime.now(UTC).strftime("%Y.%m.%d")
    es.indices.create(index=f"logs-{today}")
    assert list(es.indices.get(index="<logs-{now/d}>").body) == [f"logs-{today}"]
    missing = http.get("/%3Cnothing-%7Bnow%2FM%7D%3E/_search")
    assert missing.status_code == 404
    assert missing.json()["error"]["index"] == "nothing-" + datetime.now(UTC).strftime("%Y.%m.01")
    bad = http.get("/%3Cx-%7Bthen%7D%3E/_search")
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "parse_exception"


def test_metadata_privileges(es: Elasticsearch, server: Server, http: httpx.Client) -> None:
    es.indices.create(index="logs-1")
    es.indices.create(index="metrics-1")
    es.security.put_role(
        name="logs_viewer", indices=[{"names": ["logs-*"], "privileges": ["view_index_metadata", "monitor"]}]
    )
    es.security.put_user(username="vic", password="vic-secret", roles=["logs_viewer"])
    vic = Elasticsearch(server.url, basic_auth=("vic", "vic-secret"))
    assert list(vic.indices.get_mapping(index="*").body) == ["logs-1"]
    assert list(vic.indices.stats(index="*").body["indices"]) == ["logs-1"]
    with pytest.raises(AuthorizationException) as denied:
        vic.indices.put_mapping(index="logs-1", properties={"a": {"type": "long"}})
    assert "this action is granted by the index privileges [manage,all]" in denied.value.body["error"]["reason"]
    with pytest.raises(AuthorizationException):
        vic.indices.stats(index="metrics-1")
    rows = httpx.get(server.url + "/_cat/indices?format=json&h=index", auth=("vic", "vic-secret")).json()
    assert rows == [{"index": "logs-1"}]


def test_soft_deletes_cannot_be_disabled(es: Elasticsearch) -> None:
    with pytest.raises(BadRequestError) as refused:
        es.indices.create(index="nosoft", settings={"soft_deletes.enabled": False})
    assert refused.value.body["error"]["type"] == "illegal_argument_exception"


def test_indexing_maps_new_fields_dynamically(es: Elasticsearch) -> None:
    es.indices.create(index="books", mappings={"properties": {"title": {"type": "text"}}})
    es.index(index="books", id="1", document={"title": "Dune", "year": 1965, "tags": ["sf"], "meta": {"ok": True}})
    es.update(index="books", id="1", doc={"added": "2026-11-30T01:00:00Z"})
    properties = es.indices.get_mapping(index="books")["books"]["mappings"]["properties"]
    assert properties["title"] == {"type": "text"}
    assert properties["year"] == {"type": "long"}
    assert properties["tags"] == {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    assert properties["meta"] == {"properties": {"ok": {"type": "boolean"}}}
    assert properties["added"] == {"type": "date"}
    # Mapped fields keep their type: a later document with another JSON type there changes nothing.
    es.index(index="books", id="2", document={"year": 1966.5, "added": "yesterday"})
    assert es.indices.get_mapping(index="books")["books"]["mappings"]["properties"] == properties


def test_stats_count_what_searches_see(es: Elasticsearch) -> None:
    es.indices.create(index="held", settings={"refresh_interval": "-1"})
    es.index(index="held", id="1", document={"n": 1}, refresh=True)
    es.index(index="held", id="2", document={"n": 2})
    assert es.indices.stats(index="held")["indices"]["held"]["primaries"]["docs"]["count"] == 1
    es.indices.refresh(index="held")
    assert es.indices.stats(index="held")["indices"]["held"]["primaries"]["docs"]["count"] == 2


def test_single_documents_go_through_the_pipeline(es: Elasticsearch) -> None:
    doc = {"body": "  two   words ", "_reduce_whitespace": True, "_run_ml_inference": False}
    es.index(index="content", id="1", document=doc, pipeline="search-default-ingestion")
    assert es.get(index="content", id="1")["_source"] == {"body": "two words"}
    with pytest.raises(BadRequestError) as refused:
        es.index(index="other", id="1", document=doc, pipeline="mine")
    assert refused.value.body["error"]["reason"] == "pipeline with id [mine] does not exist"
    assert not es.indices.exists(index="other")


def test_deleting_by_pattern_needs_the_setting_off(es: Elasticsearch, tmp_path: Path) -> None:
    es.indices.create(index="logs-1")
    with pytest.raises(BadRequestError) as refused:
        es.indices.delete(index="logs-*")
    assert refused.value.body["error"]["reason"] == "Wildcard expressions or all indices are not allowed"
    assert es.indices.exists(index="logs-1")

    env = {"KEYPLANE_DESTRUCTIVE_REQUIRES_NAME": "false"}
    with on_store(tmp_path, extra_env=env) as srv, Elasticsearch(srv.url, basic_auth=("elastic", PASSWORD)) as other:
        for name in ("logs-1", "logs-2"):
            other.indices.create(index=name)
        other.indices.create(index="keep", aliases={"logs-alias": {}})
        assert other.indices.delete(index="logs-*")["acknowledged"] is True
        assert sorted(other.indices.get(index="*")) == ["keep"]  # the pattern does not reach through an alias
        assert other.indices.delete(index="_all")["acknowledged"] is True
        assert other.indices.get(index="*").body == {}
