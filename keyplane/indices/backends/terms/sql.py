"""Term rows in SQL (``content_terms``): written with each document in its transaction, and the
pushed-down plans of searches (``pushdown.py``) run over them.

Rows are written and deleted by their full key, computed from the document's source and sequence
number (the version being replaced is always known to the writer), so the table needs no second
index. Statements are driver-level batches: ``executemany`` on SQLite, one statement over ``unnest``
arrays on PostgreSQL.

On SQLite a document's rows sit in the generation of its sequence number (``gen``, the key's second
column: ``seq_no >> GEN_BITS``), so the rows a write adds are one run of keys after those of earlier
writes: a commit dirties a few pages at the end of the table, where rows keyed by term alone landed
on hundreds of pages all over it (each written to the WAL, then copied back by the checkpointer).
Searches look a term up in each generation of the index (a few dozen per 100,000 documents); a
document's own rows are at one known generation. An irregular document's marker row is in
generation -1, so "has the index irregular documents" is one lookup. On PostgreSQL every row is in
generation 0 (its writes are not limited by the pages they dirty in the same way, and its plans
stay as they were).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    CTE,
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
from sqlalchemy.sql.elements import BindParameter

from keyplane.indices import pushdown, terms
from keyplane.indices.core import Source
from keyplane.store import nul, schema
from keyplane.store.database import Conn
from keyplane.store.prepared import Prepared

tx, dx, ix = schema.content_terms, schema.documents, schema.indices

# id, source, and where the document is written: its sequence number, or its offset from the first
# sequence number of the write (``add`` is given that number, known inside the transaction only).
Doc = tuple[str, Source, int]


def split(param: str) -> str:
    """SQL giving back the texts ``joined`` made of a list, from the text parameter ``param`` (":name")."""
    return f"string_to_array(CAST({param} AS text), chr(65535))"


_JOIN = "\uffff"


def joined(values: list[str]) -> str | None:
    """``values`` as one text that ``split`` gives back, or None when it would not: U+FFFF is never in a
    term key (its document is irregular) and in a sealed id or source only where the original held it or
    NUL, which then go as arrays."""
    text = _JOIN.join(values)
    if values and (not text or text.count(_JOIN) != len(values) - 1):
        return None
    return text


def joined_numbers(values: Sequence[float | int | None]) -> str:
    """Numbers as one text (``N`` for null) that ``string_to_array(.., ',', 'N')`` and a cast give back:
    repr is the shortest text a double reads back from exactly."""
    return ",".join(["N" if v is None else repr(v) for v in values])


# Documents per generation: 4,096 keeps the rows a commit adds together and the lookups of a term
# few (a search looks in every generation of the index).
GEN_BITS = 12
IRREGULAR_GEN = -1

_SQLITE_INSERT = "INSERT INTO content_terms (index_name, gen, term, seq_no, id, num) VALUES (?, ?, ?, ?, ?, ?)"
_SQLITE_DELETE = "DELETE FROM content_terms WHERE index_name = ? AND gen = ? AND term = ? AND seq_no = ? AND id = ?"
# Each row's ``at`` (``s``) is counted from the parameter ``first`` (see ``Doc``).
_PG_ARRAYS = (
    "unnest(CAST(:t AS text[]), CAST(:i AS text[]), CAST(:n AS float8[]), CAST(:s AS bigint[])) AS r(t, i, n, s)"
)
# The same rows given as flat texts (``pg_flat``): asyncpg checks every element of a list it sends as an
# array against three abstract classes (a Python call each, ~0.35 us), about 20 calls a document here.
_PG_FLAT = (
    f"unnest({split(':t')}, {split(':i')}, CAST(string_to_array(CAST(:n AS text), ',', 'N') AS float8[]), "
    "CAST(string_to_array(CAST(:s AS text), ',') AS bigint[])) AS r(t, i, n, s)"
)
_PG_INSERT_SQL = (
    "INSERT INTO content_terms (index_name, term, seq_no, id, num) "
    "SELECT CAST(:index AS text), r.t, CAST(:first AS bigint) + r.s, r.i, r.n FROM "
)
_PG_INSERT, _PG_INSERT_FLAT = text(_PG_INSERT_SQL + _PG_ARRAYS), text(_PG_INSERT_SQL + _PG_FLAT)
_PG_DELETE_SQL = (
    "WHERE index_name = CAST(:index AS text) AND gen = 0 AND term = r.t "
    "AND seq_no = CAST(:first AS bigint) + r.s AND id = r.i"
)
_PG_DELETE = text(f"DELETE FROM content_terms USING {_PG_ARRAYS} {_PG_DELETE_SQL}")
_PG_DELETE_FLAT = text(f"DELETE FROM content_terms USING {_PG_FLAT} {_PG_DELETE_SQL}")
# Run on asyncpg itself, without SQLAlchemy's execution (its context and parameter handling per call).
_PG_WRITES = {
    statement: Prepared(statement) for statement in (_PG_INSERT, _PG_INSERT_FLAT, _PG_DELETE, _PG_DELETE_FLAT)
}

# index, where the document is written (see ``Doc``), term, id, number.
Rows = list[tuple[str, int, str, str, float | None]]
# index, generation, term, sequence number, id, number: a row as stored on SQLite.
Placed = list[tuple[str, int, str, int, str, float | None]]


def sqlite_rows(index: str, docs: Sequence[Doc]) -> Rows:
    """The rows of these documents; ``placed`` gives them their generation and sequence number."""
    return [(index, at, term, doc_id, n) for doc_id, source, at in docs for term, n in terms.term_rows(source)]


def placed(rows: Rows, first: int) -> Placed:
    """The rows with their generation and sequence number, the documents' ``at`` counted from ``first``."""
    return [
        (index, IRREGULAR_GEN if term == _IRREGULAR else (first + at) >> GEN_BITS, term, first + at, doc_id, n)
        for index, at, term, doc_id, n in rows
    ]


