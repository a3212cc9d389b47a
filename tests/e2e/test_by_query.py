"""``_delete_by_query`` and ``_update_by_query`` through the official Python client: the response, the
parameter checks, index privileges, and the connector system indices the connectors service cleans."""

from __future__ import annotations

import httpx
import pytest
from elasticsearch import AuthorizationException, BadRequestError, Elasticsearch, NotFoundError

from tests.e2e.server import Server

JOBS = ".elastic-connectors-sync-jobs"


def _twitter(es: Elasticsearch) -> None:
    es.index(index="twitter", id="1", document={"user": "kimchy", "n": 1})
    es.index(index="twitter", id="2", document={"user": "junk", "n": 2})
    es.index(index="twitter", id="3", document={"user": "kimchy", "n": 3})


def test_delete_by_query_answers_as_elasticsearch(es: Elasticsearch) -> None:
    _twitter(es)
    answer = es.delete_by_query(index="twitter", query={"match": {"user": "kimchy"}}, refresh=True).body
    assert isinstance(answer.pop("took"), int)
    assert answer == {
        "timed_out": False,
        "total": 2,
        "deleted": 2,
        "batches": 1,
        "version_conflicts": 0,
        "noops": 0,
        "retries": {"bulk": 0, "search": 0},
        "throttled_millis": 0,
        "requests_per_second": -1.0,
        "throttled_until_millis": 0,
        "failures": [],
    }
    assert es.count(index="twitter")["count"] == 1
    assert es.get(index="twitter", id="2")["_source"]["user"] == "junk"
    # Nothing matching: nothing to do, no batch.
    empty = es.delete_by_query(index="twitter", query={"term": {"user": "nobody"}}).body
    assert (empty["total"], empty["deleted"], empty["batches"]) == (0, 0, 0)


def test_max_docs_scroll_size_and_sort(es: Elasticsearch, http: httpx.Client) -> None:
    _twitter(es)
    answer = es.delete_by_query(
        index="twitter", query={"match_all": {}}, max_docs=2, scroll_size=1, sort=["n:desc"]
    ).body
    assert (answer["total"], answer["deleted"], answer["batches"]) == (2, 2, 2)
    assert [hit["_id"] for hit in es.search(index="twitter")["hits"]["hits"]] == ["1"]
    reply = http.post("/twitter/_delete_by_query?max_docs=1", json={"query": {"match_all": {}}, "max_docs": 2})
    assert reply.status_code == 400
    assert reply.json()["error"]["reason"] == "[max_docs] set to two different values [2] and [1]"


def test_update_by_query_rewrites_each_document(es: Elasticsearch, http: httpx.Client) -> None:
    _twitter(es)
    before = es.get(index="twitter", id="1").body
    answer = es.update_by_query(index="twitter", requests_per_second=100, slices="auto").body
    assert (answer["total"], answer["updated"], answer["deleted"], answer["noops"]) == (3, 3, 0, 0)
    assert answer["requests_per_second"] == 100.0 and "created" not in answer
    after = es.get(index="twitter", id="1").body
    assert after["_version"] == before["_version"] + 1 and after["_seq_no"] > before["_seq_no"]
    assert after["_source"] == before["_source"]
    # Without a body every document matches; max_docs limits the run.
    reply = http.post("/twitter/_update_by_query?max_docs=1")
    assert reply.status_code == 200 and reply.json()["updated"] == 1


@pytest.mark.parametrize(
    ("path", "body", "kind", "reason"),
    [
        ("/t/_delete_by_query", {}, "action_request_validation_exception", "Validation Failed: 1: query is missing;"),
        (
            "/t/_delete_by_query?conflicts=cat",
            {"query": {"match_all": {}}},
            "illegal_argument_exception",
            'conflicts may only be "proceed" or "abort" but was [cat]',
        ),
        (
            "/t/_delete_by_query?scroll_size=asdf",
            {"query": {"match_all": {}}},
            "illegal_argument_exception",
            "Failed to parse int parameter [scroll_size] with value [asdf]",
        ),
        (
            "/remote:t/_delete_by_query",
            {"query": {"match_all": {}}},
            "action_request_validation_exception",
            "Validation Failed: 1: Cross-cluster calls are not supported in this context but remote indices were "
            "requested: [remote:t];",
        ),
        (
            "/t/_delete_by_query",
            {"query": {"match_all": {}}, "script": "x"},
            "parsing_exception",
            "Unknown key for a VALUE_STRING in [script].",
        ),
    ],
)
def test_bad_requests(http: httpx.Client, path: str, body: dict[str, object], kind: str, reason: str) -> None:
    http.put("/t/_doc/1", json={"a": 1}).raise_for_status()
    reply = http.post(path, json=body)
    assert reply.status_code == 400
    assert (reply.json()["error"]["type"], reply.json()["error"]["reason"]) == (kind, reason)
    assert http.get("/t/_count").json()["count"] == 1


