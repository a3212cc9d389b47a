"""The connector system indices through the official Python client: the calls the Elastic connectors
service and its CLI make on ``.elastic-connectors`` and ``.elastic-connectors-sync-jobs``."""

from __future__ import annotations

import httpx
import pytest
from elasticsearch import AuthorizationException, BadRequestError, ConflictError, Elasticsearch, NotFoundError

from tests.e2e.server import Server

CONNECTORS, JOBS = ".elastic-connectors", ".elastic-connectors-sync-jobs"


def test_preflight_finds_both_indices(es: Elasticsearch, http: httpx.Client) -> None:
    for name in (f"{CONNECTORS}-v1", f"{JOBS}-v1", CONNECTORS, JOBS):
        reply = http.head(f"/{name}")
        assert reply.status_code == 200 and reply.content == b""
        assert es.indices.exists(index=name)
    with pytest.raises(BadRequestError) as exc:
        es.indices.create(index=f"{CONNECTORS}-v1")
    assert exc.value.error == "resource_already_exists_exception"
    got = es.indices.get(index=CONNECTORS).body
    assert list(got) == [f"{CONNECTORS}-v1"] and got[f"{CONNECTORS}-v1"]["aliases"] == {CONNECTORS: {}}
    assert got[f"{CONNECTORS}-v1"]["mappings"]["properties"]["last_seen"] == {"type": "date"}
    assert es.indices.refresh(index=CONNECTORS)["_shards"]["failed"] == 0


def test_connector_api_and_documents_share_one_seq_no(es: Elasticsearch) -> None:
    es.connector.put(connector_id="c1", index_name="search-c1", service_type="dir", name="C1")
    doc = es.get(index=CONNECTORS, id="c1").body
    assert doc["_index"] == f"{CONNECTORS}-v1" and doc["found"] is True and doc["_primary_term"] == 1
    assert doc["_source"]["service_type"] == "dir" and "id" not in doc["_source"]
    seq_no = doc["_seq_no"]
    assert doc["_version"] == seq_no + 1

    # A Connector API write advances the counter the document view reports.
    es.connector.check_in(connector_id="c1")
    after = es.get(index=CONNECTORS, id="c1")
    assert after["_seq_no"] == seq_no + 1
    with pytest.raises(ConflictError) as exc:
        es.update(index=CONNECTORS, id="c1", doc={"status": "connected"}, if_seq_no=seq_no, if_primary_term=1)
    assert exc.value.body["error"]["type"] == "version_conflict_engine_exception"
    assert exc.value.body["error"]["reason"] == (
        f"[c1]: version conflict, required seqNo [{seq_no}], primary term [1]. "
        f"current document has seqNo [{seq_no + 1}] and primary term [1]"
    )
    assert exc.value.body["error"]["index"] == f"{CONNECTORS}-v1"

    # With the current numbers the update lands, and the Connector API sees it.
    res = es.update(
        index=CONNECTORS, id="c1", doc={"status": "connected"}, if_seq_no=after["_seq_no"], if_primary_term=1
    )
    assert res["result"] == "updated" and res["_seq_no"] == seq_no + 2 and res["_version"] == seq_no + 3
    assert res["_shards"] == {"total": 1, "successful": 1, "failed": 0}
    assert es.connector.get(connector_id="c1")["status"] == "connected"
    assert es.update(index=CONNECTORS, id="c1", doc={"status": "connected"})["result"] == "noop"


def test_update_keeps_nulls_raw(es: Elasticsearch) -> None:
    """The service writes ``"tooltip": null`` and must read it back, or it rewrites its configuration."""
    es.connector.put(connector_id="c2", index_name="search-c2", service_type="dir")
    field = {"label": "Path", "order": 1, "type": "str", "display": "text", "value": "/tmp", "tooltip": None}
    es.update(index=CONNECTORS, id="c2", doc={"configuration": {"directory": field}, "error": None})
    es.update(index=CONNECTORS, id="c2", doc={"configuration": {"x": {"tooltip": None}}})
    source = es.get(index=CONNECTORS, id="c2")["_source"]
    assert source["configuration"]["directory"]["tooltip"] is None
    assert source["configuration"]["x"] == {"tooltip": None} and source["error"] is None
    assert es.connector.get(connector_id="c2")["configuration"]["directory"]["value"] == "/tmp"


def test_searches_the_service_sends(es: Elasticsearch) -> None:
    es.connector.put(connector_id="a", index_name="search-a", service_type="dir")
    es.connector.put(connector_id="b", index_name="search-b", service_type="dir")
    es.connector.put(connector_id="gone", index_name="search-g", service_type="dir")
    es.connector.delete(connector_id="gone")
    configured = {"bool": {"must_not": [{"term": {"deleted": True}}], "filter": [{"terms": {"_id": ["a", "gone"]}}]}}
    res = es.search(
        index=CONNECTORS, query=configured, expand_wildcards="hidden", seq_no_primary_term=True, from_=0, size=100
    )
    assert res["hits"]["total"] == {"value": 1, "relation": "eq"}
    hit = res["hits"]["hits"][0]
    assert hit["_id"] == "a" and hit["_index"] == f"{CONNECTORS}-v1" and hit["_primary_term"] == 1
    assert hit["_seq_no"] == es.get(index=CONNECTORS, id="a")["_seq_no"]
    every = es.search(index=CONNECTORS, query={"match_all": {}}, expand_wildcards="hidden")
    assert every["hits"]["total"]["value"] == 3 and "_seq_no" not in every["hits"]["hits"][0]
    native = {"bool": {"filter": [{"terms": {"service_type": ["dir"]}}, {"term": {"is_native": False}}]}}
    assert es.search(index=CONNECTORS, query=native)["hits"]["total"]["value"] == 3
    assert [
        h["_id"] for h in es.search(index=CONNECTORS, query={"match": {"index_name": "search-b"}})["hits"]["hits"]
    ] == ["b"]
    assert es.search(index=CONNECTORS, query={"prefix": {"index_name": "search-"}}, size=0)["hits"]["hits"] == []
    assert es.search(index=CONNECTORS, query={"exists": {"field": "last_seen"}})["hits"]["total"]["value"] == 0


