"""Indices and documents in SQL: the index row holds the last sequence number given out, and each
document row its own, so a write is one transaction that bumps the one and compares-and-sets the other."""

from __future__ import annotations

import functools
import heapq
from collections.abc import AsyncIterator, Mapping, Sequence
from functools import partial
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Row,
    ScalarSelect,
    Select,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    exc,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import BindParameter

from keyplane import jsontext
from keyplane.indices import pushdown
from keyplane.indices.backends.base import DocStats, DocWrite, Matches, ReadMark
from keyplane.indices.backends.terms import sql as term_rows
from keyplane.indices.core import IndexMeta, IndexMissing, Source, StoredDoc
from keyplane.store import nul, schema
from keyplane.store.database import Conn, Database
from keyplane.store.prepared import Prepared

ix, dx, sx, tx = schema.indices, schema.documents, schema.document_snapshots, schema.content_terms


def _meta(row: dict[str, Any]) -> IndexMeta:
    body = orjson.loads(row["doc"])
    return IndexMeta(row["name"], row["uuid"], row["creation"], body["settings"], body["mappings"], body["aliases"])


def _doc(row: dict[str, Any]) -> StoredDoc:
    return StoredDoc(row["id"], orjson.loads(row["source"]), row["seq_no"], row["version"], row["primary_term"])


# Ids per statement when many documents are read or compared at once (well under both stores'
# limits on bound parameters).
_IDS_PER_STATEMENT = 1000


async def _next_seq_no(conn: Conn, index: str, *, refresh: bool = False) -> tuple[int, int]:
    """Take the index's next sequence number; the row lock it holds orders the index's writes. Also the
    last sequence number its searches saw before this write (see ``_take_seq_nos`` for ``refresh``)."""
    last, refreshed, _ = await _take_seq_nos(conn, index, 1, refresh=refresh)
    return last, refreshed


async def _take_seq_nos(conn: Conn, index: str, count: int, *, refresh: bool = False) -> tuple[int, int, str]:
    """The index's next ``count`` sequence numbers (the last is returned, with the index's uuid), in one
    statement; with ``refresh`` the write also makes itself visible to searches (``_refresh``, in the
    same transaction). The kept pre-images are deleted by a statement of their own once the index's
    row is locked: in the same statement (a PostgreSQL WITH) the delete would read as of the
    statement's start and miss those of a write that committed while this one waited for the lock."""
    row = (await conn.execute(_TAKE_REFRESHED if refresh else _TAKE, {"index": index, "taken": count})).first()
    if row is None:
        raise IndexMissing(index)
    if refresh:
        await conn.execute(_FORGET_KEPT, {"index": index})
    return int(row["seq_no"]), int(row["refreshed_seq_no"]), str(row["uuid"])


def _take(refresh: bool) -> Prepared:
    """The UPDATE of ``_take_seq_nos`` (parameters ``index`` and ``taken``, how many), answering the index's
    values after it: its ``refreshed_seq_no`` is the one before the write when it does not refresh."""
    taken = ix.c.seq_no + bindparam("taken", type_=BigInteger)
    values = {"seq_no": taken, "refreshed_seq_no": taken} if refresh else {"seq_no": taken}
    found = ix.c.seq_no, ix.c.refreshed_seq_no, ix.c.uuid
    return Prepared(update(ix).where(ix.c.name == bindparam("index")).values(values).returning(*found))


_TAKE, _TAKE_REFRESHED = _take(False), _take(True)
# Searches see every write so far: the kept pre-images are no longer needed (parameter ``index``).
_FORGET_KEPT = Prepared(delete(sx).where(sx.c.index_name == bindparam("index")))
_REFRESH = Prepared(update(ix).where(ix.c.name == bindparam("index")).values(refreshed_seq_no=ix.c.seq_no))


def _chunks(ids: Sequence[str]) -> list[Sequence[str]]:
    return [ids[i : i + _IDS_PER_STATEMENT] for i in range(0, len(ids), _IDS_PER_STATEMENT)]


