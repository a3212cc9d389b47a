"""Connectors and sync jobs as documents of the system indices, over a real store: one record and one
write counter whichever path writes (the Connector APIs or the document APIs)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from keyplane.connectors.backends.sql import SqlConnectorRepository, SqlSecretRepository, SqlSyncJobRepository
from keyplane.connectors.model import ConnectorFilter
from keyplane.connectors.secrets import SecretBox
from keyplane.connectors.service import ConnectorService
from keyplane.connectors.system_index import Kind, precondition, search_request
from keyplane.errors import Conflict, DocumentMissing, StatusError
from keyplane.http.render import render
from keyplane.store.database import Database
from keyplane.store.migrations import migrate


async def _service(url: str) -> tuple[Database, ConnectorService]:
    db = Database(url)
    await db.open()
    await migrate(db)
    box = SecretBox(b"k" * 32)
    return db, ConnectorService(SqlConnectorRepository(db), SqlSyncJobRepository(db), SqlSecretRepository(db), box)


def test_connector_api_writes_and_document_writes_share_the_counter(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        await svc.put("c1", {"index_name": "search-c1", "service_type": "dir"})
        read = await svc.get_document(Kind.CONNECTORS, "c1")
        assert read is not None and (read.seq_no, read.version) == (0, 1)
        await svc.check_in("c1")  # a Connector API write
        with pytest.raises(Conflict):
            await svc.update_document(Kind.CONNECTORS, "c1", {"status": "connected"}, precondition=precondition(0, 1))
        done = await svc.update_document(
            Kind.CONNECTORS, "c1", {"status": "connected"}, precondition=precondition(1, 1)
        )
        assert (done.result, done.seq_no) == ("updated", 2)
        assert (await svc.get("c1"))["status"] == "connected"
        noop = await svc.update_document(Kind.CONNECTORS, "c1", {"status": "connected"})
        assert (noop.result, noop.seq_no) == ("noop", 2)

        await svc.update_document(Kind.CONNECTORS, "c1", {"configuration": {"x": {"tooltip": None, "value": 1}}})
        await svc.update_document(Kind.CONNECTORS, "c1", {"configuration": {"x": {"value": 2}}})
        read = await svc.get_document(Kind.CONNECTORS, "c1")
        assert read is not None and read.source["configuration"]["x"] == {"tooltip": None, "value": 2}
        await db.close()

    asyncio.run(go())


def test_raw_documents_index_delete_and_search(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        made = await svc.index_document(Kind.CONNECTORS, None, {"index_name": "search-cli", "name": 7})
        assert made.result == "created"
        assert (await svc.get(made.id))["name"] == 7  # stored as given: a number where a name should be
        with pytest.raises(Conflict):
            await svc.index_document(Kind.CONNECTORS, made.id, {}, create_only=True)
        replaced = await svc.index_document(Kind.CONNECTORS, made.id, {"index_name": "search-cli", "deleted": True})
        assert (replaced.result, replaced.version) == ("updated", 2)
        with pytest.raises(DocumentMissing):
            await svc.update_document(Kind.CONNECTORS, "nope", {"a": 1})
        assert (await svc.update_document(Kind.CONNECTORS, "nope", {"a": 1}, doc_as_upsert=True)).result == "created"
        found = await svc.search_documents(
            Kind.CONNECTORS, search_request(Kind.CONNECTORS, {"term": {"deleted": True}}, None, 0, 10)
        )
        assert [h.document.id for h in found.hits] == [made.id]
        assert (await svc.delete_document(Kind.CONNECTORS, made.id)).result == "deleted"
        assert (await svc.delete_document(Kind.CONNECTORS, made.id)).result == "not_found"
        await db.close()

    asyncio.run(go())


def test_sync_job_documents(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        await svc.put("c", {"index_name": "search-c", "service_type": "dir"})
        job_id = await svc.create_sync_job("c", None, None)
        await svc.claim_sync_job(job_id, "host", None)
        read = await svc.get_document(Kind.SYNC_JOBS, job_id)
        assert read is not None and read.seq_no == 1 and read.source["status"] == "in_progress"
        ended = await svc.update_document(
            Kind.SYNC_JOBS, job_id, {"status": "completed", "error": None}, precondition=precondition(1, 1)
        )
        assert ended.result == "updated"
        assert (await svc.get_sync_job(job_id))["status"] == "completed"
        total, listed = await svc.list_sync_jobs("c", "completed", [], 0, 10)
        assert total == 1 and listed[0]["id"] == job_id  # the list columns follow the raw write
        # A job written whole, as a document, shows in the Connector API's list too.
        await svc.index_document(
            Kind.SYNC_JOBS, "raw", {"connector": {"id": "c"}, "status": "pending", "job_type": "full"}
        )
        total, _ = await svc.list_sync_jobs("c", None, [], 0, 10)
        assert total == 2
        pending = search_request(Kind.SYNC_JOBS, {"terms": {"status": ["pending"]}}, [{"created_at": "asc"}], 0, 10)
        assert [h.document.id for h in (await svc.search_documents(Kind.SYNC_JOBS, pending)).hits] == ["raw"]
        await db.close()

    asyncio.run(go())


def test_rendered_list_is_the_parsed_list_as_orjson_writes_it(database_url: str) -> None:
    # The list answers kept fragments of each connector's JSON (connectors/listed.py): the bytes must
    # be those of the parsed documents, whatever a raw document holds (its own top-level id, first with
    # the document's value as {"id": ..., **doc} makes it; deep nesting; non-ASCII text, floats), and a
    # change must show.
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(300):  # past orjson's depth: the answer is written by jsontext's own writer
        deep = {"d": deep}
    docs: dict[str, dict[str, Any]] = {
        "a": {"index_name": "search-a", "name": "Ä ☃", "ratio": 0.1, "big": 2**63 - 1},
        "b": {"name": "own id", "id": "not-b", "rules": [{"id": "DEFAULT"}]},
        "c": {"index_name": "search-c", "nested": deep},
        "d": {},
    }

    async def go() -> None:
        db, svc = await _service(database_url)
        for connector_id, doc in docs.items():
            await svc.index_document(Kind.CONNECTORS, connector_id, doc)
        selector = ConnectorFilter([], [], [], None, False)

        async def both() -> tuple[bytes, bytes]:
            total, parsed = await svc.list(selector, 0, 10)
            rendered_total, rendered = await svc.list_rendered(selector, 0, 10)
            return render({"count": total, "results": parsed}, False), render(
                {"count": rendered_total, "results": rendered}, False
            )

        for _ in range(2):  # the second time from the kept fragments
            expected, got = await both()
            assert got == expected
        assert b'{"id":"not-b","name":"own id"' in got  # as Elasticsearch's list: the source's id
        await svc.index_document(Kind.CONNECTORS, "a", {"index_name": "search-a", "name": "changed"})
        expected, got = await both()
        assert got == expected and b'"changed"' in got
        await db.close()

    asyncio.run(go())


def test_index_name_rule_on_updates(database_url: str) -> None:
    # An update that keeps the index name and deleted flag skips the index-name read (the row held
    # them); one that changes either is still checked against the other live connectors.
    async def go() -> None:
        db, svc = await _service(database_url)
        await svc.put("a", {"index_name": "search-a", "service_type": "dir"})
        await svc.put("b", {"index_name": "search-b", "service_type": "dir"})
        assert await svc.update_name("b", "B", None) == "updated"
        with pytest.raises(StatusError, match=r"Index name \[search-a\] is used by another connector\."):
            await svc.update_index_name("b", "search-a")
        await svc.delete("a", hard=False, delete_sync_jobs=False)
        assert await svc.update_index_name("b", "search-a") == "updated"
        assert await svc.update_name("b", "B2", None) == "updated"
        # A soft-deleted connector brought back by a document write is checked too.
        with pytest.raises(StatusError, match=r"Index name \[search-a\] is used by another connector\."):
            await svc.update_document(Kind.CONNECTORS, "a", {"deleted": False})
        await db.close()

    asyncio.run(go())
