"""Batched bulk writes on a real store: ``write_many`` (one transaction, consecutive sequence numbers,
compare-and-set), and the batched ``bulk`` giving exactly the answers of the item-by-item path,
also when another writer races it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from keyplane.errors import KeyplaneError
from keyplane.indices import bulk_service, core
from keyplane.indices.backends.base import DocWrite, ReadMark
from keyplane.indices.backends.sql import SqlDocumentRepository, SqlIndexRepository
from keyplane.indices.bulk import BulkItem
from keyplane.indices.core import Condition, StoredDoc, UpdateSpec
from keyplane.indices.refresh import Refresh
from keyplane.indices.service import IndexService, Written
from keyplane.store.database import Database
from keyplane.store.migrations import migrate


async def _service(url: str) -> tuple[Database, IndexService]:
    db = Database(url)
    await db.open()
    await migrate(db)
    return db, IndexService(SqlIndexRepository(db), SqlDocumentRepository(db))


def _allow(*_: Any) -> None:
    return None


def _refuse_auto_create(name: str) -> None:
    raise KeyplaneError(f"may not create [{name}]")


def _answers(outcomes: Sequence[Written | KeyplaneError], index: str) -> list[Any]:
    """Outcomes comparable across two indices: the index name blanked out of errors."""
    out: list[Any] = []
    for o in outcomes:
        if isinstance(o, Written):
            out.append((o.id, o.result, o.seq_no, o.version, o.source, o.forced_refresh))
        else:
            out.append((type(o).__name__, str(o).replace(index, "<index>")))
    return out


def test_write_many_takes_consecutive_sequence_numbers_in_one_transaction(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        docs = svc.documents
        try:
            await svc.create("books")
            one = await docs.write("books", "1", {"v": 1}, 1, None)
            assert one is not None and one.seq_no == 0
            writes = [
                DocWrite("1", {"v": 2}, 2),  # a rewrite
                DocWrite("2", {"w": 1}, 1),  # a new document
                DocWrite("2", {"w": 2}, 2),  # the same id again: replaces the write before it
                DocWrite("3", None, 1),  # a delete of a missing document takes a number too
                DocWrite("1", None, 3),  # and a delete of one written just before
            ]
            seq_nos = await docs.write_many("books", writes, {"1": one, "2": None, "3": None})
            assert seq_nos == [1, 2, 3, 4, 5]
            assert await docs.get("books", "1") is None
            assert await docs.get("books", "2") == StoredDoc("2", {"w": 2}, 3, 2)
            assert await docs.get_many("books", ["1", "2", "3", "2"]) == {"2": StoredDoc("2", {"w": 2}, 3, 2)}
            nxt = await docs.write("books", "4", {"x": 1}, 1, None)
            assert nxt is not None and nxt.seq_no == 6
            assert await docs.write_many("books", [], {}) == []
            odd = "n\x00ul\uffff"  # stored sealed on PostgreSQL: looked up alike
            assert await docs.write_many("books", [DocWrite(odd, {"o": 1}, 1)], {odd: None}) == [7]
            found = await docs.get_many("books", [odd, "2"])
            assert found == {odd: StoredDoc(odd, {"o": 1}, 7, 1), "2": StoredDoc("2", {"w": 2}, 3, 2)}
            assert await docs.write_many("books", [DocWrite(odd, None, 2)], {odd: None}) is None
            with pytest.raises(core.IndexMissing):
                await docs.write_many("gone", [DocWrite("1", {"a": 1}, 1)], {"1": None})
        finally:
            await db.close()

    asyncio.run(go())


def test_write_many_writes_nothing_when_a_document_changed_since_it_was_read(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        docs = svc.documents
        try:
            await svc.create("books")
            one = await docs.write("books", "1", {"v": 1}, 1, None)
            assert one is not None
            read = await docs.get_many("books", ["1", "2"])
            # Another writer rewrites 1 and creates 2 after they were read.
            assert await docs.write("books", "1", {"v": "theirs"}, 2, one) is not None
            assert await docs.write("books", "2", {"w": "theirs"}, 1, None) is not None
            stale = {"1": read.get("1"), "2": read.get("2")}
            for writes in ([DocWrite("1", {"v": "mine"}, 2)], [DocWrite("2", {"w": "mine"}, 1)]):
                assert await docs.write_many("books", writes, stale) is None
            assert await docs.write_many("books", [DocWrite("1", None, 3)], stale) is None
            assert (await docs.get("books", "1")) == StoredDoc("1", {"v": "theirs"}, 1, 2)
            assert (await docs.get("books", "2")) == StoredDoc("2", {"w": "theirs"}, 2, 1)
            # Nothing was taken by the refused batches: the next write has the next number.
            fresh = await docs.write("books", "3", {}, 1, None)
            assert fresh is not None and fresh.seq_no == 3
        finally:
            await db.close()

    asyncio.run(go())


def test_read_many_gives_the_mark_the_documents_were_read_at(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        docs = svc.documents
        try:
            assert await docs.read_many("missing", ["1"]) == ({}, None)
            meta = await svc.create("books")
            assert await docs.read_many("books", ["1"]) == ({}, ReadMark(meta.uuid, -1))
            one = await docs.write("books", "1", {"v": 1}, 1, None)
            await docs.write("books", "2", {"v": 2}, 1, None)
            assert await docs.read_many("books", ["1", "3", "1"]) == ({"1": one}, ReadMark(meta.uuid, 1))
            # Several statements (over 1,000 ids) that saw one mark.
            many = [str(n) for n in range(2500)]
            found, mark = await docs.read_many("books", many)
            assert set(found) == {"1", "2"} and mark == ReadMark(meta.uuid, 1)
        finally:
            await db.close()

    asyncio.run(go())


def test_write_many_trusts_a_mark_only_while_nothing_was_written_since(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        docs = svc.documents
        try:
            await svc.create("books")
            one = await docs.write("books", "1", {"v": 1}, 1, None)
            assert one is not None
            read, mark = await docs.read_many("books", ["1", "2"])
            # At the mark: written without reading the documents again.
            assert await docs.write_many("books", [DocWrite("2", {"v": 2}, 1)], {"2": None}, read_at=mark) == [1]
            # Past the mark (the write above): compared again, and still as read for these ids.
            assert await docs.write_many("books", [DocWrite("3", {"v": 3}, 1)], {"3": None}, read_at=mark) == [2]
            # Compared again and found changed: nothing written.
            assert await docs.write("books", "1", {"v": "theirs"}, 2, one) is not None
            stale = {"1": read["1"]}
            assert await docs.write_many("books", [DocWrite("1", {"v": "mine"}, 2)], stale, read_at=mark) is None
            assert (await docs.get("books", "1")) == StoredDoc("1", {"v": "theirs"}, 3, 2)
        finally:
            await db.close()

    asyncio.run(go())


def test_a_mark_of_a_deleted_index_does_not_hold_for_its_namesake(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        docs = svc.documents
        try:
            old = await svc.create("books")
            assert await docs.write("books", "1", {"v": "old"}, 1, None) is not None
            read, mark = await docs.read_many("books", ["1"])
            assert mark == ReadMark(old.uuid, 0)
            await svc.delete([old])
            new = await svc.create("books")
            # The new index reaches the same sequence number, with other documents.
            assert await docs.write("books", "2", {"v": "new"}, 1, None) is not None
            assert (await docs.read_many("books", []))[1] == ReadMark(new.uuid, 0)
            writes = [DocWrite("1", {"v": "mine"}, 2)]
            assert await docs.write_many("books", writes, {"1": read["1"]}, read_at=mark) is None
            assert await docs.get("books", "1") is None
        finally:
            await db.close()

    asyncio.run(go())


def test_write_many_keeps_what_searches_see_until_a_refresh(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        docs = svc.documents
        try:
            await svc.create("manual", {"index": {"refresh_interval": "-1"}})
            one = await docs.write("manual", "1", {"v": 1}, 1, None, refresh=False)
            two = await docs.write("manual", "2", {"w": 1}, 1, None, refresh=True)
            assert one is not None and two is not None
            writes = [DocWrite("1", {"v": 2}, 2), DocWrite("1", {"v": 3}, 3), DocWrite("2", None, 2)]
            writes.append(DocWrite("3", {"n": 1}, 1))
            assert await docs.write_many("manual", writes, {"1": one, "2": two, "3": None}, refresh=False) == [
                2,
                3,
                4,
                5,
            ]
            # Searches still see both refreshed documents as they were; realtime gets the latest.
            assert [d.source async for d in docs.scan("manual")] == [{"v": 1}, {"w": 1}]
            assert await docs.count("manual") == 2
            assert (await docs.get("manual", "1")) == StoredDoc("1", {"v": 3}, 3, 3)
            assert (await docs.get("manual", "2", realtime=False)) == two
            await docs.refresh("manual")
            assert [d.source async for d in docs.scan("manual")] == [{"v": 3}, {"n": 1}]
            # A refreshing batch leaves nothing kept.
            three = await docs.get("manual", "3")
            assert await docs.write_many("manual", [DocWrite("3", {"n": 2}, 2)], {"3": three}) == [6]
            assert [d.source async for d in docs.scan("manual")] == [{"v": 3}, {"n": 2}]
        finally:
            await db.close()

    asyncio.run(go())


def _mixed(index: str) -> list[BulkItem]:
    """Every kind of item, several on the same ids, with the failures decided from the documents."""
    upd = UpdateSpec
    return [
        BulkItem("index", index, "1", source={"title": "one"}),
        BulkItem("create", index, "1", source={"title": "again"}),  # conflict with the item before
        BulkItem("update", index, "1", update=upd(doc={"pages": 10})),
        BulkItem("update", index, "1", update=upd(doc={"pages": 10})),  # noop on a write of this batch
        BulkItem("index", index, "1", cond=Condition(2, 1), source={"title": "cas"}),  # the update's seq_no
        BulkItem("index", index, "1", cond=Condition(2, 1), source={"title": "stale"}),
        BulkItem("update", index, "2", update=upd(doc={"t": "two"}, doc_as_upsert=True)),
        BulkItem("update", index, "3", update=upd(doc={"t": 3})),  # missing
        BulkItem("delete", index, "4"),  # not found
        BulkItem("delete", index, "2"),
        BulkItem("create", index, "2", source={"t": "back"}),
        BulkItem("delete", index, "2", cond=Condition(9, 1)),
        BulkItem("index", index, "5", source={"meta": {"tag": "x"}}),
        BulkItem("index", index, "6", source={"strict": {"new": 1}}),  # refused by the strict mapping
        BulkItem("index", index, "7", source={"body": " a  b ", "_reduce_whitespace": True}, pipeline=_PIPELINE),
        BulkItem("index", index, "8", source=[1, 2]),  # not an object
        BulkItem("index", index, "9", source={"x": 1}, pipeline="nope"),
        BulkItem("index", index, "", source={"x": 1}),
        BulkItem("index", "refused-auto-create", "1", source={"x": 1}),
        BulkItem("delete", "missing-index", "1"),
        BulkItem("update", index, "1", update=upd(doc={"extra": True}), cond=Condition(3, 1)),
        BulkItem("delete", index, "1"),
        BulkItem("index", index, "1", source={"title": "reborn"}),
    ]


_PIPELINE = "search-default-ingestion"
_SETTINGS = {"index": {"refresh_interval": "-1"}}
_MAPPINGS = {"properties": {"strict": {"type": "object", "dynamic": "strict"}}}


@pytest.mark.parametrize("refresh", [Refresh.NONE, Refresh.IMMEDIATE])
def test_a_batch_answers_as_the_items_one_by_one(database_url: str, refresh: Refresh) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        try:
            for name in ("batched", "single"):
                await svc.create(name, _SETTINGS, _MAPPINGS)
                await svc.index(name, "0", {"before": 1}, "index", None, None)
                await svc.refresh([await svc.get(name)])
            batched = await bulk_service.bulk(svc, _mixed("batched"), _allow, _refuse_auto_create, refresh=refresh)
            single = await bulk_service.bulk_per_item(
                svc, _mixed("single"), _allow, _refuse_auto_create, refresh=refresh
            )
            assert _answers(batched, "batched") == _answers(single, "single")
            assert isinstance(batched[4], Written) and batched[4].result == "updated"
            assert isinstance(batched[1], core.VersionConflict) and isinstance(batched[5], core.VersionConflict)
            # The same documents, mappings, and view of searches.
            ids = [str(n) for n in range(10)]
            assert await svc.documents.get_many("batched", ids) == await svc.documents.get_many("single", ids)
            assert (await svc.get("batched")).mappings == (await svc.get("single")).mappings
            seen = [[d async for d in svc.documents.scan(name)] for name in ("batched", "single")]
            assert seen[0] == seen[1]
        finally:
            await db.close()

    asyncio.run(go())


def test_chunks_and_auto_created_indices(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        try:
            items = [BulkItem("index", "many", f"d{n % 1500}", source={"n": n}) for n in range(2600)]
            items.append(BulkItem("create", "many", None, source={"generated": True}))
            outcomes = await bulk_service.bulk(svc, items, _allow, _allow)
            assert all(isinstance(o, Written) for o in outcomes)
            written = [o for o in outcomes if isinstance(o, Written)]
            assert [o.seq_no for o in written] == list(range(2601))
            assert [o.result for o in written[1499:1501]] == ["created", "updated"]
            assert [o.version for o in written[2598:2600]] == [2, 2]
            assert written[-1].result == "created" and len(written[-1].id) == 20
            assert await svc.documents.count("many") == 1501
            assert (await svc.documents.get("many", "d99")) == StoredDoc("d99", {"n": 1599}, 1599, 2)
            assert (await svc.get("many")).mappings["properties"]["n"] == {"type": "long"}
        finally:
            await db.close()

    asyncio.run(go())


class _RacedDocuments(SqlDocumentRepository):
    """Another writer changes documents right after the batch reads them (once)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.raced = False

    async def read_many(self, index: str, ids: Sequence[str]) -> tuple[dict[str, StoredDoc], ReadMark | None]:
        found = await super().read_many(index, ids)
        if not self.raced:
            self.raced = True
            one = await self.get(index, "1")
            assert await self.write(index, "1", {"by": "other"}, 2, one) is not None
            assert await self.write(index, "2", {"by": "other"}, 1, None) is not None
        return found


