"""Term rows in SQL (``content_terms``): written with each document in its transaction, and the
pushed-down plans of searches (``pushdown.py``) run over them.

Rows are written and deleted by their full key, computed from the document's source (the version
being replaced is always known to the writer), so the table needs no second index. Statements are
driver-level batches: ``executemany`` on SQLite, one statement over ``unnest`` arrays on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Text,
    and_,
    any_,
    bindparam,
    case,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import TextClause

from keyplane.indices import pushdown, terms
from keyplane.indices.core import Source
from keyplane.store import nul, schema
from keyplane.store.database import Conn

tx, dx = schema.content_terms, schema.documents

Doc = tuple[str, Source]  # id, source

_SQLITE_INSERT = "INSERT INTO content_terms (index_name, term, id, num) VALUES (?, ?, ?, ?)"
_SQLITE_DELETE = "DELETE FROM content_terms WHERE index_name = ? AND term = ? AND id = ?"
_PG_ARRAYS = "unnest(CAST(:t AS text[]), CAST(:i AS text[]), CAST(:n AS float8[])) AS r(t, i, n)"
_PG_INSERT = text(
    "INSERT INTO content_terms (index_name, term, id, num) "
    f"SELECT CAST(:index AS text), r.t, r.i, r.n FROM {_PG_ARRAYS}"
)
_PG_DELETE = text(
    f"DELETE FROM content_terms USING {_PG_ARRAYS} WHERE index_name = CAST(:index AS text) AND term = r.t AND id = r.i"
)

Rows = list[tuple[str, str, str, float | None]]


def sqlite_rows(index: str, docs: Sequence[Doc]) -> Rows:
    """The rows of these documents, as the SQLite statements take them."""
    return [(index, term, doc_id, n) for doc_id, source in docs for term, n in terms.term_rows(source)]


def pg_rows(index: str, docs: Sequence[Doc]) -> dict[str, Any]:
    """The rows of these documents, as the PostgreSQL statements take them (one array per column)."""
    keys: list[str] = []
    ids: list[str] = []
    nums: list[float | None] = []
    for doc_id, source in docs:
        sealed = nul.seal(doc_id)
        for term, n in terms.term_rows(source):
            keys.append(term)
            ids.append(sealed)
            nums.append(n)
    return {"index": nul.seal(index), "t": keys, "i": ids, "n": nums}


def rows_of(is_postgres: bool, index: str, docs: Sequence[Doc]) -> Rows | dict[str, Any]:
    """The rows of these documents for ``add`` or ``remove``: computed before the transaction, so
    the write lock is held for the statements only."""
    return pg_rows(index, docs) if is_postgres else sqlite_rows(index, docs)


def pg_insert_after(statement: str) -> TextClause:
    """``statement`` (an INSERT of other rows, with its own parameters), then the term rows of
    ``pg_rows``: one statement, one round trip."""
    return text(f"WITH written AS ({statement}) {_PG_INSERT.text}")


def add_sync(sync: Connection, rows: Rows) -> None:
    """``add`` on SQLite, with the transaction's connection (on the writer thread)."""
    _write_sync(sync, _SQLITE_INSERT, rows, delete=False)


def _write_sync(sync: Connection, statement: str, rows: Rows, *, delete: bool) -> None:
    if rows:
        sync.exec_driver_sql(statement, [r[:3] for r in rows] if delete else rows)


async def add(conn: Conn, rows: Rows | dict[str, Any]) -> None:
    """Write these rows (of the documents' current versions)."""
    if isinstance(rows, dict):
        if rows["t"]:
            await conn.execute(_PG_INSERT, rows)
    elif rows:
        await conn.run_sync(lambda sync: _write_sync(sync, _SQLITE_INSERT, rows, delete=False))


async def remove(conn: Conn, rows: Rows | dict[str, Any]) -> None:
    """Delete these rows (of the versions being replaced or deleted)."""
    if isinstance(rows, dict):
        if rows["t"]:
            await conn.execute(_PG_DELETE, rows)
    elif rows:
        await conn.run_sync(lambda sync: _write_sync(sync, _SQLITE_DELETE, rows, delete=True))


def backfill_content_terms(sync: Connection) -> None:
    """The rows of every stored document, built afresh (the migration that adds the table; it may run
    again over a store whose schema version was set back)."""
    postgres = sync.dialect.name == "postgresql"
    sync.execute(tx.delete())
    after: tuple[str, str] = ("", "")
    while True:
        batch = sync.execute(
            select(dx.c.index_name, dx.c.id, dx.c.source)
            .where(or_(dx.c.index_name > after[0], and_(dx.c.index_name == after[0], dx.c.id > after[1])))
            .order_by(dx.c.index_name, dx.c.id)
            .limit(1000)
        ).all()
        if not batch:
            return
        by_index: dict[str, list[Doc]] = {}
        for row in batch:
            by_index.setdefault(row.index_name, []).append((row.id, orjson.loads(row.source)))
        for index, docs in by_index.items():
            if postgres:
                sync.execute(_PG_INSERT, pg_rows(index, docs))
            else:
                _write_sync(sync, _SQLITE_INSERT, sqlite_rows(index, docs), delete=False)
        after = (batch[-1].index_name, batch[-1].id)


# -- plans ------------------------------------------------------------------------------------------------