def pg_rows(index: str, docs: Sequence[Doc]) -> dict[str, Any]:
    """The rows of these documents, as the PostgreSQL statements take them (one array per column; ``s``
    the documents' ``at``, counted from the statement's ``first``)."""
    keys: list[str] = []
    ids: list[str] = []
    nums: list[float | None] = []
    ats: list[int] = []
    for doc_id, source, at in docs:
        rows = terms.term_rows(source)
        count = len(rows)
        ids += [nul.seal(doc_id)] * count
        ats += [at] * count
        for term, n in rows:
            keys.append(term)
            nums.append(n)
    return {"index": nul.seal(index), "t": keys, "i": ids, "n": nums, "s": ats}


def rows_of(is_postgres: bool, index: str, docs: Sequence[Doc]) -> Rows | dict[str, Any]:
    """The rows of these documents for ``add`` or ``remove``: computed before the transaction, so
    the write lock is held for the statements only."""
    return pg_rows(index, docs) if is_postgres else sqlite_rows(index, docs)


def pg_flat(rows: dict[str, Any]) -> dict[str, Any] | None:
    """``pg_rows`` as the flat statements take them, or None when they cannot (``joined``)."""
    keys, ids = joined(rows["t"]), joined(rows["i"])
    if keys is None or ids is None:
        return None
    numbers, seq = joined_numbers(rows["n"]), joined_numbers(rows["s"])  # sequence numbers: never null
    return {"index": rows["index"], "t": keys, "i": ids, "n": numbers, "s": seq}


def pg_insert_after(statement: str, flat: bool = False) -> Prepared:
    """``statement`` (an INSERT of other rows, with its own parameters), then the term rows of
    ``pg_rows`` (``pg_flat`` when ``flat``): one statement, one round trip."""
    return Prepared(text(f"WITH written AS ({statement}) {(_PG_INSERT_FLAT if flat else _PG_INSERT).text}"))


