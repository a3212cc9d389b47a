"""The query tree as SQLAlchemy Core: conditions, sorts, ``search_after`` and GROUP BY aggregations.

An index lives in one table (:class:`SqlIndex`): each field in a column, each flattened field in a
JSON column whose leaves are read as keywords (``store/jsonleaf.py``), on SQLite and PostgreSQL.
Queries, sorts and aggregations run in the database on indexed columns, so a page over a million
rows reads only what it returns. Aggregations return typed results (``keyplane.query.aggs``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Column, String, Table, and_, case, cast, false, func, literal, not_, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from keyplane.query.aggs import (
    Agg,
    AggResult,
    Bucket,
    CardinalityAgg,
    CompositeAgg,
    CompositeResult,
    CompositeSource,
    FieldAgg,
    FilterAgg,
    FiltersAgg,
    FiltersResult,
    MissingAgg,
    RangeAgg,
    RangeBucket,
    RangeResult,
    SingleBucket,
    TermsAgg,
    TermsResult,
    ValueCountAgg,
    ValueResult,
)
from keyplane.query.dates import parse_date
from keyplane.query.fields import Field, FieldType
from keyplane.query.tree import (
    Bool,
    Exists,
    Ids,
    MatchAll,
    MatchNone,
    Prefix,
    Query,
    Range,
    SortKey,
    Term,
    Terms,
    Wildcard,
)
from keyplane.store.database import Conn
from keyplane.store.jsonleaf import LeafIn, LeafText, leaf_rows


@dataclass(frozen=True)
class SqlIndex:
    """Where an index's fields are: ``columns`` by canonical field name, flattened fields' JSON
    columns in ``flattened``, the document id, and what ``_doc`` (index order) sorts by."""

    table: Table
    id: Column[Any]
    columns: Mapping[str, Column[Any]]
    flattened: Mapping[str, Column[Any]]
    doc_order: Column[Any]


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqlQuery:
    """Translates query trees and sort keys over one :class:`SqlIndex`."""

    def __init__(self, index: SqlIndex) -> None:
        self.index = index

    # -- fields ---------------------------------------------------------------------------------------

    def column(self, field: Field) -> ColumnElement[Any]:
        if field.name in self.index.columns:
            return self.index.columns[field.name]
        if field.type is FieldType.FLATTENED:
            return cast(self.index.flattened[field.name], String)
        if field.parent is not None:
            return LeafText(self.index.flattened[field.parent], field.path)
        raise ValueError(f"no column for field [{field.name}]")

    def _never_null(self, field: Field) -> bool:
        if field.type is FieldType.DOC:
            return not self.index.doc_order.nullable
        column = self.index.columns.get(field.name)
        return column is not None and not column.nullable

    # -- queries --------------------------------------------------------------------------------------

    def where(self, query: Query) -> ColumnElement[bool]:
        """A SQL condition true for the rows ``query`` matches."""
        if isinstance(query, MatchAll):
            return true()
        if isinstance(query, MatchNone):
            return false()
        if not isinstance(query, Bool):
            return self._leaf(query)
        required = [self.where(q) for q in query.must + query.filter]
        excluded = [self._negate(q) for q in query.must_not]
        should = [self.where(q) for q in query.should]
        minimum = query.required_should()
        if should and minimum == 1:
            required.append(or_(*should))
        elif should and minimum > 1:
            hits = sum((case((s, 1), else_=0) for s in should), literal(0))
            required.append(hits >= minimum)
        conds = required + excluded
        return and_(true(), *conds) if conds else true()

    def _leaf(self, query: Query) -> ColumnElement[bool]:
        if isinstance(query, Ids):
            return self.index.id.in_(list(query.values))
        if not isinstance(query, (Term, Terms, Prefix, Wildcard, Exists, Range)):
            raise ValueError(f"query clause {type(query).__name__} is not supported in SQL")
        field = query.field
        col = self.column(field)
        ci = isinstance(query, (Term, Prefix, Wildcard)) and query.case_insensitive
        if field.type is FieldType.FLATTENED and not isinstance(query, (Exists, Range)):
            # The flattened root matches any leaf value; look for it in the JSON text.
            found = query.values if isinstance(query, Terms) else (_value_of(query),)
            return or_(
                *[col.like("%" + escape_like(orjson.dumps(str(v)).decode()[:-1]) + "%", escape="\\") for v in found]
            )
        if field.parent is not None and isinstance(query, (Term, Terms)) and not ci:
            # A key of a flattened field: any element of an array at that path matches too.
            wanted = list(query.values) if isinstance(query, Terms) else [query.value]
            return LeafIn(self.index.flattened[field.parent], field.path, wanted) if wanted else false()
        if isinstance(query, Term):
            if ci and isinstance(query.value, str):
                return func.lower(col) == query.value.lower()
            equal: ColumnElement[bool] = col == query.value
            return equal
        if isinstance(query, Terms):
            return col.in_(list(query.values)) if query.values else false()
        if isinstance(query, Prefix):
            pattern = escape_like(query.value) + "%"
            return func.lower(col).like(pattern.lower(), escape="\\") if ci else col.like(pattern, escape="\\")
        if isinstance(query, Wildcard):
            pattern = "".join("%" if c == "*" else "_" if c == "?" else escape_like(c) for c in query.pattern)
            return func.lower(col).like(pattern.lower(), escape="\\") if ci else col.like(pattern, escape="\\")
        if isinstance(query, Exists):
            if field.type is FieldType.FLATTENED:
                json_col = self.index.flattened[field.name]
                return and_(json_col.isnot(None), cast(json_col, String) != "{}")
            return col.isnot(None)
        conds = []
        for op, value in query.bounds:
            conds.append({"gt": col > value, "gte": col >= value, "lt": col < value, "lte": col <= value}[op])
        return and_(col.isnot(None), *conds)

    def _negate(self, query: Query) -> ColumnElement[bool]:
        """NOT of a clause, where a missing field counts as not matching (SQL's NULL would drop the row)."""
        if isinstance(query, Exists) and query.field.type is not FieldType.FLATTENED:
            return self.column(query.field).is_(None)  # stays an index range
        if (
            isinstance(query, Bool)
            and not (query.must or query.filter or query.should)
            and len(query.must_not) == 1
            and query.required_should() <= 0
        ):
            return self.where(query.must_not[0])  # not (not x) is x
        return not_(func.coalesce(self.where(query), false()))

    def count_parts(self, query: Query) -> list[tuple[int, ColumnElement[bool]]]:
        """Conditions whose signed counts add up to the count of ``query``.

        ``A and (B or C)`` is counted as ``|A and B| + |A and C| - |A and B and C|``: each part is an
        index range, where the disjunction forces a scan (a key-management UI asks for "live keys
        that expire later or never" on every page).
        """
        if not isinstance(query, Bool) or len(query.should) != 2 or query.minimum_should_match != 1:
            return [(1, self.where(query))]
        base = [self.where(q) for q in query.must + query.filter] + [self._negate(q) for q in query.must_not]
        first, second = self.where(query.should[0]), self.where(query.should[1])
        return [(1, and_(*base, first)), (1, and_(*base, second)), (-1, and_(*base, first, second))]

    # -- sort -----------------------------------------------------------------------------------------

    def sort_column(self, key: SortKey) -> ColumnElement[Any]:
        return self.index.doc_order if key.field.type is FieldType.DOC else self.column(key.field)

    def order_by(self, sort: Sequence[SortKey]) -> list[Any]:
        order = []
        for key in sort:
            col = self.sort_column(key)
            direction = col.desc() if key.desc else col.asc()
            # Missing values sort last, as in Elasticsearch; NOT NULL columns need no such clause,
            # and without it an index can deliver the order.
            order.append(direction if self._never_null(key.field) else direction.nulls_last())
        # A tie-breaker in the direction of the last key keeps pages stable and index-friendly.
        order.append(self.index.id.desc() if sort and sort[-1].desc else self.index.id.asc())
        return order

    def _typed(self, key: SortKey, value: Any) -> Any:
        """A search_after value in the column's type (clients send numbers back as strings too)."""
        if key.field.type in (FieldType.DATE, FieldType.DOC):
            return parse_date(value)
        if key.field.type is FieldType.BOOLEAN:
            return str(value).lower() in ("true", "1")
        return value

    def at_or_after(self, key: SortKey, value: Any) -> ColumnElement[bool]:
        """Rows whose value of ``key`` is ``value`` or sorts after it, missing ones excluded: a range of
        the column's index that holds every row ``after`` finds with a value (``value`` not None)."""
        col = self.sort_column(key)
        typed = self._typed(key, value)
        bound: ColumnElement[bool] = col <= typed if key.desc else col >= typed
        return bound

    def after(self, sort: Sequence[SortKey], values: Sequence[Any]) -> ColumnElement[bool]:
        """Rows strictly after ``values`` in the sort order, with missing values last."""
        clauses = []
        for i, key in enumerate(sort):
            value = values[i] if i < len(values) else None
            if value is None:
                continue  # nothing sorts after a missing value in this position
            col = self.sort_column(key)
            equal_before = [
                self.sort_column(k).is_(None) if values[j] is None else self.sort_column(k) == self._typed(k, values[j])
                for j, k in enumerate(sort[:i])
            ]
            typed = self._typed(key, value)
            beyond = (col < typed) if key.desc else (col > typed)
            # Missing values sort last; a NOT NULL column has none, and without the OR an index range
            # delivers the page.
            after = beyond if self._never_null(key.field) else or_(beyond, col.is_(None))
            clauses.append(and_(*equal_before, after))
        return or_(false(), *clauses)

    # -- aggregations ---------------------------------------------------------------------------------

    async def aggregate(self, conn: Conn, aggs: Sequence[Agg], query: Query, *, postgres: bool) -> dict[str, AggResult]:
        """Results of ``aggs`` over the rows ``query`` matches, by aggregation name."""
        return await _Aggregator(self, conn, postgres).run(aggs, self.where(query))


def _value_of(query: Term | Prefix | Wildcard) -> Any:
    return query.pattern if isinstance(query, Wildcard) else query.value


def _equal(col: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    return col.is_(None) if value is None else col == value


def _beyond(source: CompositeSource, col: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    """Values of one composite source that sort after ``value`` (missing: first ascending, last descending)."""
    if value is None:
        return false() if source.descending else col.isnot(None)
    if source.descending:
        return or_(col < value, col.is_(None)) if source.missing_bucket else col < value
    greater: ColumnElement[bool] = col > value
    return greater


class _Aggregator:
    """Runs an aggregation tree as SQL, one statement per aggregation or bucket level."""

    def __init__(self, sql: SqlQuery, conn: Conn, postgres: bool) -> None:
        self.sql = sql
        self.index = sql.index
        self.conn = conn
        self.postgres = postgres
        self._kinds: dict[type, Callable[[Any, ColumnElement[bool]], Awaitable[AggResult]]] = {
            TermsAgg: self._terms,
            CompositeAgg: self._composite,
            MissingAgg: self._missing,
            CardinalityAgg: self._cardinality,
            ValueCountAgg: self._value_count,
            FilterAgg: self._filter,
            FiltersAgg: self._filters,
        }

    def _leaves(self, field: Field, cond: ColumnElement[bool]) -> Any:
        """(key, v) rows of a flattened key for the matching rows: one per value, array elements apart."""
        assert field.parent is not None
        table, key = self.index.table, self.index.id
        rows = leaf_rows(table, key.name, self.index.flattened[field.parent].name, field.path, postgres=self.postgres)
        return select(rows.c.key, rows.c.v).where(rows.c.key.in_(select(key).where(cond))).subquery()

    async def run(self, aggs: Sequence[Agg], cond: ColumnElement[bool]) -> dict[str, AggResult]:
        out: dict[str, AggResult] = {}
        for agg in aggs:
            if isinstance(agg, RangeAgg):  # and DateRangeAgg
                out[agg.name] = await self._ranges(agg, cond)
            else:
                out[agg.name] = await self._kinds[type(agg)](agg, cond)
        return out

    async def _count(self, cond: ColumnElement[bool]) -> int:
        stmt = select(func.count()).select_from(self.index.table).where(cond)
        return int((await self.conn.execute(stmt)).scalar() or 0)

    async def _subs(self, agg: Agg, cond: ColumnElement[bool]) -> dict[str, AggResult]:
        return await self.run(agg.subs, cond) if agg.subs else {}

    async def _bucket(self, agg: Agg, cond: ColumnElement[bool]) -> SingleBucket:
        count = await self._count(cond)
        return SingleBucket(count, await self._subs(agg, cond))

    async def _flattened_terms(self, agg: TermsAgg, cond: ColumnElement[bool]) -> TermsResult:
        """Terms over a flattened key: a row counts once in the bucket of each of its values."""
        leaves = self._leaves(agg.field, cond)
        count = func.count(leaves.c.key.distinct()).label("c")
        stmt = select(leaves.c.v.label("k"), count).group_by(leaves.c.v)
        by, direction = agg.order
        sort_col = count if by == "_count" else leaves.c.v
        stmt = stmt.order_by(sort_col.desc() if direction == "desc" else sort_col.asc(), leaves.c.v.asc())
        rows = (await self.conn.execute(stmt.limit(agg.size))).rows
        pairs = select(leaves.c.key, leaves.c.v).distinct().subquery()
        total = int((await self.conn.execute(select(func.count()).select_from(pairs))).scalar() or 0)
        buckets = []
        for row in rows:
            bucket = Bucket(row["k"], int(row["c"]))
            if agg.subs:
                assert agg.field.parent is not None
                json_col = self.index.flattened[agg.field.parent]
                bucket.subs = await self.run(agg.subs, and_(cond, LeafIn(json_col, agg.field.path, [row["k"]])))
            buckets.append(bucket)
        return TermsResult(buckets, total - sum(b.doc_count for b in buckets))

    async def _terms(self, agg: TermsAgg, cond: ColumnElement[bool]) -> TermsResult:
        if agg.field.parent is not None:
            return await self._flattened_terms(agg, cond)
        col = self.sql.column(agg.field)
        count = func.count().label("c")
        stmt = select(col.label("k"), count).where(and_(cond, col.isnot(None))).group_by(col)
        by, direction = agg.order
        sort_col = count if by == "_count" else col
        stmt = stmt.order_by(sort_col.desc() if direction == "desc" else sort_col.asc(), col.asc())
        rows = (await self.conn.execute(stmt.limit(agg.size))).rows
        total = await self._count(and_(cond, col.isnot(None)))
        buckets = []
        for row in rows:
            bucket = Bucket(row["k"], int(row["c"]))
            if agg.subs:
                bucket.subs = await self.run(agg.subs, and_(cond, col == row["k"]))
            buckets.append(bucket)
        return TermsResult(buckets, total - sum(b.doc_count for b in buckets))

    async def _composite(self, agg: CompositeAgg, cond: ColumnElement[bool]) -> CompositeResult:
        # A flattened source joins its values (one row per array element; none when missing), so a row
        # falls in every combination of its values, and is counted once per bucket.
        base: Any = self.index.table
        cols: list[tuple[CompositeSource, ColumnElement[Any]]] = []
        for source in agg.sources:
            if source.field.parent is not None:
                leaves = self._leaves(source.field, cond)
                base = base.outerjoin(leaves, leaves.c.key == self.index.id)
                cols.append((source, leaves.c.v))
            else:
                cols.append((source, self.sql.column(source.field)))
        size = agg.size
        present = [col.isnot(None) for source, col in cols if not source.missing_bucket]
        count = func.count(self.index.id.distinct()).label("_count")
        stmt = select(*[c.label(s.name) for s, c in cols], count).select_from(base).where(cond, *present)
        after = agg.after
        if after is not None:
            clauses = []
            for i, (source, col) in enumerate(cols):
                same = [_equal(c, after.get(s.name)) for s, c in cols[:i]]
                clauses.append(and_(*same, _beyond(source, col, after.get(source.name))))
            stmt = stmt.where(or_(*clauses))
        order = [(c.desc().nulls_last() if s.descending else c.asc().nulls_first()) for s, c in cols]
        stmt = stmt.group_by(*[c for _, c in cols]).order_by(*order).limit(size)
        rows = (await self.conn.execute(stmt)).rows
        buckets = []
        for row in rows:
            bucket = Bucket({s.name: row[s.name] for s, _ in cols}, int(row["_count"]))
            if agg.subs:
                matches = [self._source_is(s, c, row[s.name], cond) for s, c in cols]
                bucket.subs = await self.run(agg.subs, and_(cond, *matches))
            buckets.append(bucket)
        return CompositeResult(buckets, buckets[-1].key if buckets else None)

    def _source_is(
        self, source: CompositeSource, col: ColumnElement[Any], value: Any, cond: ColumnElement[bool]
    ) -> ColumnElement[bool]:
        """Rows in a composite bucket, as a condition on the table."""
        if source.field.parent is None:
            return _equal(col, value)
        if value is not None:
            return LeafIn(self.index.flattened[source.field.parent], source.field.path, [value])
        return self.index.id.notin_(select(self._leaves(source.field, cond).c.key))

    async def _missing(self, agg: MissingAgg, cond: ColumnElement[bool]) -> SingleBucket:
        if agg.field.parent is not None:
            leaves = self._leaves(agg.field, cond)
            return await self._bucket(agg, and_(cond, self.index.id.notin_(select(leaves.c.key))))
        return await self._bucket(agg, and_(cond, self.sql.column(agg.field).is_(None)))

    async def _metric(self, agg: FieldAgg, cond: ColumnElement[bool], distinct: bool) -> ValueResult:
        if agg.field.parent is not None:
            leaves = self._leaves(agg.field, cond)
            stmt = select(func.count(leaves.c.v.distinct())) if distinct else select(func.count()).select_from(leaves)
        else:
            col = self.sql.column(agg.field)
            stmt = select(func.count(col.distinct()) if distinct else func.count(col)).where(cond)
        return ValueResult(int((await self.conn.execute(stmt)).scalar() or 0))

    async def _cardinality(self, agg: CardinalityAgg, cond: ColumnElement[bool]) -> ValueResult:
        return await self._metric(agg, cond, distinct=True)

    async def _value_count(self, agg: ValueCountAgg, cond: ColumnElement[bool]) -> ValueResult:
        return await self._metric(agg, cond, distinct=False)

    async def _ranges(self, agg: RangeAgg, cond: ColumnElement[bool]) -> RangeResult:
        col = self.sql.column(agg.field)
        buckets = []
        for spec in agg.ranges():
            conds = [cond, col.isnot(None)]
            if spec.low is not None:
                conds.append(col >= spec.low)
            if spec.high is not None:
                conds.append(col < spec.high)
            bucket = await self._bucket(agg, and_(*conds))
            buckets.append(RangeBucket(spec, bucket.doc_count, bucket.subs))
        return RangeResult(buckets)

    async def _filter(self, agg: FilterAgg, cond: ColumnElement[bool]) -> SingleBucket:
        return await self._bucket(agg, and_(cond, self.sql.where(agg.query)))

    async def _filters(self, agg: FiltersAgg, cond: ColumnElement[bool]) -> FiltersResult:
        buckets: dict[str, SingleBucket] = {}
        for name, query in agg.filters:
            buckets[name] = await self._bucket(agg, and_(cond, self.sql.where(query)))
        return FiltersResult(list(buckets.items()))