def _snapshot_row(index: str, doc: StoredDoc) -> dict[str, Any]:
    return {
        "index_name": index,
        "id": doc.id,
        "seq_no": doc.seq_no,
        "primary_term": doc.primary_term,
        "version": doc.version,
        "source": jsontext.dumps(doc.source).decode(),
    }


async def _refresh(conn: Conn, index: str) -> None:
    """Searches see every write so far: the kept pre-images are no longer needed."""
    await conn.execute(_REFRESH, {"index": index})
    await conn.execute(_FORGET_KEPT, {"index": index})


async def _after_write(conn: Conn, index: str, expected: StoredDoc | None, refreshed: int, refresh: bool) -> None:
    """Keep the version searches see of a document a write replaces, unless the write refreshes (its
    sequence numbers were taken with ``refresh``): it is the one ``expected`` when that was written
    before the last refresh (a later version had no searcher to hide from)."""
    if not refresh and expected is not None and expected.seq_no <= refreshed:
        await conn.execute(insert(sx).values(**_snapshot_row(index, expected)))


class SqlIndexRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, meta: IndexMeta) -> IndexMeta | None:
        body = {"settings": meta.settings, "mappings": meta.mappings, "aliases": meta.aliases}
        values = {"name": meta.name, "uuid": meta.uuid, "creation": meta.created_ms, "seq_no": -1}
        try:
            async with self.db.transaction() as conn:
                if (await conn.execute(select(ix.c.name).where(ix.c.name == meta.name))).first():
                    return None
                await conn.execute(insert(ix).values(doc=jsontext.dumps(body).decode(), **values))
        except exc.IntegrityError:
            return None  # created by a concurrent request
        return meta

    async def get(self, name: str) -> IndexMeta | None:
        async with self.db.transaction() as conn:
            row = (await conn.execute(select(ix).where(ix.c.name == name))).first()
        return _meta(row) if row else None

    async def list(self) -> list[IndexMeta]:
        async with self.db.transaction() as conn:
            rows = (await conn.execute(select(ix).order_by(ix.c.name))).rows
        return [_meta(r) for r in rows]

    async def delete(self, name: str) -> bool:
        async with self.db.transaction() as conn:
            await conn.execute(delete(dx).where(dx.c.index_name == name))
            await conn.execute(delete(sx).where(sx.c.index_name == name))
            await conn.execute(delete(tx).where(tx.c.index_name == name))
            res = await conn.execute(delete(ix).where(ix.c.name == name))
        return res.rowcount > 0

    async def delete_all(self) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(delete(dx))
            await conn.execute(delete(sx))
            await conn.execute(delete(tx))
            await conn.execute(delete(ix))

    async def set_mappings(self, expected: IndexMeta, mappings: dict[str, Any]) -> bool:
        body = {"settings": expected.settings, "mappings": mappings, "aliases": expected.aliases}
        async with self.db.transaction() as conn:
            row = (await conn.execute(select(ix).where(ix.c.name == expected.name))).first()
            if row is None or _meta(row) != expected:
                return False
            # Compare-and-set on the text read, so a concurrent change of the metadata is not overwritten.
            res = await conn.execute(
                update(ix)
                .where(and_(ix.c.name == expected.name, ix.c.doc == row["doc"]))
                .values(doc=jsontext.dumps(body).decode())
            )
        return res.rowcount == 1

    async def doc_stats(self) -> dict[str, DocStats]:
        """As searches see the documents: refreshed rows, and the earlier versions kept for searches."""
        refreshed = dx.join(ix, ix.c.name == dx.c.index_name)
        live = (
            select(dx.c.index_name, func.count().label("n"), func.sum(func.length(dx.c.source)).label("size"))
            .select_from(refreshed)
            .where(dx.c.seq_no <= ix.c.refreshed_seq_no)
            .group_by(dx.c.index_name)
        )
        kept = select(
            sx.c.index_name, func.count().label("n"), func.sum(func.length(sx.c.source)).label("size")
        ).group_by(sx.c.index_name)
        totals: dict[str, DocStats] = {}
        async with self.db.transaction() as conn:
            for query in (live, kept):
                for r in (await conn.execute(query)).rows:
                    before = totals.get(r["index_name"], DocStats(0, 0))
                    count, size = before.count + int(r["n"] or 0), before.source_bytes + int(r["size"] or 0)
                    totals[r["index_name"]] = DocStats(count, size)
        return totals


class SqlDocumentRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, index: str, doc_id: str, *, realtime: bool = True) -> StoredDoc | None:
        where = and_(dx.c.index_name == index, dx.c.id == doc_id)
        async with self.db.transaction() as conn:
            if realtime:
                row = (await conn.execute(select(dx).where(where))).first()
                return _doc(row) if row else None
            kept = (await conn.execute(select(sx).where(and_(sx.c.index_name == index, sx.c.id == doc_id)))).first()
            if kept:
                return _doc(kept)
            row = (await conn.execute(select(dx).where(and_(where, dx.c.seq_no <= _refreshed(index))))).first()
        return _doc(row) if row else None

    async def write(
        self, index: str, doc_id: str, source: Source, version: int, expected: StoredDoc | None, *, refresh: bool = True
    ) -> StoredDoc | None:
        text = jsontext.dumps(source).decode()
        pg = self.db.is_postgres
        old = [(doc_id, expected.source, expected.seq_no)] if expected is not None else []
        old_rows, new_rows = term_rows.rows_of(pg, index, old), term_rows.rows_of(pg, index, [(doc_id, source, 0)])
        try:
            async with self.db.transaction() as conn:
                seq_no, refreshed = await _next_seq_no(conn, index, refresh=refresh)
                values = {"seq_no": seq_no, "version": version, "source": text}
                if expected is None:
                    await conn.execute(insert(dx).values(index_name=index, id=doc_id, primary_term=1, **values))
                else:
                    res = await conn.execute(
                        update(dx)
                        .where(and_(dx.c.index_name == index, dx.c.id == doc_id, dx.c.seq_no == expected.seq_no))
                        .values(**values)
                    )
                    if res.rowcount != 1:
                        raise _Raced
                    await term_rows.remove(conn, old_rows)
                await term_rows.add(conn, new_rows, seq_no)
                await _after_write(conn, index, expected, refreshed, refresh)
        except (_Raced, exc.IntegrityError):
            return None
        return StoredDoc(doc_id, source, seq_no, version)

    async def delete(self, index: str, doc_id: str, expected: StoredDoc | None, *, refresh: bool = True) -> int | None:
        old = [(doc_id, expected.source, expected.seq_no)] if expected else []
        old_rows = term_rows.rows_of(self.db.is_postgres, index, old)
        try:
            async with self.db.transaction() as conn:
                seq_no, refreshed = await _next_seq_no(conn, index, refresh=refresh)
                if expected is not None:
                    res = await conn.execute(
                        delete(dx).where(
                            and_(dx.c.index_name == index, dx.c.id == doc_id, dx.c.seq_no == expected.seq_no)
                        )
                    )
                    if res.rowcount != 1:
                        raise _Raced
                    await term_rows.remove(conn, old_rows)
                elif (
                    await conn.execute(select(dx.c.id).where(and_(dx.c.index_name == index, dx.c.id == doc_id)))
                ).first():
                    raise _Raced
                await _after_write(conn, index, expected, refreshed, refresh)
        except _Raced:
            return None
        return seq_no

    async def get_many(self, index: str, ids: Sequence[str]) -> dict[str, StoredDoc]:
        found: dict[str, StoredDoc] = {}
        async with self.db.transaction() as conn:
            for chunk in _chunks(list(dict.fromkeys(ids))):
                for row in (await conn.execute(self._by_ids(list(dx.c), index, chunk))).rows:
                    found[row["id"]] = _doc(row)
        return found

    async def read_many(self, index: str, ids: Sequence[str]) -> tuple[dict[str, StoredDoc], ReadMark | None]:
        found: dict[str, StoredDoc] = {}
        # The mark first, then the documents: a write between the two makes the mark stale (the
        # write compares again), never the documents older than the mark.
        mark_of = select(ix.c.uuid, ix.c.seq_no).where(ix.c.name == index)
        by_ids = [(self._by_ids(list(dx.c), index, chunk), None) for chunk in _chunks(list(dict.fromkeys(ids)))]
        async with self.db.transaction() as conn:
            # One hand-off to a reader on SQLite.
            marked, *results = await conn.execute_all((mark_of, None), *by_ids)
        for rows in results:
            for doc in rows.rows:
                found[doc["id"]] = _doc(doc)
        row = marked.first()
        return found, None if row is None else ReadMark(row["uuid"], int(row["seq_no"]))

    async def write_many(
        self,
        index: str,
        writes: Sequence[DocWrite],
        expected: Mapping[str, StoredDoc | None],
        *,
        refresh: bool = True,
        read_at: ReadMark | None = None,
    ) -> list[int] | None:
        if not writes:
            return []
        # Only each id's last write reaches the table; the earlier ones just take their sequence numbers.
        final: dict[str, tuple[DocWrite, int]] = {}
        for offset, one in enumerate(writes):
            final[one.id] = (one, offset)
        ids = list(final)
        # Serialized before the transaction, so the write lock is held for the statements only.
        texts = {doc_id: _text(one.source) for doc_id, (one, _) in final.items() if one.source is not None}
        # The term rows too: those of the versions replaced (checked below to be the stored ones) and new.
        pg = self.db.is_postgres
        replaced = [(doc_id, was.source, was.seq_no) for doc_id in ids if (was := expected.get(doc_id)) is not None]
        # Each at its offset from the write's first sequence number, which the transaction gives.
        written = [(doc_id, one.source, at) for doc_id, (one, at) in final.items() if one.source is not None]
        old_rows, new_rows = term_rows.rows_of(pg, index, replaced), term_rows.rows_of(pg, index, written)
        try:
            async with self.db.transaction() as conn:
                last, refreshed, uuid = await _take_seq_nos(conn, index, len(writes), refresh=refresh)
                first = last - len(writes) + 1
                # The index row is locked now (SQLite: the write lock), so no other write of the index can
                # commit before this one: what is read here stays until the commit.
                stored: dict[str, int] = {}
                if read_at is not None and read_at == ReadMark(uuid, first - 1):
                    # Nothing written since the read ``expected`` came from: the documents are as read.
                    stored = {doc_id: was.seq_no for doc_id in ids if (was := expected.get(doc_id)) is not None}
                else:
                    # A document expected missing and written is inserted: the primary key refuses it if
                    # it exists (IntegrityError, as a race), so only the others are read to compare.
                    compared = [i for i in ids if expected.get(i) is not None or final[i][0].source is None]
                    for chunk in _chunks(compared):
                        for row in (await conn.execute(self._by_ids([dx.c.id, dx.c.seq_no], index, chunk))).rows:
                            stored[row["id"]] = int(row["seq_no"])
                    for doc_id in compared:
                        was = expected.get(doc_id)
                        if stored.get(doc_id) != (None if was is None else was.seq_no):
                            raise _Raced
                created: list[tuple[str, int, int, str]] = []  # id, seq_no, version, source
                updates: list[dict[str, Any]] = []
                deletes: list[dict[str, Any]] = []
                for doc_id, (one, offset) in final.items():
                    if one.source is None:
                        if doc_id in stored:
                            deletes.append({"b_index": index, "b_id": doc_id})
                    elif doc_id in stored:
                        values = {"b_seq_no": first + offset, "b_version": one.version, "b_source": texts[doc_id]}
                        updates.append({"b_index": index, "b_id": doc_id, **values})
                    else:
                        created.append((doc_id, first + offset, one.version, texts[doc_id]))
                await term_rows.remove(conn, old_rows)
                if deletes:
                    await conn.execute(_DELETE_ONE, deletes)
                if updates:
                    await conn.execute(_UPDATE_ONE, updates)
                await _insert(conn, index, created, new_rows, first)
                if not refresh:
                    # Searches keep seeing the versions written before the last refresh (see _after_write).
                    kept = [
                        _snapshot_row(index, was)
                        for doc_id in ids
                        if (was := expected.get(doc_id)) is not None and was.seq_no <= refreshed
                    ]
                    if kept:
                        await conn.execute(insert(sx), kept)
        except (_Raced, exc.IntegrityError):
            return None
        return list(range(first, last + 1))

    def _by_ids(self, columns: list[Column[Any]], index: str, ids: Sequence[str]) -> Select[Any]:
        """The rows of these ids, each found through the primary key. On PostgreSQL an ``IN`` of bound
        parameters is compared one value at a time against every row of the index when the planner
        prefers the index_name scan (as it does without statistics): one lookup per id instead."""
        if not self.db.is_postgres:
            return select(*columns).where(and_(dx.c.index_name == index, dx.c.id.in_(ids)))
        wanted = (
            func.unnest(bindparam("wanted_ids", [nul.seal(i) for i in ids], type_=ARRAY(Text)))
            .table_valued("id")
            .render_derived(name="wanted")
        )
        # LIMIT keeps the lateral subquery a per-id lookup (the planner does not flatten it into a join).
        one = select(*columns).where(and_(dx.c.index_name == index, dx.c.id == wanted.c.id)).limit(1).lateral("one")
        return select(*(one.c[c.name] for c in columns)).select_from(wanted.join(one, true()))

    async def refresh(self, index: str) -> None:
        async with self.db.transaction() as conn:
            await _refresh(conn, index)

    async def count(self, index: str) -> int:
        async with self.db.transaction() as conn:
            live = select(func.count()).where(and_(dx.c.index_name == index, dx.c.seq_no <= _refreshed(index)))
            kept = select(func.count()).where(sx.c.index_name == index)
            total = int((await conn.execute(live)).scalar() or 0) + int((await conn.execute(kept)).scalar() or 0)
        return total

    async def matches(
        self, index: str, plan: pushdown.Plan, exact: bool, window: tuple[int, int] | None
    ) -> Matches | None:
        async with self.db.transaction() as conn:
            # The index's state in one round trip: its sequence numbers, whether earlier versions are
            # kept for searches (they have no term rows: the caller scans), whether it has irregular documents.
            marks = (await conn.execute(_marks(self.db.is_postgres), {"index": index})).first()
            if marks is None:
                return Matches([], 0 if window is not None and exact else None)
            if marks["kept"]:
                return None
            refreshed = None if marks["seq_no"] == marks["refreshed_seq_no"] else int(marks["refreshed_seq_no"])
            scope = term_rows.Scope(index, self.db.is_postgres)
            paged = window is not None and exact and not marks["irregular"]
            if paged and isinstance(plan, pushdown.ValueIn):
                # A term or terms query: its page and count from its term rows alone.
                start, size = window or (0, 0)
                in_page, value_count, params = term_rows.value_search(scope, plan, refreshed, start, size)
                if size > 0:
                    rows = (await conn.execute(in_page, params)).rows
                    if rows:
                        return Matches([_doc(r) for r in rows], int(rows[0]["total"]))
                total = int((await conn.execute(value_count, params)).scalar() or 0)
                return Matches([], total)
            seen, order = term_rows.visible(index, refreshed, plan), term_rows.order(plan)
            where = term_rows.condition(scope, plan)
            if paged:
                start, size = window or (0, 0)
                if size > 0:
                    # The page and the number of matches in one pass over them.
                    counted = func.count().over().label("total")
                    page = select(*_columns(dx), counted).where(seen, where).order_by(order).offset(start).limit(size)
                    rows = (await conn.execute(page)).rows
                    if rows:
                        return Matches([_doc(r) for r in rows], int(rows[0]["total"]))
                total = int((await conn.execute(term_rows.count_of(and_(seen, where)))).scalar() or 0)
                return Matches([], total)
            found = select(*_columns(dx)).where(seen, or_(where, term_rows.irregular(scope))).order_by(order)
            rows = (await conn.execute(found)).rows
        return Matches([_doc(r) for r in rows], None)

    async def scan(self, index: str, batch: int = 1000) -> AsyncIterator[StoredDoc]:
        async for docs in self.scan_batches(index, batch):
            for doc in docs:
                yield doc

    async def scan_batches(self, index: str, batch: int = 1000) -> AsyncIterator[list[StoredDoc]]:
        after = -2
        while True:
            async with self.db.transaction() as conn:
                # What searches see: the documents written up to the last refresh, and the kept
                # versions of those rewritten or deleted since (their current rows are newer). Two
                # queries merged here rather than one UNION: each reads its table in seq_no order
                # without sorting what is left of the index on every batch.
                live = (
                    select(*_columns(dx))
                    .where(and_(dx.c.index_name == index, dx.c.seq_no <= _refreshed(index), dx.c.seq_no > after))
                    .order_by(dx.c.seq_no)
                    .limit(batch)
                )
                kept = (
                    select(*_columns(sx))
                    .where(and_(sx.c.index_name == index, sx.c.seq_no > after))
                    .order_by(sx.c.seq_no)
                    .limit(batch)
                )
                # Plain tuples, not dicts: this is the one loop that reads a whole index.
                found = await conn.run_sync(partial(_fetch_all, (live, kept)))
            rows = list(heapq.merge(*found, key=_seq_no))[:batch]
            yield [
                StoredDoc(row.id, orjson.loads(row.source), row.seq_no, row.version, row.primary_term) for row in rows
            ]
            if len(rows) < batch:
                return
            after = rows[-1].seq_no


