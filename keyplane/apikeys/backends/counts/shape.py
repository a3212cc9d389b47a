"""Which key queries the count tables answer exactly (``counts/sql.py`` sums them).

Conjunctions of terms on the owner, realm, type and invalidated flag, and (without owner or realm)
whether and when the key expires; for keys not invalidated, also whether the key's last activity
(its last use, else its creation) is before a time, as the console's "unused for N days" asks.
:func:`shape_of` returns None for every other query, and callers count the keys as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from keyplane.query.aggs import TermsAgg
from keyplane.query.fields import FieldType
from keyplane.query.tree import Bool, Exists, MatchAll, Query, Range, Term, Terms

# The grouped columns, by canonical field name, and the type their query values must have.
GROUPED = {"username": str, "realm": str, "type": str, "invalidated": bool}
_INT64 = (-(1 << 63), (1 << 63) - 1)


@dataclass(frozen=True)
class Shape:
    """A conjunction the count tables answer: allowed values per grouped column, and expiration.

    ``low``/``high`` are inclusive bounds in epoch ms (None: open); ``exists`` is implied by either.
    ``idle``: (u, c), keys last used at or before u, or never used and created at or before c (the
    console sends one time for both; a client may send two).
    """

    values: dict[str, frozenset[Any]] = field(default_factory=dict)
    exists: bool = False
    missing: bool = False
    low: int | None = None
    high: int | None = None
    idle: tuple[int, int] | None = None

    @property
    def timed(self) -> bool:
        return self.expiring or self.idle is not None

    @property
    def expiring(self) -> bool:
        """Whether the shape says anything of the expiration."""
        return self.exists or self.missing or self.low is not None or self.high is not None

    @property
    def empty(self) -> bool:
        if any(not allowed for allowed in self.values.values()):
            return True
        if self.missing and (self.exists or self.low is not None or self.high is not None):
            return True
        return self.low is not None and self.high is not None and self.low > self.high

    def allow(self, column: str, values: frozenset[Any]) -> Shape:
        current = self.values.get(column)
        narrowed = values if current is None else current & values
        return replace(self, values={**self.values, column: narrowed})


def shape_of(query: Query) -> Shape | None:
    """The shape of ``query`` when the count tables can count it exactly, else None."""
    return _add(Shape(), query)


def _add(shape: Shape, query: Query) -> Shape | None:
    if isinstance(query, MatchAll):
        return shape
    if isinstance(query, Bool):
        idle = _idle_bound(query)
        if idle is not None:
            # Both conditions hold: each branch (used or not) takes the lower bound.
            if shape.idle is not None:
                idle = (min(idle[0], shape.idle[0]), min(idle[1], shape.idle[1]))
            return replace(shape, idle=idle)
        return _add_bool(shape, query)
    if isinstance(query, (Term, Terms)):
        name = query.field.name
        kind = GROUPED.get(name)
        if kind is None or query.field.parent is not None:
            return None
        if isinstance(query, Term):
            if query.case_insensitive:
                return None
            wanted: tuple[Any, ...] = (query.value,)
        else:
            wanted = query.values
        if not all(type(v) is kind for v in wanted):
            return None  # compared as SQL would convert them: left to SQL
        return shape.allow(name, frozenset(wanted))
    if isinstance(query, Exists):
        name = query.field.name
        if name in GROUPED and query.field.parent is None:
            return shape  # never null
        if name == "expiration" and query.field.type is FieldType.DATE:
            return replace(shape, exists=True)
        return None
    if isinstance(query, Range) and query.field.name == "expiration":
        return _add_range(replace(shape, exists=True), query)
    return None


def _add_bool(shape: Shape, query: Bool) -> Shape | None:
    required = list(query.must + query.filter)
    minimum = query.required_should()
    if minimum == 1 and len(query.should) == 1:
        required.append(query.should[0])
    elif minimum > 0:
        return None  # a disjunction: counted in parts by the caller, or by SQL
    out: Shape | None = shape
    for clause in required:
        out = _add(out, clause) if out is not None else None
    for clause in query.must_not:
        if out is None:
            return None
        out = _exclude(out, clause)
    return out


def _high(query: Query, field: str) -> int | None:
    """The inclusive upper bound of a range on ``field`` with upper bounds only, else None."""
    if not isinstance(query, Range) or query.field.name != field or query.field.parent is not None:
        return None
    high: int | None = None
    for op, value in query.bounds:
        if op not in ("lt", "lte") or type(value) is not int or not _INT64[0] < value <= _INT64[1]:
            return None
        bound = value - 1 if op == "lt" else value
        high = bound if high is None else min(high, bound)
    return high


def _idle_bound(query: Bool) -> tuple[int, int] | None:
    """(u, c) for "last used at or before u, or never used and created at or before c" (key_health.js's
    unused keys; u = c is ``COALESCE(last_used, creation) <= u``); else None."""
    if query.must or query.filter or query.must_not or len(query.should) != 2 or query.required_should() != 1:
        return None
    first, second = query.should
    for used, never in ((first, second), (second, first)):
        high = _high(used, "last_used")
        if high is None or not isinstance(never, Bool) or never.should:
            continue
        lacks = never.must_not
        created = never.must + never.filter
        if len(lacks) != 1 or len(created) != 1:
            continue
        created_high = _high(created[0], "creation")
        lacking = isinstance(lacks[0], Exists) and lacks[0].field.name == "last_used" and lacks[0].field.parent is None
        if created_high is not None and lacking:
            return high, created_high
    return None


def _exclude(shape: Shape, query: Query) -> Shape | None:
    if isinstance(query, Exists) and query.field.name == "expiration" and query.field.type is FieldType.DATE:
        return replace(shape, missing=True)
    if isinstance(query, Term) and query.field.name == "invalidated" and type(query.value) is bool:
        return shape.allow("invalidated", frozenset({not query.value}))
    return None


def _add_range(shape: Shape, query: Range) -> Shape | None:
    low, high = shape.low, shape.high
    for op, value in query.bounds:
        if type(value) is not int or not _INT64[0] <= value <= _INT64[1]:
            return None
        if op in ("gt", "gte"):
            bound = value + 1 if op == "gt" else value
            low = bound if low is None else max(low, bound)
        else:
            bound = value - 1 if op == "lt" else value
            high = bound if high is None else min(high, bound)
    if (low is not None and low > _INT64[1]) or (high is not None and high < _INT64[0]):
        return replace(shape, low=1, high=0)  # no 64-bit time is there: nothing matches
    return replace(shape, low=low, high=high)


def parts(query: Query) -> list[tuple[int, Query]]:
    """Signed queries whose counts add up to the count of ``query`` (as ``SqlQuery.count_parts``):
    ``A and (B or C)`` is ``|A and B| + |A and C| - |A and B and C|``; the disjunction may be the
    query's own or, when it has none, one of its filters (live keys, in key_health.js's unused view)."""
    if isinstance(query, Bool) and not query.should:
        query = _lifted(query)
    if not isinstance(query, Bool) or len(query.should) != 2 or query.minimum_should_match != 1:
        return [(1, query)]
    base = query.must + query.filter
    first, second = query.should

    def part(*extra: Query) -> Query:
        return Bool(filter=base + extra, must_not=query.must_not)

    return [(1, part(first)), (1, part(second)), (-1, part(first, second))]


def _lifted(query: Bool) -> Bool:
    """``query`` with its first filter that is a plain disjunction of two (not an idle bound) as its
    own should clauses: the same keys."""
    required = list(query.must + query.filter)
    for i, clause in enumerate(required):
        if (
            isinstance(clause, Bool)
            and not (clause.must or clause.filter or clause.must_not)
            and len(clause.should) == 2
            and clause.required_should() == 1
            and _idle_bound(clause) is None
        ):
            rest = tuple(required[:i] + required[i + 1 :])
            return Bool(filter=rest, should=clause.should, must_not=query.must_not, minimum_should_match=1)
    return query


def countable(shape: Shape) -> bool:
    """Whether :func:`count` serves ``shape``: expiration is counted by type and invalidated only, the
    last activity for keys not invalidated (api_key_activity_counts) only."""
    if shape.idle is not None:
        return shape.values == {"invalidated": frozenset({False})}
    return not shape.timed or set(shape.values) <= {"type", "invalidated"}


def serves_terms(agg: TermsAgg, shape: Shape | None) -> bool:
    return (
        shape is not None
        and not shape.timed
        and not agg.subs
        and agg.field.parent is None
        and agg.field.name in GROUPED
        and agg.order[0] in ("_count", "_key")
    )
