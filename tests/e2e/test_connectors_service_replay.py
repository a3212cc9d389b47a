"""A sync of the Elastic connectors service, replayed call by call.

The sequence and bodies are those the service (9.5, through elasticsearch-py 8.18 with compatible-with=8
headers) sent to Keyplane during a full sync of a ``dir`` connector, a resync after a file was deleted,
and a sync whose API key lacked privileges on the content index. Each answer is read the way the
service reads it, so a change that would stall the real service fails here.

Each test runs twice: against one Keyplane, and against a Keyplane that forwards content indices to a
second Keyplane process playing the upstream cluster (the connector documents stay in the first).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from elasticsearch import Elasticsearch

from tests.e2e.server import PASSWORD, Server

CONNECTORS, JOBS = ".elastic-connectors", ".elastic-connectors-sync-jobs"
COMPAT = "application/vnd.elasticsearch+json; compatible-with=8"
INDEX = "search-files"
CONNECTOR = "files"


@pytest.fixture(params=["alone", "upstream"])
def site(request: pytest.FixtureRequest) -> Server:
    """The Keyplane the service talks to; with "upstream", one whose content lives in a second Keyplane."""
    names = ["server"] if request.param == "alone" else ["front", "upstream"]
    servers: list[Server] = [request.getfixturevalue(name) for name in names]
    for srv in servers:
        httpx.post(srv.url + "/_keyplane/_reset", auth=("elastic", PASSWORD)).raise_for_status()
    return servers[0]


@pytest.fixture
def es(site: Server) -> Iterator[Elasticsearch]:
    with Elasticsearch(site.url, basic_auth=("elastic", PASSWORD)) as client:
        yield client


@pytest.fixture
def svc(site: Server) -> Iterator[httpx.Client]:
    """The service's client: superuser credentials, compatibility headers on every request."""
    headers = {"accept": COMPAT, "content-type": COMPAT}
    with httpx.Client(base_url=site.url, auth=("elastic", PASSWORD), headers=headers, timeout=10) as client:
        yield client


def _ok(reply: httpx.Response) -> Any:
    assert reply.status_code < 300, (reply.request.method, reply.request.url, reply.status_code, reply.text)
    return reply.json() if reply.content else None