def _text(source: Source) -> str:
    return jsontext.dumps(source).decode()


async def _insert(
    conn: Conn,
    index: str,
    created: list[tuple[str, int, int, str]],
    terms: term_rows.Rows | dict[str, Any],
    first: int,
) -> None:
    """Insert the new documents (id, seq_no, version, source) and the term rows of every document
    written (the write's first sequence number ``first``): on PostgreSQL in one statement over arrays,
    on SQLite in one hand-off to the writer, the rows as plain tuples through the driver."""
    if isinstance(terms, dict):  # PostgreSQL
        if not created:
            await term_rows.add(conn, terms, first)
            return
        ids, sources = [nul.seal(one[0]) for one in created], [nul.seal(one[3]) for one in created]
        flat_ids, flat_sources, flat_terms = term_rows.joined(ids), term_rows.joined(sources), term_rows.pg_flat(terms)
        if flat_ids is not None and flat_sources is not None and flat_terms is not None:
            # Flat texts rather than arrays (see term_rows.pg_flat): no Python call per element.
            seq_nos = term_rows.joined_numbers([one[1] for one in created])
            versions = term_rows.joined_numbers([one[2] for one in created])
            flat = {"index": nul.seal(index), "ids": flat_ids, "seq_nos": seq_nos, "versions": versions}
            statement = _PG_INSERT_FLAT_WITH_TERMS if terms["t"] else _PG_INSERT_FLAT
            await conn.execute(statement, {**flat_terms, **flat, "sources": flat_sources, "first": first})
            return
        docs = {
            "index": nul.seal(index),
            "ids": ids,
            "seq_nos": [one[1] for one in created],
            "versions": [one[2] for one in created],
            "sources": sources,
        }
        await conn.execute(_PG_INSERT_WITH_TERMS if terms["t"] else _PG_INSERT, {**terms, **docs, "first": first})
        return
    rows = [(index, doc_id, seq_no, 1, version, source) for doc_id, seq_no, version, source in created]

    def write(sync: Connection) -> None:
        if rows:
            sync.exec_driver_sql(_SQLITE_INSERT, rows)
        term_rows.add_sync(sync, terms, first)

    if rows or terms:
        await conn.run_sync(write)