def test_sync_job_lifecycle_through_documents(es: Elasticsearch) -> None:
    es.connector.put(connector_id="c", index_name="search-c", service_type="dir")
    first = es.connector.sync_job_post(id="c")["id"]
    second = es.connector.sync_job_post(id="c", job_type="incremental")["id"]
    pending = {
        "bool": {
            "must": [
                {"terms": {"status": ["pending", "suspended"]}},
                {"terms": {"connector.id": ["c"]}},
                {"terms": {"job_type": ["full", "incremental"]}},
            ]
        }
    }
    res = es.search(index=JOBS, query=pending, sort=[{"created_at": "asc"}], seq_no_primary_term=True)
    assert [h["_id"] for h in res["hits"]["hits"]] == [first, second]
    assert res["hits"]["hits"][0]["_score"] is None and isinstance(res["hits"]["hits"][0]["sort"][0], int)

    es.connector.sync_job_claim(connector_sync_job_id=first, worker_hostname="host")
    idle = {
        "bool": {
            "filter": [
                {"terms": {"status": ["in_progress", "canceling"]}},
                {"range": {"last_seen": {"lte": "now-300s"}}},
            ]
        }
    }
    assert es.search(index=JOBS, query=idle)["hits"]["total"]["value"] == 0
    orphaned = {"bool": {"must_not": {"terms": {"connector.id": ["c"]}}}}
    assert es.search(index=JOBS, query=orphaned)["hits"]["total"]["value"] == 0

    # Every job ends with an _update on the jobs index; the Connector API then shows it.
    done = {"status": "completed", "completed_at": "2026-01-01T00:00:00+00:00", "indexed_document_count": 3}
    assert es.update(index=JOBS, id=first, doc=done)["result"] == "updated"
    job = es.connector.sync_job_get(connector_sync_job_id=first).body
    assert job["status"] == "completed" and job["indexed_document_count"] == 3
    assert es.get(index=JOBS, id=first)["_source"]["status"] == "completed"


def test_cli_creates_connectors_with_post_doc(es: Elasticsearch) -> None:
    doc = {"index_name": "search-cli", "service_type": "dir", "status": "needs_configuration", "is_native": False}
    res = es.index(index=CONNECTORS, document=doc)
    assert res["result"] == "created" and res["_seq_no"] == 0 and res["_version"] == 1
    got = es.connector.get(connector_id=res["_id"]).body
    assert got["index_name"] == "search-cli" and got["status"] == "needs_configuration"
    es.index(index=CONNECTORS, id="fixed", document={"name": "x"})
    with pytest.raises(ConflictError):
        es.create(index=CONNECTORS, id="fixed", document={"name": "y"})
    assert es.delete(index=CONNECTORS, id="fixed")["result"] == "deleted"
    with pytest.raises(NotFoundError):
        es.get(index=CONNECTORS, id="fixed")
    with pytest.raises(NotFoundError) as exc:
        es.update(index=CONNECTORS, id="fixed", doc={"a": 1})
    assert exc.value.error == "document_missing_exception"
    assert es.update(index=CONNECTORS, id="fixed", doc={"a": 1}, doc_as_upsert=True)["result"] == "created"


def test_index_privileges(es: Elasticsearch, server: Server) -> None:
    """The connectors CLI's key (``all`` on ``.elastic-connectors-v1*``) reaches the aliases too; a key
    without index privileges gets Elasticsearch's 403."""
    es.connector.put(connector_id="c", index_name="search-c", service_type="dir")
    cli_key = es.security.create_api_key(
        name="cli",
        role_descriptors={
            "r": {
                "cluster": ["monitor", "manage_connector"],
                "indices": [{"names": ["search-c", ".elastic-connectors-v1*"], "privileges": ["all"]}],
            }
        },
    )["encoded"]
    bare_key = es.security.create_api_key(name="bare", role_descriptors={"r": {"cluster": ["manage_connector"]}})
    with Elasticsearch(server.url, api_key=cli_key) as client:
        assert client.search(index=CONNECTORS)["hits"]["total"]["value"] == 1
        assert client.update(index=CONNECTORS, id="c", doc={"last_seen": "2026-01-01T00:00:00Z"})["result"] == "updated"
    with Elasticsearch(server.url, api_key=bare_key["encoded"]) as client:
        with pytest.raises(AuthorizationException) as exc:
            client.search(index=CONNECTORS)
        assert exc.value.body["error"]["reason"] == (
            f"action [indices:data/read/search] is unauthorized for API key id [{bare_key['id']}] of user "
            f"[elastic] on indices [{CONNECTORS}], this action is granted by the index privileges [read,all]"
        )