def add_sync(sync: Connection, rows: Rows, first: int) -> None:
    """``add`` on SQLite, with the transaction's connection (on the writer thread)."""
    if rows:
        sync.exec_driver_sql(_SQLITE_INSERT, placed(rows, first))


async def add(conn: Conn, rows: Rows | dict[str, Any], first: int) -> None:
    """Write these rows (of the documents' current versions), the write's first sequence number ``first``."""
    if isinstance(rows, dict):
        if rows["t"]:
            flat = pg_flat(rows)
            params = {**(rows if flat is None else flat), "first": first}
            await conn.execute(_PG_WRITES[_PG_INSERT if flat is None else _PG_INSERT_FLAT], params)
    elif rows:
        await conn.run_sync(lambda sync: add_sync(sync, rows, first))


async def remove(conn: Conn, rows: Rows | dict[str, Any]) -> None:
    """Delete these rows (of the versions being replaced or deleted, given by their sequence numbers)."""
    if isinstance(rows, dict):
        if rows["t"]:
            flat = pg_flat(rows)
            params = {**(rows if flat is None else flat), "first": 0}
            await conn.execute(_PG_WRITES[_PG_DELETE if flat is None else _PG_DELETE_FLAT], params)
    elif rows:
        keys = [row[:5] for row in placed(rows, 0)]
        await conn.run_sync(lambda sync: sync.exec_driver_sql(_SQLITE_DELETE, keys))


def backfill_content_terms(sync: Connection) -> None:
    """The rows of every stored document, built afresh (the migration that adds the table; it may run
    again over a store whose schema version was set back)."""
    postgres = sync.dialect.name == "postgresql"
    sync.execute(tx.delete())
    after: tuple[str, str] = ("", "")
    while True:
        batch = sync.execute(
            select(dx.c.index_name, dx.c.id, dx.c.seq_no, dx.c.source)
            .where(or_(dx.c.index_name > after[0], and_(dx.c.index_name == after[0], dx.c.id > after[1])))
            .order_by(dx.c.index_name, dx.c.id)
            .limit(1000)
        ).all()
        if not batch:
            return
        by_index: dict[str, list[Doc]] = {}
        for row in batch:
            by_index.setdefault(row.index_name, []).append((row.id, orjson.loads(row.source), int(row.seq_no)))
        for index, docs in by_index.items():
            if postgres:
                sync.execute(_PG_INSERT, {**pg_rows(index, docs), "first": 0})
            else:
                add_sync(sync, sqlite_rows(index, docs), 0)
        after = (batch[-1].index_name, batch[-1].id)


def misplaced(sync: Connection) -> bool:
    """Whether some row of a SQLite store is not in its document's generation (rows restored from a
    backup taken before generations: all in generation 0)."""
    found = sync.exec_driver_sql(
        "SELECT 1 FROM content_terms t WHERE CASE WHEN t.term = ? THEN t.gen != ? ELSE NOT EXISTS "
        "(SELECT 1 FROM documents d WHERE d.index_name = t.index_name AND d.id = t.id AND d.seq_no >> ? = t.gen) "
        "END LIMIT 1",
        (_IRREGULAR, IRREGULAR_GEN, GEN_BITS),
    ).first()
    return found is not None


# -- plans ------------------------------------------------------------------------------------------------


def _generations(index: str | BindParameter[str], bits: int) -> CTE:
    """The generations (of ``bits``) of the index's sequence numbers, up to its last one as the statement reads it: a
    document written after an earlier statement of the search is found in its generation (a list bound
    from an earlier read could miss a document rewritten meanwhile). ``index``: a name or a parameter."""
    last = select(ix.c.seq_no.op(">>")(bits)).where(ix.c.name == index).scalar_subquery()
    gens = select(literal(0).label("g")).cte("gens", recursive=True)
    return gens.union_all(select(gens.c.g + 1).where(gens.c.g < last))


# Built once per index: statements are immutable, and building this one took a tenth of a term search's CPU.
_gens = functools.lru_cache(maxsize=256)(_generations)