_INSERT_COLUMNS = ("index_name", "id", "seq_no", "primary_term", "version", "source")
_SQLITE_INSERT = f"INSERT INTO documents ({', '.join(_INSERT_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)"
_PG_INSERT_SQL = (
    f"INSERT INTO documents ({', '.join(_INSERT_COLUMNS)}) "
    "SELECT CAST(:index AS text), d.id, d.seq_no, 1, d.version, d.source FROM unnest(CAST(:ids AS text[]), "
    "CAST(:seq_nos AS bigint[]), CAST(:versions AS bigint[]), CAST(:sources AS text[])) "
    "AS d(id, seq_no, version, source)"
)
_PG_INSERT_FLAT_SQL = (
    f"INSERT INTO documents ({', '.join(_INSERT_COLUMNS)}) "
    f"SELECT CAST(:index AS text), d.id, d.seq_no, 1, d.version, d.source FROM unnest({term_rows.split(':ids')}, "
    "CAST(string_to_array(CAST(:seq_nos AS text), ',') AS bigint[]), "
    "CAST(string_to_array(CAST(:versions AS text), ',') AS bigint[]), "
    f"{term_rows.split(':sources')}) AS d(id, seq_no, version, source)"
)
_PG_INSERT = Prepared(text(_PG_INSERT_SQL))
_PG_INSERT_WITH_TERMS = term_rows.pg_insert_after(_PG_INSERT_SQL)
_PG_INSERT_FLAT = Prepared(text(_PG_INSERT_FLAT_SQL))
_PG_INSERT_FLAT_WITH_TERMS = term_rows.pg_insert_after(_PG_INSERT_FLAT_SQL, flat=True)
_MATCH_ONE = and_(dx.c.index_name == bindparam("b_index"), dx.c.id == bindparam("b_id"))
_DELETE_ONE = delete(dx).where(_MATCH_ONE)
_UPDATE_ONE = (
    update(dx)
    .where(_MATCH_ONE)
    .values(seq_no=bindparam("b_seq_no"), version=bindparam("b_version"), source=bindparam("b_source"))
)