def _ids_of(index: str, pg: bool, *conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """The documents with term rows meeting ``conditions``. PostgreSQL is given them as an array: with
    statistics its planner hashes ``IN (subquery)`` against a scan of every document of the index,
    where looking the few matches up by primary key is several times faster."""
    ids = select(tx.c.id).where(tx.c.index_name == index, *conditions)
    if pg:
        return dx.c.id == any_(func.array(ids.scalar_subquery()))
    return dx.c.id.in_(ids)


def _one_of(column: ColumnElement[Any], values: list[str], pg: bool) -> ColumnElement[bool]:
    """``column IN values``. On PostgreSQL one array parameter (``= ANY``), which the planner reads as
    it reads the list: SQLAlchemy rewrites an ``IN`` list's parameters at each execution, so the
    statement could not run as a plain read on the node's pool (no transaction, one round trip).
    The values are given as stored (sealed ids)."""
    if pg:
        return column == any_(bindparam(None, values, type_=ARRAY(Text())))
    return column.in_(values)


def _after(prefix: str) -> str:
    """The least string above every string starting with ``prefix`` (which ends with a kind letter)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _under(prefix: str) -> ColumnElement[bool]:
    """Keys starting with ``prefix``, as a key range."""
    return and_(tx.c.term >= prefix, tx.c.term < _after(prefix))


def _of_field(field: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """The keys of every row of ``field``: from "field SEP" up to the next byte."""
    return tx.c.term > field + terms.SEP, tx.c.term < field + chr(ord(terms.SEP) + 1)


_OPS = {
    "gt": lambda c, b: c > b,
    "gte": lambda c, b: c >= b,
    "lt": lambda c, b: c < b,
    "lte": lambda c, b: c <= b,
}


def condition(index: str, plan: pushdown.Plan, pg: bool, probe: bool = False) -> ColumnElement[bool]:
    """The plan as a condition on the ``documents`` rows of the index.

    A term is read one of two ways: as the list of documents holding it (``IN``: the planner walks
    those documents), or, with ``probe``, as a lookup of each document the rest of the query found
    (``EXISTS`` on the term rows' primary key), so that an AND walks the documents of one clause
    and looks the others up instead of building the list of each. Ranges and exists stay lists:
    their rows are no key lookup."""
    if isinstance(plan, pushdown.Everything):
        return true()
    if isinstance(plan, pushdown.Nothing):
        return false()
    if isinstance(plan, pushdown.IdIn):
        return _one_of(dx.c.id, [nul.seal(i) for i in plan.ids] if pg else list(plan.ids), pg)
    if isinstance(plan, pushdown.ValueIn):
        keys = [terms.key(plan.field, kind, v) for v in plan.values for kind in terms.VALUE_KINDS]
        if probe:
            return exists().where(tx.c.index_name == index, _one_of(tx.c.term, keys, pg), tx.c.id == dx.c.id)
        return _ids_of(index, pg, _one_of(tx.c.term, keys, pg))
    if isinstance(plan, pushdown.HasField):
        return _ids_of(index, pg, *_of_field(plan.field))
    if isinstance(plan, pushdown.InRange):
        if plan.numeric:
            # Every row of the field: only numbers and booleans have a number.
            bounds = [_OPS[op](tx.c.num, literal(float(b))) for op, b in plan.bounds]
            return _ids_of(index, pg, *_of_field(plan.field), *bounds)
        prefix = terms.key(plan.field, terms.STRING)
        bounds = [_OPS[op](tx.c.term, prefix + b) for op, b in plan.bounds]
        return _ids_of(index, pg, _under(prefix), *bounds)
    if isinstance(plan, pushdown.Not):
        return not_(condition(index, plan.plan, pg, True))
    if plan.count <= 0:
        return true()
    if plan.count > len(plan.plans):
        return false()
    if plan.count == len(plan.plans):
        lead = None if probe else min(range(len(plan.plans)), key=lambda n: _lead_rank(plan.plans[n]))
        return and_(*(condition(index, p, pg, n != lead) for n, p in enumerate(plan.plans)))
    if plan.count == 1:
        return or_(*(condition(index, p, pg, probe) for p in plan.plans))
    parts = [condition(index, p, pg, True) for p in plan.plans]
    hits = sum((case((p, 1), else_=0) for p in parts), start=literal(0))
    return hits >= plan.count


def _lead_rank(plan: pushdown.Plan) -> int:
    """Which clause of an AND the store walks: ids, then a term (few documents each, usually)."""
    if isinstance(plan, pushdown.IdIn):
        return 0
    if isinstance(plan, pushdown.ValueIn):
        return 1
    if isinstance(plan, pushdown.Not):
        return 9
    return 5


_IRREGULAR = terms.IRREGULAR_ROW[0]


def irregular(index: str, pg: bool) -> ColumnElement[bool]:
    """The documents of the index that searches evaluate in memory."""
    return _ids_of(index, pg, tx.c.term == _IRREGULAR)


def has_irregular(index: str) -> Any:
    return select(tx.c.id).where(tx.c.index_name == index, tx.c.term == _IRREGULAR).limit(1)


def order(plan: pushdown.Plan) -> ColumnElement[Any]:
    """The sequence-number order of the plan's matches. A plan that narrows the documents is found
    through the term rows and the primary key, then sorted: ``seq_no + 0`` keeps the planners (SQLite
    without statistics above all) from walking the whole index in seq_no order to test each document."""
    return dx.c.seq_no if isinstance(plan, pushdown.Everything) else dx.c.seq_no + 0


def visible(index: str, refreshed: int | None, plan: pushdown.Plan) -> ColumnElement[bool]:
    """The documents searches see: those written up to the last refresh (the caller checked that no
    earlier version is kept), or every one (``refreshed`` None) when nothing was written since."""
    if refreshed is None:
        return dx.c.index_name == index
    return and_(dx.c.index_name == index, order(plan) <= refreshed)


def count_of(where: ColumnElement[bool]) -> Any:
    return select(func.count()).select_from(dx).where(where)
