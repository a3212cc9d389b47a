"""Which index reads a page of keys (or counts them), chosen per query from its exact total.

SQLite plans from the statement's shape alone (ANALYZE made the lists slower), and it prefers an
index on the WHERE's equality terms over walking an index in the sort order: "active keys, newest
first" read the ~900,000 entries of ``invalidated = 0`` and sorted them. The total is counted before
the page is read, so the share of keys a query matches tells how far a walk in sort order goes
before the page is full. A selective clause (owner, name, id) whose keys are few, or whose column
is the sort's, has its index find them, then they are sorted; else a short walk in sort order is
the plan; else the selective index if any; else the planner's own choice. The planner is steered
by hiding the other columns' indexes from it (``+column`` on SQLite), which changes no result: only
which index finds the rows. PostgreSQL plans from statistics and sees no hidden column; only its
selective plan differs (the keys found first, in a MATERIALIZED CTE: backends/sql.py ``_fenced``).
"""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import Column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal, iterate, replacement_traverse

from keyplane.query.tree import (
    MATCH_ALL,
    Bool,
    Exists,
    Ids,
    MatchAll,
    MatchNone,
    Prefix,
    Query,
    Range,
    Term,
    Terms,
    Wildcard,
)
from keyplane.store import schema

t = schema.api_keys
# A walk in sort order is chosen when it should find the page within this many keys (the share of
# keys the query matches times the keys the page needs, from the start): ~10-20 ms on SQLite.
WALK_ROWS = 20_000
# Columns with an index of their own that finds few keys for one value or a prefix.
SELECTIVE = frozenset(("username", "name", "id"))
# The managed keys ("true" in metadata.managed): backends/sql.py reads that term from the managed
# column, whose partial index holds those keys alone (schema.py api_keys_managed).
MANAGED = "metadata.managed"
# Columns whose indexes find a large share of the keys (a flag, a type, a time range): hidden from the
# planner beside a selective clause, so that it uses the selective index.
# The realm stays visible: with the owner, the owner index gives a user's keys in creation order.
WEAK = frozenset(("invalidated", "type", "creation", "expiration", "last_used", "invalidation"))
# An owner's keys (a manage_own_api_key user's list) are a range of api_keys_owner in creation order.
OWNER = frozenset(("username", "realm"))


class Plan(enum.Enum):
    WALK = "walk"  # the sort column's index, in order, filtering as it goes
    SELECTIVE = "selective"  # the index of the query's selective clause, then a sort of its keys
    FREE = "free"  # the database's choice


# The columns of api_keys_creation_state (schema.py): a count over them alone can scan that index.
COVERED = frozenset(("creation", "invalidated", "type", "expiration", "last_used"))
# Sort columns with an index that starts with them.
WALKABLE = frozenset(("creation", "expiration", "name", "last_used", "invalidation", "id", "username", "invalidated"))


def choose(query: Query, sort_column: str | None, needed: int, total: int, keys: int) -> Plan:
    """The plan for a page that needs ``needed`` keys in order, of a query matching ``total`` of ``keys``."""
    if sort_column == "creation" and OWNER <= _pinned(query):
        return Plan.SELECTIVE
    # A walk's length is an expectation that fails when the filter and the order are related (the
    # owner's keys all lack an expiration; names with a prefix, by name), while the selective plan
    # reads ``total`` keys at most: taken when that is few, or when the order is on its own column.
    if prefers_selective(query, sort_column, total):
        return Plan.SELECTIVE
    if sort_column in WALKABLE and total * WALK_ROWS >= needed * keys:
        return Plan.WALK
    return Plan.SELECTIVE if selective(query) else Plan.FREE


def prefers_selective(query: Query, sort_column: str | None, total: int) -> bool:
    """Whether ``query`` has a selective clause whose index should find its keys, then sorted."""
    return selective(query) and (total <= WALK_ROWS or sort_column in _selective_columns(query))


def managed_in_order(query: Query, sort_column: str | None) -> bool:
    """Whether ``query`` requires managed keys and the page is in creation order: their partial index
    (schema.py api_keys_managed) walks them in that order, so reading them all first is no gain."""
    if sort_column != "creation":
        return False
    required = query.must + query.filter if isinstance(query, Bool) else (query,)
    return any(not isinstance(q, Bool) and selective(q) and _selective_columns(q) == {MANAGED} for q in required)


def _pinned(query: Query) -> set[str]:
    """Columns ``query`` requires to equal one value (terms among its required clauses)."""
    if isinstance(query, Bool):
        return set().union(*(_pinned(q) for q in query.must + query.filter))
    if isinstance(query, Term) and query.field.parent is None and not query.case_insensitive:
        return {query.field.name}
    return set()