def _fetch_all(queries: tuple[Select[Any], ...], sync: Connection) -> list[Sequence[Row[Any]]]:
    return [sync.execute(query).all() for query in queries]


def _seq_no(row: Row[Any]) -> int:
    return int(row.seq_no)


@functools.lru_cache(maxsize=2)
def _marks(pg: bool) -> Prepared:
    """The index's sequence numbers, whether it keeps earlier versions, whether it has irregular
    documents (parameter ``index``): built and compiled once, as it runs before every pushed-down search."""
    index: BindParameter[str] = bindparam("index")
    kept = exists().where(sx.c.index_name == index).label("kept")
    irregular = exists(term_rows.has_irregular(index, pg)).label("irregular")
    return Prepared(select(ix.c.seq_no, ix.c.refreshed_seq_no, kept, irregular).where(ix.c.name == index))


def _refreshed(index: str) -> ScalarSelect[Any]:
    """The index's last refreshed sequence number, read in the statement that compares with it."""
    return select(ix.c.refreshed_seq_no).where(ix.c.name == index).scalar_subquery()


def _columns(table: Table) -> list[Column[Any]]:
    return [table.c.id, table.c.seq_no, table.c.primary_term, table.c.version, table.c.source]


class _Raced(Exception):
    """Another writer changed the document first; the transaction rolls back."""