def test_unsupported_features_are_refused_not_ignored(es: Elasticsearch) -> None:
    _twitter(es)
    with pytest.raises(BadRequestError, match="scripts are not supported"):
        es.update_by_query(index="twitter", script={"source": "ctx._source.n += 1"})
    with pytest.raises(BadRequestError, match="wait_for_completion=false"):
        es.delete_by_query(index="twitter", query={"match_all": {}}, wait_for_completion=False)
    with pytest.raises(BadRequestError):
        es.delete_by_query(index="twitter", q="user:kimchy")
    assert es.count(index="twitter")["count"] == 3
    with pytest.raises(NotFoundError) as missing:
        es.delete_by_query(index="nothing", query={"match_all": {}})
    assert missing.value.error == "index_not_found_exception"
    assert es.delete_by_query(index="nothing", query={"match_all": {}}, ignore_unavailable=True)["total"] == 0


def test_index_privileges(es: Elasticsearch, server: Server) -> None:
    _twitter(es)
    es.security.put_role(name="cleaner", indices=[{"names": ["twitter"], "privileges": ["read", "delete"]}])
    es.security.put_role(name="reader", indices=[{"names": ["twitter"], "privileges": ["read"]}])
    es.security.put_role(name="writer", indices=[{"names": ["twitter"], "privileges": ["write"]}])
    for user in ("cleaner", "reader", "writer"):
        es.security.put_user(username=user, password=f"{user}-secret", roles=[user])
    cleaner, reader, writer = (
        Elasticsearch(server.url, basic_auth=(user, f"{user}-secret")) for user in ("cleaner", "reader", "writer")
    )
    with pytest.raises(AuthorizationException) as denied:
        reader.delete_by_query(index="twitter", query={"match_all": {}})
    assert denied.value.body["error"]["reason"] == (
        "action [indices:data/write/delete/byquery] is unauthorized for user [reader] with effective roles "
        "[reader] on indices [twitter], this action is granted by the index privileges [delete,write,all]"
    )
    with pytest.raises(AuthorizationException, match=r"indices:data/write/update/byquery.*\[index,write,all\]"):
        cleaner.update_by_query(index="twitter")
    # The run's search needs read as well.
    with pytest.raises(AuthorizationException, match=r"indices:data/read/search"):
        writer.delete_by_query(index="twitter", query={"match_all": {}})
    assert cleaner.delete_by_query(index="twitter", query={"term": {"n": 2}})["deleted"] == 1
    assert es.count(index="twitter")["count"] == 2


def test_sync_jobs_cleaned_as_the_connectors_service_does(es: Elasticsearch) -> None:
    es.connector.put(connector_id="c1", index_name="search-c1", service_type="dir", name="C1")
    first = es.connector.sync_job_post(id="c1")["id"]
    second = es.connector.sync_job_post(id="c1")["id"]
    answer = es.delete_by_query(index=JOBS, query={"terms": {"_id": [first]}}, conflicts="proceed").body
    assert (answer["total"], answer["deleted"], answer["failures"]) == (1, 1, [])
    with pytest.raises(NotFoundError):
        es.connector.sync_job_get(connector_sync_job_id=first)
    assert es.connector.sync_job_get(connector_sync_job_id=second)["id"] == second
    # What ESIndex.clean_index sends.
    cleaned = es.delete_by_query(index=JOBS, query={"match_all": {}}, ignore_unavailable=True, conflicts="proceed").body
    assert cleaned["deleted"] == 1
    assert es.search(index=JOBS)["hits"]["total"]["value"] == 0
    # Rewriting a connector's document advances its numbers, as on content indices.
    before = es.get(index=".elastic-connectors", id="c1").body
    assert es.update_by_query(index=".elastic-connectors")["updated"] == 1
    after = es.get(index=".elastic-connectors", id="c1").body
    assert after["_seq_no"] == before["_seq_no"] + 1 and after["_source"] == before["_source"]


def test_version_conflicts_with_what_the_search_saw(es: Elasticsearch, http: httpx.Client) -> None:
    # Searches see the index as of its last refresh; a document rewritten since is a conflict.
    es.indices.create(index="quiet", settings={"index.refresh_interval": "-1"})
    es.index(index="quiet", id="1", document={"text": "test"}, refresh=True)
    es.index(index="quiet", id="2", document={"text": "test"}, refresh=True)
    es.index(index="quiet", id="1", document={"text": "test2"})
    reply = http.post("/quiet/_delete_by_query", json={"query": {"match_all": {}}})
    assert reply.status_code == 409
    answer = reply.json()
    assert (answer["deleted"], answer["version_conflicts"], answer["batches"]) == (1, 1, 1)
    [failure] = answer["failures"]
    assert (failure["index"], failure["id"], failure["status"]) == ("quiet", "1", 409)
    assert failure["cause"]["type"] == "version_conflict_engine_exception"
    assert failure["cause"]["reason"] == (
        "[1]: version conflict, required seqNo [0], primary term [1]. "
        "current document has seqNo [2] and primary term [1]"
    )
    assert (failure["cause"]["index"], failure["cause"]["shard"]) == ("quiet", "0")
    # With proceed conflicts are counted only (the delete of 2 is not visible yet either: two).
    proceed = es.update_by_query(index="quiet", conflicts="proceed").body
    assert (proceed["updated"], proceed["version_conflicts"], proceed["failures"]) == (0, 2, [])
    es.index(index="quiet", id="3", document={"text": "test3"}, refresh=True)
    # refresh=true makes the run's own writes visible at its end.
    assert es.delete_by_query(index="quiet", query={"match_all": {}}, refresh=True)["deleted"] == 2
    assert es.count(index="quiet")["count"] == 0