def test_a_batch_raced_by_another_writer_runs_its_items_one_by_one(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        racing = IndexService(svc.indices, _RacedDocuments(db))
        try:
            await svc.create("books")
            await svc.index("books", "1", {"by": "me"}, "index", None, None)
            items = [
                BulkItem("index", "books", "1", source={"by": "batch"}),
                BulkItem("create", "books", "2", source={"by": "batch"}),
                BulkItem("update", "books", "1", update=UpdateSpec(doc={"more": 1})),
                BulkItem("index", "books", "3", source={"by": "batch"}),
            ]
            outcomes = await bulk_service.bulk(racing, items, _allow, _refuse_auto_create)
            assert _answers(outcomes, "books") == [
                ("1", "updated", 3, 3, None, False),  # on top of the other writer's version 2
                ("VersionConflict", "[2]: version conflict, document already exists (current version [1])"),
                ("1", "updated", 4, 4, {"by": "batch", "more": 1}, False),
                ("3", "created", 5, 1, None, False),
            ]
            assert (await svc.documents.get("books", "2")) == StoredDoc("2", {"by": "other"}, 2, 1)
            # The next batch is batched again.
            again = await bulk_service.bulk(racing, [BulkItem("delete", "books", "3")], _allow, _allow)
            assert _answers(again, "books") == [("3", "deleted", 6, 2, None, False)]
        finally:
            await db.close()

    asyncio.run(go())


class _RacedMappings(SqlIndexRepository):
    """Another request maps a field right before the batch saves its new fields (once)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.raced = False

    async def set_mappings(self, expected: core.IndexMeta, mappings: dict[str, Any]) -> bool:
        if not self.raced:
            self.raced = True
            other = {
                **expected.mappings,
                "properties": {**expected.mappings.get("properties", {}), "o": {"type": "long"}},
            }
            assert await super().set_mappings(expected, other)
        return await super().set_mappings(expected, mappings)


class _CountedWrites(SqlDocumentRepository):
    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.single = 0

    async def write(
        self, index: str, doc_id: str, source: Any, version: int, expected: StoredDoc | None, *, refresh: bool = True
    ) -> StoredDoc | None:
        self.single += 1
        return await super().write(index, doc_id, source, version, expected, refresh=refresh)


def test_new_fields_mapped_meanwhile_by_another_request_keep_the_batch(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        docs = _CountedWrites(db)
        racing = IndexService(_RacedMappings(db), docs)
        try:
            await svc.create("books")
            items = [BulkItem("index", "books", str(n), source={"a": n, "b": {"c": "x"}}) for n in range(5)]
            outcomes = await bulk_service.bulk(racing, items, _allow, _refuse_auto_create)
            assert [o.seq_no for o in outcomes if isinstance(o, Written)] == [0, 1, 2, 3, 4]
            assert docs.single == 0  # written as one batch, not item by item
            assert set((await svc.get("books")).mappings["properties"]) == {"a", "b", "o"}
        finally:
            await db.close()

    asyncio.run(go())


class _CountedReads(SqlDocumentRepository):
    """Counts the statements that read documents by id."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.reads = 0

    def _by_ids(self, columns: list[Any], index: str, ids: Sequence[str]) -> Any:
        self.reads += 1
        return super()._by_ids(columns, index, ids)


def test_a_batch_nobody_raced_reads_its_documents_once(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        docs = _CountedReads(db)
        counted = IndexService(svc.indices, docs)
        try:
            await svc.create("books")
            items = [BulkItem("index", "books", str(n), source={"n": n}) for n in range(10)]
            items += [BulkItem("update", "books", "3", update=UpdateSpec(doc={"more": 1}))]
            # Conditional on a write of the batch itself: the group is written first, then the rest.
            items += [BulkItem("index", "books", "4", cond=Condition(4, 1), source={"n": "again"})]
            items += [BulkItem("delete", "books", "5"), BulkItem("create", "books", "new", source={})]
            outcomes = await bulk_service.bulk(counted, items, _allow, _refuse_auto_create)
            assert [o.seq_no if isinstance(o, Written) else type(o).__name__ for o in outcomes] == [
                *range(10),
                10,
                11,
                12,
                13,
            ]
            # One read before deciding; the writes compare nothing again (nobody wrote in between), and
            # the second group knows what the first left.
            assert docs.reads == 1
            assert (await svc.documents.get("books", "4")) == StoredDoc("4", {"n": "again"}, 11, 2)
            assert await svc.documents.get("books", "5") is None
        finally:
            await db.close()

    asyncio.run(go())