def _search(svc: httpx.Client, index: str, query: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {"from": 0, "query": query, "seq_no_primary_term": True, "size": 100, **extra}
    result: dict[str, Any] = _ok(svc.post(f"/{index}/_search", params={"expand_wildcards": "hidden"}, json=body))
    assert result["hits"]["total"]["relation"] == "eq"
    return result


def _connector(svc: httpx.Client) -> dict[str, Any]:
    """The service's reload(): the connector document with the numbers for its conditional writes."""
    hits = _search(
        svc,
        CONNECTORS,
        {"bool": {"must_not": [{"term": {"deleted": True}}], "filter": [{"terms": {"_id": [CONNECTOR]}}]}},
    )["hits"]
    assert hits["total"]["value"] == 1
    hit: dict[str, Any] = hits["hits"][0]
    assert hit["_id"] == CONNECTOR and isinstance(hit["_seq_no"], int) and hit["_primary_term"] == 1
    return hit


def _pending_jobs(svc: httpx.Client, job_types: list[str]) -> list[dict[str, Any]]:
    query = {
        "bool": {
            "must": [
                {"terms": {"status": ["pending", "suspended"]}},
                {"terms": {"connector.id": [CONNECTOR]}},
                {"terms": {"job_type": job_types}},
            ]
        }
    }
    hits: list[dict[str, Any]] = _search(svc, JOBS, query, sort=[{"created_at": "asc"}])["hits"]["hits"]
    return hits


def _file(path: str, text: str) -> dict[str, Any]:
    """A document as the directory source yields it, with the pipeline's control fields."""
    return {
        "path": path,
        "size": len(text),
        "_timestamp": "2026-11-30T01:26:53.081174+00:00",
        "id": hashlib.md5(path.encode()).hexdigest(),
        "_attachment": base64.b64encode(text.encode()).decode(),
        "_extract_binary_content": True,
        "_reduce_whitespace": True,
        "_run_ml_inference": False,
    }


def _bulk(svc: httpx.Client, lines: list[dict[str, Any]]) -> dict[str, Any]:
    body = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    headers = {"content-type": "application/vnd.elasticsearch+x-ndjson; compatible-with=8"}
    result: dict[str, Any] = _ok(
        svc.put("/_bulk", params={"pipeline": "search-default-ingestion"}, content=body, headers=headers)
    )
    return result


def _existing_ids(svc: httpx.Client, index: str) -> dict[str, str]:
    """The sink's scan of the content index: a scroll over ids and timestamps."""
    page = _ok(
        svc.post(
            f"/{index}/_search",
            params={"scroll": "5m"},
            json={"size": 1000, "sort": "_doc", "_source": ["id", "_timestamp"]},
        )
    )
    found: dict[str, str] = {}
    while page["hits"]["hits"]:
        for hit in page["hits"]["hits"]:
            found[hit["_id"]] = hit["_source"]["_timestamp"]
        page = _ok(svc.post("/_search/scroll", json={"scroll": "5m", "scroll_id": page["_scroll_id"]}))
    _ok(svc.request("DELETE", "/_search/scroll", json={"scroll_id": page["_scroll_id"]}))
    return found


def _prepare(svc: httpx.Client) -> None:
    """Startup: version check, preflight, and the connector's first configuration write."""
    root = _ok(svc.get("/"))
    major, minor = (int(part) for part in root["version"]["number"].split(".")[:2])
    assert (major, minor) >= (9, 5) and root["version"]["build_flavor"] == "default"
    for name in (f"{CONNECTORS}-v1", f"{JOBS}-v1"):
        reply = svc.head(f"/{name}")
        assert reply.status_code == 200 and reply.content == b""
    hit = _connector(svc)
    configuration: dict[str, Any] = {
        "directory": {
            "default_value": None,
            "depends_on": [],
            "display": "text",
            "label": "Directory path",
            "options": [],
            "order": 1,
            "required": True,
            "sensitive": False,
            "tooltip": None,
            "type": "str",
            "ui_restrictions": [],
            "validations": [],
            "value": "/srv/files",
        }
    }
    doc = {"configuration": configuration, "status": "configured"}
    params = {"if_seq_no": hit["_seq_no"], "if_primary_term": hit["_primary_term"]}
    _ok(svc.post(f"/{CONNECTORS}/_update/{CONNECTOR}", params=params, json={"doc": doc}))
    # Read back raw: the null tooltip stays, so the service does not rewrite its configuration each poll.
    assert _connector(svc)["_source"]["configuration"]["directory"]["tooltip"] is None
    _ok(svc.put(f"/_connector/{CONNECTOR}/_check_in"))


def _run_job(svc: httpx.Client, files: dict[str, str], content: httpx.Client | None = None) -> dict[str, Any]:
    """One full sync, as the job runner drives it; returns the ended job's document."""
    content = content or svc
    [job] = _pending_jobs(svc, ["full", "incremental"])
    assert _pending_jobs(svc, ["access_control"]) == []
    hit = _connector(svc)
    doc = {"status": "connected", "error": None, "last_sync_status": "in_progress", "last_sync_error": None}
    params = {"if_seq_no": hit["_seq_no"], "if_primary_term": hit["_primary_term"]}
    _ok(svc.post(f"/{CONNECTORS}/_update/{CONNECTOR}", params=params, json={"doc": doc}))
    _ok(svc.put(f"/_connector/_sync_job/{job['_id']}/_claim", json={"worker_hostname": "replay"}))

    reply = content.get(f"/{INDEX}", params={"ignore_unavailable": "true"})
    if reply.status_code == 403:
        return _end_job(svc, job["_id"], error=reply)
    if INDEX not in _ok(reply):
        _ok(content.put(f"/{INDEX}"))
    assert content.head(f"/{INDEX}").status_code == 200
    assert _ok(svc.get(f"/{JOBS}/_doc/{job['_id']}"))["_source"]["status"] == "in_progress"

    existing = _existing_ids(content, INDEX)
    wanted = {hashlib.md5(path.encode()).hexdigest(): (path, text) for path, text in files.items()}
    lines: list[dict[str, Any]] = []
    for doc_id, (path, text) in wanted.items():
        lines += [{"index": {"_index": INDEX, "_id": doc_id}}, _file(path, text)]
    gone = [doc_id for doc_id in existing if doc_id not in wanted]
    lines += [{"delete": {"_index": INDEX, "_id": doc_id}} for doc_id in gone]
    result = _bulk(content, lines)
    assert result["errors"] is False, result
    _ok(content.post(f"/{INDEX}/_refresh", params={"ignore_unavailable": "true"}))
    total = _ok(content.post(f"/{INDEX}/_count", params={"ignore_unavailable": "true"}))["count"]

    counts: dict[str, Any] = {"indexed_document_count": len(wanted), "indexed_document_volume": 0}
    counts |= {"deleted_document_count": len(gone), "total_document_count": total}
    ended: dict[str, Any] = {"last_seen": "2026-11-30T01:27:08Z", "status": "completed", "error": None}
    ended |= {"completed_at": "2026-11-30T01:27:08Z", **counts}
    _ok(svc.post(f"/{JOBS}/_update/{job['_id']}", json={"doc": ended}))
    done: dict[str, Any] = {"last_synced": "2026-11-30T01:27:08Z", "status": "connected", "error": None}
    done |= {"last_sync_status": "completed", "last_sync_error": None, "sync_cursor": None}
    done |= {"last_indexed_document_count": len(wanted), "last_deleted_document_count": len(gone)}
    _ok(svc.post(f"/{CONNECTORS}/_update/{CONNECTOR}", json={"doc": done}))
    source: dict[str, Any] = _ok(svc.get(f"/{JOBS}/_doc/{job['_id']}"))["_source"]
    return source


def _end_job(svc: httpx.Client, job_id: str, error: httpx.Response) -> dict[str, Any]:
    """How the service ends a job whose content calls were refused."""
    assert error.status_code == 403
    message = f"Connector is not authorized to access index [{INDEX}]. Status code: [403]."
    ended = {"last_seen": "2026-11-30T01:27:08Z", "status": "error", "error": message}
    _ok(svc.post(f"/{JOBS}/_update/{job_id}", json={"doc": ended}))
    failed = {"status": "error", "error": message, "last_sync_status": "error", "last_sync_error": message}
    _ok(svc.post(f"/{CONNECTORS}/_update/{CONNECTOR}", json={"doc": failed}))
    source: dict[str, Any] = _ok(svc.get(f"/{JOBS}/_doc/{job_id}"))["_source"]
    source["refusal"] = error.json()
    return source


def _start_sync(es: Elasticsearch) -> None:
    es.connector.sync_job_post(id=CONNECTOR, job_type="full", trigger_method="on_demand")


def test_full_sync_then_resync_after_a_deletion(es: Elasticsearch, svc: httpx.Client) -> None:
    es.connector.put(connector_id=CONNECTOR, index_name=INDEX, service_type="dir", name="Files")
    _prepare(svc)

    files = {"/srv/files/a.txt": "alpha  report\n\n about keyplane\n", "/srv/files/b.txt": "beta notes\n"}
    files["/srv/files/c.html"] = "<html><body><p>gamma</p><p>page</p></body></html>"
    _start_sync(es)
    job = _run_job(svc, files)
    assert job["status"] == "completed" and job["indexed_document_count"] == 3 and job["total_document_count"] == 3
    connector = es.connector.get(connector_id=CONNECTOR)
    assert connector["last_sync_status"] == "completed" and connector["status"] == "connected"
    assert connector["last_indexed_document_count"] == 3

    # The documents, through the official client, as the pipeline left them.
    es.indices.refresh(index=INDEX)
    found = es.search(index=INDEX, query={"match": {"body": "keyplane"}})["hits"]
    assert found["total"]["value"] == 1
    source = found["hits"][0]["_source"]
    assert source["body"] == "alpha report about keyplane" and source["path"] == "/srv/files/a.txt"
    assert not {"_attachment", "_extract_binary_content", "_reduce_whitespace", "_run_ml_inference"} & set(source)
    page = es.get(index=INDEX, id=hashlib.md5(b"/srv/files/c.html").hexdigest())["_source"]
    assert page["body"] == "gamma page"

    # Resync after a file is deleted: its document goes.
    del files["/srv/files/b.txt"]
    _start_sync(es)
    job = _run_job(svc, files)
    assert job["status"] == "completed" and job["deleted_document_count"] == 1 and job["total_document_count"] == 2
    assert es.count(index=INDEX)["count"] == 2
    assert es.connector.get(connector_id=CONNECTOR)["last_deleted_document_count"] == 1

    # The job cleanup's queries find nothing to clean.
    idle = {
        "bool": {
            "filter": [
                {"terms": {"connector.id": [CONNECTOR]}},
                {"terms": {"status": ["in_progress", "canceling"]}},
                {"range": {"last_seen": {"lte": "now-300s"}}},
            ]
        }
    }
    assert _search(svc, JOBS, idle)["hits"]["total"]["value"] == 0
    orphans = {"bool": {"must_not": {"terms": {"connector.id": [CONNECTOR]}}}}
    assert _search(svc, JOBS, orphans)["hits"]["total"]["value"] == 0
    assert _search(svc, CONNECTORS, {"match_all": {}})["hits"]["total"]["value"] == 1


def test_a_key_without_content_privileges_fails_the_sync(es: Elasticsearch, svc: httpx.Client, site: Server) -> None:
    es.connector.put(connector_id=CONNECTOR, index_name=INDEX, service_type="dir", name="Files")
    _prepare(svc)
    # The per-connector key swaps credentials for content calls only; this one misses the content index.
    descriptors = {
        "r": {
            "cluster": ["monitor", "manage_connector"],
            "indices": [{"names": [f".search-acl-filter-{INDEX}", ".elastic-connectors-v1*"], "privileges": ["all"]}],
        }
    }
    key = es.security.create_api_key(name="connector", role_descriptors=descriptors)
    headers = {"accept": COMPAT, "content-type": COMPAT, "authorization": f"ApiKey {key['encoded']}"}
    with httpx.Client(base_url=site.url, headers=headers, timeout=10) as content:
        _start_sync(es)
        job = _run_job(svc, {"/srv/files/a.txt": "alpha"}, content=content)
    assert job["status"] == "error"
    assert job["refusal"]["error"]["type"] == "security_exception"
    assert job["refusal"]["error"]["reason"] == (
        f"action [indices:admin/get] is unauthorized for API key id [{key['id']}] of user [elastic] "
        f"on indices [{INDEX}], this action is granted by the index privileges [view_index_metadata,manage,all]"
    )
    connector = es.connector.get(connector_id=CONNECTOR)
    assert connector["last_sync_status"] == "error" and connector["status"] == "error"
    assert not es.indices.exists(index=INDEX)