@dataclass(frozen=True)
class Scope:
    """The term rows a search reads: those of ``index`` on the store (``pg``)."""

    index: str
    pg: bool

    def rows(self) -> ColumnElement[bool]:
        """The index's rows of documents (a term is looked up in each generation)."""
        if self.pg:
            return and_(tx.c.index_name == self.index, tx.c.gen == 0)
        return and_(tx.c.index_name == self.index, tx.c.gen.in_(select(_gens(self.index, GEN_BITS).c.g)))

    def own_rows(self) -> ColumnElement[bool]:
        """The rows of the document at hand (a ``documents`` row of the index): its generation and
        sequence number, so that a term is looked up by the whole key."""
        gen = literal(0) if self.pg else dx.c.seq_no.op(">>")(GEN_BITS)
        return and_(tx.c.index_name == self.index, tx.c.gen == gen, tx.c.seq_no == dx.c.seq_no, tx.c.id == dx.c.id)

    def irregular_rows(self) -> ColumnElement[bool]:
        return _irregular_rows(self.index, self.pg)


def _irregular_rows(index: str | BindParameter[str], pg: bool) -> ColumnElement[bool]:
    """The marker rows of the index's irregular documents (``index``: a name or a parameter)."""
    gen = 0 if pg else IRREGULAR_GEN
    return and_(tx.c.index_name == index, tx.c.gen == gen, tx.c.term == _IRREGULAR)


