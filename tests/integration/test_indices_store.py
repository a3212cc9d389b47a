"""Indices and documents on a real store: sequence numbers, compare-and-set, counts, scans, concurrency."""

from __future__ import annotations

import asyncio

import pytest

from keyplane.indices import core
from keyplane.indices.backends.sql import SqlDocumentRepository, SqlIndexRepository
from keyplane.indices.core import Condition, Expand, UpdateSpec
from keyplane.indices.service import IndexService
from keyplane.store.database import Database
from keyplane.store.migrations import migrate


async def _service(url: str) -> tuple[Database, IndexService]:
    db = Database(url)
    await db.open()
    await migrate(db)
    return db, IndexService(SqlIndexRepository(db), SqlDocumentRepository(db))


def _no_auto_create(name: str) -> None:
    raise AssertionError(f"{name} should exist")


def test_index_lifecycle(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        try:
            meta = await svc.create("books", {"number_of_replicas": 0}, {"properties": {"t": {"type": "keyword"}}})
            assert meta.settings == {"index.number_of_replicas": "0"}
            again = await svc.get("books")
            assert again == meta
            with pytest.raises(core.IndexExists) as exists:
                await svc.create("books")
            assert str(exists.value) == f"index [books/{meta.uuid}] already exists"
            with pytest.raises(core.InvalidIndexName):
                await svc.create("Books")
            await svc.create("logs-1")
            found = await svc.resolve(["*"], Expand(), lambda name: True)
            assert [m.name for m in found] == ["books", "logs-1"]
            await svc.index("books", "1", {"a": 1}, "index", None, None)
            await svc.delete([meta])
            with pytest.raises(core.IndexMissing):
                await svc.get("books")
            await svc.create("books")  # a new index of the name starts empty, its sequence from 0
            written = await svc.index("books", "1", {"a": 1}, "index", None, None)
            assert (written.seq_no, written.version, written.result) == (0, 1, "created")
        finally:
            await db.close()

    asyncio.run(go())


def test_documents_take_one_sequence_per_index(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        try:
            created: list[str] = []
            first = await svc.index("books", "1", {"a": 1}, "index", None, created.append)
            assert created == ["books"] and (first.seq_no, first.version, first.result) == (0, 1, "created")
            second = await svc.index("books", "1", {"a": 2}, "index", Condition(0, 1), _no_auto_create)
            assert (second.seq_no, second.version, second.result) == (1, 2, "updated")
            with pytest.raises(core.VersionConflict):
                await svc.index("books", "1", {"a": 3}, "index", Condition(0, 1), _no_auto_create)
            with pytest.raises(core.VersionConflict):
                await svc.index("books", "1", {"a": 3}, "create", None, _no_auto_create)
            other = await svc.index("books", None, {"b": 1}, "create", None, _no_auto_create)
            assert other.seq_no == 2 and len(other.id) == 20
            elsewhere = await svc.index("films", "1", {"c": 1}, "index", None, lambda name: None)
            assert elsewhere.seq_no == 0  # each index has its own sequence
            meta, doc = await svc.get_doc("books", "1")
            assert doc is not None and (doc.source, doc.seq_no, doc.version, doc.primary_term) == ({"a": 2}, 1, 2, 1)

            noop = await svc.update("books", "1", UpdateSpec(doc={"a": 2}), None, None)
            assert (noop.result, noop.seq_no, noop.version) == ("noop", 1, 2)
            merged = await svc.update("books", "1", UpdateSpec(doc={"n": {"x": None}}), Condition(1, 1), None)
            assert (merged.result, merged.seq_no, merged.version) == ("updated", 3, 3)
            with pytest.raises(core.DocMissing):
                await svc.update("books", "9", UpdateSpec(doc={"a": 1}), None, None)
            upserted = await svc.update("books", "9", UpdateSpec(doc={"a": 1}, doc_as_upsert=True), None, None)
            assert (upserted.result, upserted.version) == ("created", 1)

            deleted = await svc.delete_doc("books", "1", None)
            assert (deleted.result, deleted.version, deleted.seq_no) == ("deleted", 4, 5)
            missing = await svc.delete_doc("books", "1", None)
            assert (missing.result, missing.version, missing.seq_no) == ("not_found", 1, 6)
            with pytest.raises(core.VersionConflict, match="but no document was found"):
                await svc.delete_doc("books", "1", Condition(2, 1))
            with pytest.raises(core.IndexMissing):
                await svc.delete_doc("nope", "1", None)
            with pytest.raises(core.IndexMissing):
                await svc.get_doc("nope", "1")
        finally:
            await db.close()

    asyncio.run(go())


def test_counts_evaluate_queries_over_sources(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        try:
            await svc.create("books", mappings={"properties": {"tag": {"type": "keyword"}}})
            for i in range(25):
                source = {"title": f"book number {i}", "tag": "even" if i % 2 == 0 else "odd", "n": i}
                await svc.index("books", str(i), source, "index", None, None)
            books = [await svc.get("books")]
            assert await svc.count(books, None) == 25
            assert await svc.count(books, {"match_all": {}}) == 25
            assert await svc.count(books, {"term": {"tag": "even"}}) == 13
            assert await svc.count(books, {"match": {"title": "number"}}) == 25
            assert await svc.count(books, {"terms": {"_id": ["1", "2", "99"]}}) == 2
            query = {"bool": {"filter": [{"term": {"tag": "odd"}}], "must_not": [{"ids": {"values": ["1"]}}]}}
            assert await svc.count(books, query) == 11
            seen = [doc.id async for doc in svc.documents.scan("books", batch=4)]
            assert seen == [str(i) for i in range(25)]
        finally:
            await db.close()

    asyncio.run(go())


def test_concurrent_writers_never_lose_an_update(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        try:
            await svc.index("counters", "c", {"n": 0}, "index", None, lambda name: None)

            async def bump(i: int) -> None:
                await svc.update("counters", "c", UpdateSpec(doc={f"k{i}": i}), None, None)

            await asyncio.gather(*(bump(i) for i in range(20)))
            _, doc = await svc.get_doc("counters", "c")
            assert doc is not None and doc.version == 21 and doc.seq_no == 20
            assert all(doc.source[f"k{i}"] == i for i in range(20))
        finally:
            await db.close()

    asyncio.run(go())