def selective(query: Query) -> bool:
    """Whether every key ``query`` matches is found by a selective index (owner, name, id, managed)."""
    if query.__class__ is MatchAll:  # the console's list, asked twice a page: no test of the other kinds
        return False
    if isinstance(query, Bool):
        if any(selective(q) for q in query.must + query.filter):
            return True
        return bool(query.should) and query.required_should() >= 1 and all(selective(q) for q in query.should)
    if isinstance(query, Ids):
        return True
    if isinstance(query, (Term, Terms)) and query.field.name == MANAGED:
        values = query.values if isinstance(query, Terms) else (query.value,)
        return tuple(values) == ("true",) and not getattr(query, "case_insensitive", False)
    if isinstance(query, (Term, Terms)):
        return (
            query.field.parent is None
            and query.field.name in SELECTIVE
            and not getattr(query, "case_insensitive", False)
        )
    if isinstance(query, Prefix):
        return query.field.name == "name" and not query.case_insensitive and query.value != ""
    if isinstance(query, Wildcard):
        return query.field.name == "name" and not query.case_insensitive and query.pattern[:1] not in ("", "*", "?")
    return False


def given(query: Query, field: str, present: bool) -> Query:
    """``query`` for keys that have a value of ``field`` (``present``) or lack one: clauses on the field
    become constants, so that "expires after now or never" is "expires after now" among keys that
    expire, a range the expiration index starts from. It matches the same keys under that assumption."""
    if isinstance(query, Bool):
        return Bool(
            must=tuple(given(q, field, present) for q in query.must),
            filter=tuple(given(q, field, present) for q in query.filter),
            should=tuple(given(q, field, present) for q in query.should),
            must_not=tuple(given(q, field, present) for q in query.must_not),
            minimum_should_match=query.minimum_should_match,
        )
    if isinstance(query, Exists) and query.field.name == field and query.field.parent is None:
        return MATCH_ALL if present else MatchNone()
    if not present and isinstance(query, (Range, Term, Terms, Prefix, Wildcard)) and query.field.name == field:
        return MatchNone() if query.field.parent is None else query
    return query


def counted_hidden(query: Query, cond: ColumnElement[bool]) -> frozenset[str]:
    """The columns to hide when counting ``query``'s keys (``cond``) on the keys themselves.

    Beside a selective clause, the weak columns. Else, for a disjunction over columns that
    ``api_keys_creation_state`` holds, every column: SQLite would answer each branch from its own
    index (a "MULTI-INDEX OR" of ranges that each hold most keys, reading every key's row: 15 s for
    keys unused for 30 days over 1M keys), where a scan of that index reads small entries only.
    """
    if selective(query):
        return WEAK
    used = {c.name for c in iterate(cond) if isinstance(c, Column) and c.table is t}
    if _disjunction(query) and used <= COVERED:
        return frozenset(c.name for c in t.columns)
    return frozenset()


def _disjunction(query: Query) -> bool:
    if not isinstance(query, Bool):
        return False
    if query.should and query.required_should() >= 1:
        return True
    return any(_disjunction(q) for q in query.must + query.filter + query.must_not)


def _selective_columns(query: Query) -> set[str]:
    """The columns of the selective clauses of ``query`` (the id's for ``ids``)."""
    if isinstance(query, Bool):
        return set().union(*(_selective_columns(q) for q in query.must + query.filter + query.should))
    if isinstance(query, Ids):
        return {"id"}
    if isinstance(query, (Term, Terms, Prefix, Wildcard)) and selective(query):
        return {query.field.name}
    return set()


def steer(cond: ColumnElement[bool], hidden: frozenset[str]) -> ColumnElement[bool]:
    """``cond`` with the columns named in ``hidden`` out of the planner's reach (same rows)."""
    if not hidden:
        return cond

    def replace(element: Any) -> Any:
        if isinstance(element, Column) and element.table is t and element.name in hidden:
            return _Hidden(element)
        return None

    steered: ColumnElement[bool] = replacement_traverse(cond, {}, replace)  # type: ignore[call-overload]
    return steered


def hidden_for(plan: Plan, sort_column: str | None) -> frozenset[str]:
    """The columns to hide for ``plan``; a walk keeps only its sort column (its search_after range)."""
    if plan is Plan.WALK:
        return frozenset(c.name for c in t.columns if c.name != sort_column)
    if plan is Plan.SELECTIVE:
        return WEAK
    return frozenset()


class _Hidden(ColumnElement[Any]):
    """A column the planner cannot match to an index: ``+col`` on SQLite, the column elsewhere."""

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: Column[Any]) -> None:
        self.column = column
        self.type = column.type


@compiles(_Hidden)
def _plain(element: _Hidden, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(_Hidden, "sqlite")
def _unary_plus(element: _Hidden, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.column, **kw)