def _ids_of(scope: Scope, *conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """The documents with term rows meeting ``conditions``. PostgreSQL is given them as an array: with
    statistics its planner hashes ``IN (subquery)`` against a scan of every document of the index,
    where looking the few matches up by primary key is several times faster."""
    ids = select(tx.c.id).where(*conditions)
    if scope.pg:
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


# Every character of a number's text (Python's str of an int or a float: digits, sign, point, exponent,
# inf, nan).
_NUMBER_CHARS = frozenset("0123456789.-+einfa")
_STRING_ONLY = (terms.STRING,)


def _kinds(value: str) -> tuple[str, ...]:
    """The kinds of rows that may hold ``value`` (a keyword's text): a number's text only holds
    ``_NUMBER_CHARS`` and a boolean's is true or false, so most strings are looked up once, not thrice
    (in every generation)."""
    if value in ("true", "false") or _NUMBER_CHARS.issuperset(value):
        return terms.VALUE_KINDS
    return _STRING_ONLY


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


def condition(scope: Scope, plan: pushdown.Plan, probe: bool = False) -> ColumnElement[bool]:
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
    pg = scope.pg
    if isinstance(plan, pushdown.IdIn):
        return _one_of(dx.c.id, [nul.seal(i) for i in plan.ids] if pg else list(plan.ids), pg)
    if isinstance(plan, pushdown.ValueIn):
        keys = _value_keys(plan)
        if probe:
            return exists().where(scope.own_rows(), _one_of(tx.c.term, keys, pg))
        return _ids_of(scope, scope.rows(), _one_of(tx.c.term, keys, pg))
    if isinstance(plan, pushdown.HasField):
        return _ids_of(scope, scope.rows(), *_of_field(plan.field))
    if isinstance(plan, pushdown.InRange):
        if plan.numeric:
            # Every row of the field: only numbers and booleans have a number.
            bounds = [_OPS[op](tx.c.num, literal(float(b))) for op, b in plan.bounds]
            return _ids_of(scope, scope.rows(), *_of_field(plan.field), *bounds)
        prefix = terms.key(plan.field, terms.STRING)
        bounds = [_OPS[op](tx.c.term, prefix + b) for op, b in plan.bounds]
        return _ids_of(scope, scope.rows(), _under(prefix), *bounds)
    if isinstance(plan, pushdown.Not):
        return not_(condition(scope, plan.plan, True))
    if plan.count <= 0:
        return true()
    if plan.count > len(plan.plans):
        return false()
    if plan.count == len(plan.plans):
        lead = None if probe else min(range(len(plan.plans)), key=lambda n: _lead_rank(plan.plans[n]))
        return and_(*(condition(scope, p, n != lead) for n, p in enumerate(plan.plans)))
    if plan.count == 1:
        return or_(*(condition(scope, p, probe) for p in plan.plans))
    parts = [condition(scope, p, True) for p in plan.plans]
    hits = sum((case((p, 1), else_=0) for p in parts), start=literal(0))
    return hits >= plan.count


def _value_keys(plan: pushdown.ValueIn) -> list[str]:
    return [terms.key(plan.field, kind, v) for v in plan.values for kind in _kinds(v)]


@functools.lru_cache(maxsize=128)
def _value_statements(pg: bool, keys: int, bits: int, bounded: bool) -> tuple[Prepared, Prepared]:
    """The page and count statements of a ``ValueIn`` of ``keys`` term keys (``value_search``), built and
    compiled once: building them per search took half of a term search's CPU. Parameters: index, the
    keys (``k0``...; on PostgreSQL ``keys``, an array, for more than one), with ``bounded`` upto, start, size.
    One key is an equality: PostgreSQL without statistics filtered ``= ANY`` over the whole index."""
    index: BindParameter[str] = bindparam("index")
    if pg:
        many = tx.c.term == any_(bindparam("keys", type_=ARRAY(Text())))
        one_of = tx.c.term == bindparam("k0") if keys == 1 else many
        rows = and_(tx.c.index_name == index, tx.c.gen == 0, one_of)
    else:
        gens = _generations(index, bits)
        terms_in = tx.c.term.in_([bindparam(f"k{n}") for n in range(keys)])
        rows = and_(tx.c.index_name == index, tx.c.gen.in_(select(gens.c.g)), terms_in)
    hits = select(tx.c.seq_no, tx.c.id).where(rows)
    if bounded:
        hits = hits.where(tx.c.seq_no <= bindparam("upto"))
    # A document holding several of the keys (the string "1" and the number 1) has a row for each.
    if keys > 1:
        hits = hits.distinct()
    count = select(func.count()).select_from(hits.subquery("hits"))
    page = hits.order_by(tx.c.seq_no).offset(bindparam("start")).limit(bindparam("size")).subquery("page")
    on = and_(dx.c.index_name == index, dx.c.id == page.c.id)
    total = count.scalar_subquery().label("total")
    columns = (dx.c.id, dx.c.seq_no, dx.c.primary_term, dx.c.version, dx.c.source, total)
    return Prepared(select(*columns).select_from(page.join(dx, on)).order_by(page.c.seq_no)), Prepared(count)


def value_search(
    scope: Scope, plan: pushdown.ValueIn, refreshed: int | None, start: int = 0, size: int = 0
) -> tuple[Prepared, Prepared, dict[str, Any]]:
    """A ``ValueIn``'s matches (of the documents searches see, up to ``refreshed``) from its term rows
    alone, whose key orders a term's documents by sequence number: the page (``start``, ``size``) in
    sequence-number order, each row with the number of matches (``total``); the count alone; and their
    parameters. Only the page's documents are read, where ordering the documents themselves read every
    match by its primary key (on PostgreSQL, 17 of a term search's 18 ms at 1,000 matches)."""
    keys = _value_keys(plan)
    page, count = _value_statements(scope.pg, len(keys), GEN_BITS, refreshed is not None)
    params: dict[str, Any] = {"index": scope.index, "upto": refreshed, "start": start, "size": size}
    if scope.pg and len(keys) > 1:
        params["keys"] = keys
    else:
        params.update({f"k{n}": key for n, key in enumerate(keys)})
    return page, count, params


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


def irregular(scope: Scope) -> ColumnElement[bool]:
    """The documents of the index that searches evaluate in memory."""
    return _ids_of(scope, scope.irregular_rows())


def has_irregular(index: str | BindParameter[str], pg: bool) -> Any:
    """One marker row of the index's irregular documents, if it has any (``index``: a name or a parameter)."""
    return select(tx.c.id).where(_irregular_rows(index, pg)).limit(1)


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
