"""Which documents a query can match, read from the term rows (``terms.py``) instead of each
``_source``: the query tree translated into a plan the store runs.

A plan is ``exact`` when it matches exactly the documents the in-memory evaluator matches (irregular
documents aside: they always go to the evaluator); otherwise it matches a superset of them, and the
caller evaluates its matches in memory. A clause with no translation is the superset of everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keyplane.indices import terms
from keyplane.query import memory
from keyplane.query.tree import Bool, Exists, Ids, MatchAll, MatchNone, Query, Range, RangeOp, Term, Terms

# Values per IN list: more are read as "anything" (a superset) rather than bound one by one.
MAX_VALUES = 1000


@dataclass(frozen=True)
class Everything:
    pass


@dataclass(frozen=True)
class Nothing:
    pass


@dataclass(frozen=True)
class IdIn:
    ids: tuple[str, ...]


@dataclass(frozen=True)
class ValueIn:
    """A value of ``field`` (as ``memory.keyword`` gives it) is one of ``values``."""

    field: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class HasField:
    field: str


@dataclass(frozen=True)
class InRange:
    """A number (``numeric``) or string value of ``field`` within every bound."""

    field: str
    numeric: bool
    bounds: tuple[tuple[RangeOp, Any], ...]


@dataclass(frozen=True)
class Not:
    plan: Plan


@dataclass(frozen=True)
class AtLeast:
    """At least ``count`` of the plans match (all of them: an AND; one: an OR)."""

    count: int
    plans: tuple[Plan, ...]


Plan = Everything | Nothing | IdIn | ValueIn | HasField | InRange | Not | AtLeast

EVERYTHING, NOTHING = Everything(), Nothing()
_SUPERSET: tuple[Plan, bool] = (EVERYTHING, False)


def plan(query: Query) -> tuple[Plan, bool]:
    """The plan of ``query`` and whether it is exact."""
    field = getattr(query, "field", None)
    if field is not None and terms.SEP in field.name:
        # No term row has such a field (its documents are irregular).
        return (NOTHING, True) if isinstance(query, (Term, Terms, Exists)) else _SUPERSET
    if isinstance(query, MatchAll):
        return EVERYTHING, True
    if isinstance(query, MatchNone):
        return NOTHING, True
    if isinstance(query, Term):
        if query.case_insensitive:
            return _SUPERSET
        return _values(query.field.name, (query.value,))
    if isinstance(query, Terms):
        return _values(query.field.name, query.values)
    if isinstance(query, Ids):
        return _ids(query.values)
    if isinstance(query, Exists):
        return _exists(query.field.name)
    if isinstance(query, Range):
        return _range(query.field.name, query.bounds)
    if isinstance(query, Bool):
        return _bool(query)
    return _SUPERSET


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, bool, int, float))


def _values(field: str, values: tuple[Any, ...]) -> tuple[Plan, bool]:
    if not all(_scalar(v) for v in values) or len(values) > MAX_VALUES:
        return _SUPERSET  # null matches an array's null element; objects compare whole
    wanted = tuple(dict.fromkeys(str(memory.keyword(v)) for v in values))
    if not wanted:
        return NOTHING, True
    if field == "_id":
        return _ids(wanted)
    if field.startswith("_id."):
        return NOTHING, True
    # Strings with NUL (or the stores' escape of it) are only in irregular documents.
    wanted = tuple(v for v in wanted if "\x00" not in v and "\uffff" not in v)
    return (ValueIn(field, wanted), True) if wanted else (NOTHING, True)


def _ids(ids: tuple[str, ...]) -> tuple[Plan, bool]:
    if len(ids) > MAX_VALUES:
        return _SUPERSET
    return (IdIn(tuple(dict.fromkeys(ids))), True) if ids else (NOTHING, True)


def _exists(field: str) -> tuple[Plan, bool]:
    if field == "_id":
        return EVERYTHING, True
    if field.startswith("_id."):
        return NOTHING, True
    return HasField(field), True


def _range(field: str, bounds: tuple[tuple[RangeOp, Any], ...]) -> tuple[Plan, bool]:
    if not bounds or field == "_id" or field.startswith("_id."):
        return _SUPERSET
    values = [v for _, v in bounds]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        if any(isinstance(v, int) and abs(v) > terms.MAX_EXACT_INT for v in values):
            return _SUPERSET
        return InRange(field, True, bounds), True
    if all(isinstance(v, str) and "\x00" not in v and "\uffff" not in v for v in values):
        return InRange(field, False, bounds), True
    return _SUPERSET


def _bool(query: Bool) -> tuple[Plan, bool]:
    parts: list[Plan] = []
    exact = True
    for clause in query.must + query.filter:
        one, one_exact = plan(clause)
        parts.append(one)
        exact = exact and one_exact
    for clause in query.must_not:
        one, one_exact = plan(clause)
        if not one_exact:  # the negation of a superset is no superset
            parts.append(EVERYTHING)
            exact = False
        else:
            parts.append(Not(one))
    minimum = query.required_should()
    if minimum > 0:
        should = [plan(clause) for clause in query.should]
        if minimum > len(should):
            return NOTHING, True
        parts.append(AtLeast(minimum, tuple(p for p, _ in should)))
        exact = exact and all(e for _, e in should)
    return _simplified(AtLeast(len(parts), tuple(parts))), exact


def _simplified(node: AtLeast) -> Plan:
    """Drop what changes nothing, so the store sees the plan's real work (a lone term, often)."""
    plans = list(node.plans)
    count = node.count
    if count == len(plans):  # an AND
        plans = [p for p in plans if not isinstance(p, Everything)]
        if any(isinstance(p, Nothing) for p in plans):
            return NOTHING
        if not plans:
            return EVERYTHING
        if len(plans) == 1:
            return plans[0]
        return AtLeast(len(plans), tuple(plans))
    if count == 1 and any(isinstance(p, Everything) for p in plans):
        return EVERYTHING
    return node
