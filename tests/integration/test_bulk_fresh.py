"""Bulk chunks whose documents are taken to be new without reading them (generated ids, or an index
whose last bulk read found none): the answers are those of the item-by-item path, also when the
guess is wrong (a document exists, or another writer creates one meanwhile)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from keyplane.errors import KeyplaneError
from keyplane.indices import bulk_service, core
from keyplane.indices.backends.base import ReadMark
from keyplane.indices.backends.sql import SqlDocumentRepository, SqlIndexRepository
from keyplane.indices.bulk import BulkItem
from keyplane.indices.core import StoredDoc
from keyplane.indices.service import IndexService, Written
from keyplane.store.database import Database
from keyplane.store.migrations import migrate


class _Counted(SqlDocumentRepository):
    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.reads = 0

    async def read_many(self, index: str, ids: Sequence[str]) -> tuple[dict[str, StoredDoc], ReadMark | None]:
        self.reads += 1
        return await super().read_many(index, ids)


async def _service(url: str) -> tuple[Database, IndexService, _Counted]:
    db = Database(url)
    await db.open()
    await migrate(db)
    docs = _Counted(db)
    return db, IndexService(SqlIndexRepository(db), docs), docs


def _allow(*_: Any) -> None:
    return None


def _answers(outcomes: Sequence[Written | KeyplaneError]) -> list[Any]:
    return [
        (o.id, o.result, o.seq_no, o.version) if isinstance(o, Written) else (type(o).__name__, str(o))
        for o in outcomes
    ]


def _items(start: int, count: int, action: str = "index") -> list[BulkItem]:
    return [BulkItem(action, "books", f"d{n}", source={"n": n}) for n in range(start, start + count)]  # type: ignore[arg-type]


def test_a_load_of_new_documents_reads_only_its_first_chunk(database_url: str) -> None:
    async def go() -> None:
        db, svc, docs = await _service(database_url)
        try:
            await svc.create("books")
            for start in (0, 10, 20):
                outcomes = await bulk_service.bulk(svc, _items(start, 10), _allow, _allow)
                assert _answers(outcomes) == [(f"d{n}", "created", n, 1) for n in range(start, start + 10)]
            assert docs.reads == 1  # the first chunk found none of its documents: the next were not read
            assert await svc.documents.get("books", "d25") == StoredDoc("d25", {"n": 25}, 25, 1)
            # Generated ids are never read.
            auto = [BulkItem("create", "books", None, source={"auto": n}) for n in range(3)]
            outcomes = await bulk_service.bulk(svc, auto, _allow, _allow)
            assert [(o.result, o.seq_no, o.version) for o in outcomes if isinstance(o, Written)] == [
                ("created", 30, 1),
                ("created", 31, 1),
                ("created", 32, 1),
            ]
            assert docs.reads == 1
        finally:
            await db.close()

    asyncio.run(go())


def test_a_wrong_guess_answers_from_the_stored_documents(database_url: str) -> None:
    async def go() -> None:
        db, svc, docs = await _service(database_url)
        try:
            await svc.create("books")
            await bulk_service.bulk(svc, _items(0, 5), _allow, _allow)  # read: none found
            await bulk_service.bulk(svc, _items(5, 5), _allow, _allow)  # taken to be new
            assert docs.reads == 1
            # The same ids again, taken to be new: the insert fails, the chunk is read and decided again.
            again = await bulk_service.bulk(svc, [*_items(8, 2), *_items(10, 1)], _allow, _allow)
            assert _answers(again) == [("d8", "updated", 10, 2), ("d9", "updated", 11, 2), ("d10", "created", 12, 1)]
            assert docs.reads == 2
            assert await svc.documents.get("books", "d8") == StoredDoc("d8", {"n": 8}, 10, 2)
            # That read found documents: the next chunk is read first, and create conflicts as it should.
            created = await bulk_service.bulk(svc, [*_items(11, 1, "create"), *_items(3, 1, "create")], _allow, _allow)
            assert docs.reads == 3
            assert _answers(created)[0] == ("d11", "created", 13, 1)
            conflict = created[1]
            assert isinstance(conflict, core.VersionConflict) and "document already exists" in str(conflict)
            assert await svc.documents.count("books") == 12
        finally:
            await db.close()

    asyncio.run(go())


def test_a_document_created_meanwhile_by_another_writer(database_url: str) -> None:
    async def go() -> None:
        db, svc, docs = await _service(database_url)
        try:
            await svc.create("books")
            await bulk_service.bulk(svc, _items(0, 2), _allow, _allow)
            # Another request creates d3 after this bulk's chunk was taken to be new.
            await svc.index("books", "d3", {"by": "other"}, "index", None, None)
            outcomes = await bulk_service.bulk(svc, [*_items(2, 2, "create")], _allow, _allow)
            assert _answers(outcomes)[0] == ("d2", "created", 3, 1)
            assert isinstance(outcomes[1], core.VersionConflict)
            assert await svc.documents.get("books", "d3") == StoredDoc("d3", {"by": "other"}, 2, 1)
            assert await svc.documents.get("books", "d2") == StoredDoc("d2", {"n": 2}, 3, 1)
            assert docs.reads == 2
        finally:
            await db.close()

    asyncio.run(go())


def test_documents_of_the_same_fields_still_map_new_subfields(database_url: str) -> None:
    async def go() -> None:
        db, svc, _ = await _service(database_url)
        try:
            await svc.create("books")
            sources: list[dict[str, Any]] = [
                {"a": {"x": 1}, "b": "one"},
                {"a": {"x": 2}, "b": "two"},  # nothing new: its names are known from here on
                {"a": {"x": 3}, "b": None},
                {"a": {"y": 4}, "b": "four"},  # the same names, a new subfield
                {"a": None, "b": 5},
                {"a": {"z": {"deep": True}}, "b": ["six"]},
            ]
            items = [BulkItem("index", "books", str(n), source=s) for n, s in enumerate(sources)]
            outcomes = await bulk_service.bulk(svc, items, _allow, _allow)
            assert all(isinstance(o, Written) for o in outcomes)
            a = (await svc.get("books")).mappings["properties"]["a"]["properties"]
            assert sorted(a) == ["x", "y", "z"] and a["z"]["properties"]["deep"] == {"type": "boolean"}
        finally:
            await db.close()

    asyncio.run(go())
