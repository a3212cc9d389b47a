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
    ScalarSelect,
    and_,
    case,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.engine import Connection

from keyplane.indices import pushdown, terms
from keyplane.indices.core import Source
from keyplane.store import nul, schema
from keyplane.store.database import Conn

tx, dx = schema.content_terms, schema.documents

Doc = tuple[str, Source]  # id, source

_SQLITE_INSERT = "INSERT INTO content_terms (index_name, field, value, kind, id, num) VALUES (?, ?, ?, ?, ?, ?)"
_SQLITE_DELETE = "DELETE FROM content_terms WHERE index_name = ? AND field = ? AND value = ? AND kind = ? AND id = ?"
_PG_ARRAYS = (
    "unnest(CAST(:f AS text[]), CAST(:v AS text[]), CAST(:k AS text[]), CAST(:i AS text[]), CAST(:n AS float8[]))"
    " AS t(f, v, k, i, n)"
)
_PG_INSERT = text(
    "INSERT INTO content_terms (index_name, field, value, kind, id, num) "
    f"SELECT CAST(:index AS text), t.f, t.v, t.k, t.i, t.n FROM {_PG_ARRAYS}"
)
_PG_DELETE = text(
    f"DELETE FROM content_terms USING {_PG_ARRAYS} WHERE index_name = CAST(:index AS text) "
    "AND field = t.f AND value = t.v AND kind = t.k AND id = t.i"
)


def _rows(index: str, docs: Sequence[Doc]) -> list[tuple[str, str, str, str, str, float | None]]:
    return [(index, f, v, k, doc_id, n) for doc_id, source in docs for f, v, k, n in terms.term_rows(source)]


def _pg_params(index: str, docs: Sequence[Doc]) -> dict[str, Any]:
    fields: list[str] = []
    values: list[str] = []
    kinds: list[str] = []
    ids: list[str] = []
    nums: list[float | None] = []
    for doc_id, source in docs:
        sealed = nul.seal(doc_id)
        for f, v, k, n in terms.term_rows(source):
            fields.append(f)
            values.append(v)
            kinds.append(k)
            ids.append(sealed)
            nums.append(n)
    return {"index": nul.seal(index), "f": fields, "v": values, "k": kinds, "i": ids, "n": nums}


def _write_sync(sync: Connection, statement: str, index: str, docs: Sequence[Doc], *, delete: bool) -> None:
    rows = _rows(index, docs)
    if delete:
        sync.exec_driver_sql(statement, [r[:5] for r in rows])
    elif rows:
        sync.exec_driver_sql(statement, rows)


async def add(conn: Conn, is_postgres: bool, index: str, docs: Sequence[Doc]) -> None:
    """Write the rows of these documents (their current versions)."""
    if not docs:
        return
    if is_postgres:
        await conn.execute(_PG_INSERT, _pg_params(index, docs))
    else:
        await conn.run_sync(lambda sync: _write_sync(sync, _SQLITE_INSERT, index, docs, delete=False))


async def remove(conn: Conn, is_postgres: bool, index: str, docs: Sequence[Doc]) -> None:
    """Delete the rows of these documents (the versions being replaced or deleted)."""
    if not docs:
        return
    if is_postgres:
        await conn.execute(_PG_DELETE, _pg_params(index, docs))
    else:
        await conn.run_sync(lambda sync: _write_sync(sync, _SQLITE_DELETE, index, docs, delete=True))


def backfill_content_terms(sync: Connection) -> None:
    """The rows of every stored document (the migration that adds the table)."""
    postgres = sync.dialect.name == "postgresql"
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
                sync.execute(_PG_INSERT, _pg_params(index, docs))
            else:
                _write_sync(sync, _SQLITE_INSERT, index, docs, delete=False)
        after = (batch[-1].index_name, batch[-1].id)


# -- plans ------------------------------------------------------------------------------------------------


def _ids_of(index: str, *conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return dx.c.id.in_(select(tx.c.id).where(tx.c.index_name == index, *conditions))


_OPS = {
    "gt": lambda c, b: c > b,
    "gte": lambda c, b: c >= b,
    "lt": lambda c, b: c < b,
    "lte": lambda c, b: c <= b,
}


def condition(index: str, plan: pushdown.Plan) -> ColumnElement[bool]:
    """The plan as a condition on the ``documents`` rows of the index."""
    if isinstance(plan, pushdown.Everything):
        return true()
    if isinstance(plan, pushdown.Nothing):
        return false()
    if isinstance(plan, pushdown.IdIn):
        return dx.c.id.in_(plan.ids)
    if isinstance(plan, pushdown.ValueIn):
        value = tx.c.value == plan.values[0] if len(plan.values) == 1 else tx.c.value.in_(plan.values)
        return _ids_of(index, tx.c.field == plan.field, value, tx.c.kind.in_(terms.VALUE_KINDS))
    if isinstance(plan, pushdown.HasField):
        return _ids_of(index, tx.c.field == plan.field)
    if isinstance(plan, pushdown.InRange):
        if plan.numeric:
            kinds: ColumnElement[bool] = tx.c.kind.in_((terms.NUMBER, terms.BOOLEAN))
            bounds = [_OPS[op](tx.c.num, literal(float(b))) for op, b in plan.bounds]
        else:
            kinds = tx.c.kind == terms.STRING
            bounds = [_OPS[op](tx.c.value, b) for op, b in plan.bounds]
        return _ids_of(index, tx.c.field == plan.field, kinds, *bounds)
    if isinstance(plan, pushdown.Not):
        return not_(condition(index, plan.plan))
    parts = [condition(index, p) for p in plan.plans]
    if plan.count <= 0:
        return true()
    if plan.count > len(parts):
        return false()
    if plan.count == len(parts):
        return and_(*parts)
    if plan.count == 1:
        return or_(*parts)
    hits = sum((case((p, 1), else_=0) for p in parts), start=literal(0))
    return hits >= plan.count


def irregular(index: str) -> ColumnElement[bool]:
    """The documents of the index that searches evaluate in memory."""
    return _ids_of(index, tx.c.field == "", tx.c.value == "", tx.c.kind == terms.IRREGULAR)


def has_irregular(index: str) -> Any:
    return (
        select(tx.c.id)
        .where(tx.c.index_name == index, tx.c.field == "", tx.c.value == "", tx.c.kind == terms.IRREGULAR)
        .limit(1)
    )


def visible(index: str, refreshed: ScalarSelect[Any]) -> ColumnElement[bool]:
    return and_(dx.c.index_name == index, dx.c.seq_no <= refreshed)


def count_of(where: ColumnElement[bool]) -> Any:
    return select(func.count()).select_from(dx).where(where)
