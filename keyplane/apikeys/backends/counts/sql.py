"""Exact key counts from the count tables (``schema.api_key_counts``, ``schema.api_key_expiry_counts``,
and ``api_key_activity_counts`` of migration v15 for the keys unused since a time).

Triggers keep those tables in step with ``api_keys`` in the same transaction as every write, so a
total or a terms aggregation over a million keys sums a few hundred rows instead of counting the
keys. Only shapes the tables answer exactly come here (``shape.py``).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import BigInteger, and_, bindparam, column, false, func, or_, select, table, text, true
from sqlalchemy.sql import Executable
from sqlalchemy.sql.elements import ColumnElement

from keyplane.apikeys.backends.counts.shape import Shape
from keyplane.apikeys.backends.plans.sql import steer
from keyplane.query.aggs import Bucket, TermsAgg, TermsResult
from keyplane.store import schema
from keyplane.store.database import Conn, Database, Rows
from keyplane.store.prepared import Prepared

keys = schema.api_keys
groups = schema.api_key_counts
expiry = schema.api_key_expiry_counts
BITS = schema.EXPIRY_BUCKET_BITS
NEVER = schema.NEVER_EXPIRES
# Keys not invalidated by expiration bucket and last-activity bucket (migration v15, store/migrations.py:
# created there, outside schema.metadata, so that a backup leaves it out and a restore recounts it).
activity = table(
    "api_key_activity_counts",
    column("bucket", BigInteger),
    column("activity", BigInteger),
    column("n", BigInteger),
)
_ALL_BUT_CREATION = frozenset(c.name for c in keys.columns if c.name != "creation")


def _in(column: ColumnElement[Any], values: frozenset[Any]) -> ColumnElement[bool]:
    ordered = sorted(values)
    equal: ColumnElement[bool] = column == ordered[0] if len(ordered) == 1 else column.in_(ordered)
    return equal


def _grouped_where(shape: Shape, table: Any) -> ColumnElement[bool]:
    return and_(true(), *[_in(table.c[name], allowed) for name, allowed in shape.values.items()])


# The sums of untimed shapes with one value per column (a list, a user's own keys), one statement per
# set of columns, the values bound at each call.
_SUMS: dict[tuple[str, ...], Prepared] = {}


def _sum_statement(shape: Shape) -> tuple[Executable | Prepared, dict[str, Any] | None]:
    if any(len(allowed) != 1 for allowed in shape.values.values()):
        # An IN list: SQLAlchemy expands it at each call.
        return select(func.coalesce(func.sum(groups.c.n), 0)).where(_grouped_where(shape, groups)), None
    names = tuple(sorted(shape.values))
    found = _SUMS.get(names)
    if found is None:
        equal = [groups.c[name] == bindparam(name) for name in names]
        found = _SUMS[names] = Prepared(select(func.coalesce(func.sum(groups.c.n), 0)).where(and_(true(), *equal)))
    return found, {name: next(iter(allowed)) for name, allowed in shape.values.items()}


Statements = list[tuple[Executable | Prepared, Any]]


def total(results: list[Rows]) -> int:
    """The sum of the counts ``statements`` read."""
    return sum(int(rows.scalar() or 0) for rows in results)


def statements(shape: Shape) -> Statements:
    """The statements whose counts sum to the number of keys of ``shape`` (``countable(shape)`` must
    hold): the caller runs them with its other reads, on SQLite in one hand-off to a reader thread."""
    if shape.empty:
        return []
    if shape.idle is not None:
        return _idle(shape, *shape.idle)
    if not shape.timed:
        return [_sum_statement(shape)]
    where = _grouped_where(shape, expiry)
    if shape.missing:
        return [(select(func.coalesce(func.sum(expiry.c.n), 0)).where(where, expiry.c.bucket == NEVER), None)]
    # Whole buckets strictly between the buckets of the bounds, and the keys of those (at most two)
    # buckets within the bounds, counted on the index of (invalidated, type, expiration).
    low_bucket, high_bucket, partial = _expiry_buckets(shape)
    whole = select(func.coalesce(func.sum(expiry.c.n), 0)).where(
        where, *_whole_buckets(expiry.c.bucket, low_bucket, high_bucket)
    )
    out: Statements = [(whole, None)]
    key_where = _grouped_where(shape, keys)
    if "type" not in shape.values:
        # The flag alone would lead SQLite to the (invalidated, type, expiration) index and all of one
        # flag's keys; the expiration index finds the bucket's few keys.
        key_where = steer(key_where, frozenset(("invalidated",)))
    for low, high in partial:
        out.append((select(func.count()).select_from(keys).where(key_where, *_expiring_within(low, high)), None))
    return out


def _expiry_buckets(shape: Shape) -> tuple[int | None, int | None, list[tuple[int | None, int | None]]]:
    """The expiration buckets of the shape's bounds (None: open), and the expiration ranges of the keys
    counted one by one: the parts of those (at most two) buckets within the bounds."""
    low_bucket = None if shape.low is None else shape.low >> BITS
    high_bucket = None if shape.high is None else shape.high >> BITS
    if low_bucket is not None and low_bucket == high_bucket:
        return low_bucket, high_bucket, [(shape.low, shape.high)]
    partial: list[tuple[int | None, int | None]] = []
    if low_bucket is not None:
        partial.append((shape.low, ((low_bucket + 1) << BITS) - 1))
    if high_bucket is not None:
        partial.append((high_bucket << BITS, shape.high))
    return low_bucket, high_bucket, partial


def _whole_buckets(bucket: ColumnElement[Any], low: int | None, high: int | None) -> list[ColumnElement[bool]]:
    """Count-table rows of the expiration buckets strictly between the bounds' buckets."""
    whole = [bucket != NEVER]
    if low is not None:
        whole.append(bucket > low)
    if high is not None:
        whole.append(bucket < high)
    return whole


def _expiring_within(low: int | None, high: int | None) -> list[ColumnElement[bool]]:
    """Keys that expire within [low, high] (None: open)."""
    bounds: list[ColumnElement[bool]] = [keys.c.expiration.isnot(None)]
    if low is not None:
        bounds.append(keys.c.expiration >= low)
    if high is not None:
        bounds.append(keys.c.expiration <= high)
    return bounds


def _last_activity_within(low: int, used: int, created: int) -> list[ColumnElement[bool]]:
    """Keys last used in [low, used], and keys never used created in [low, created]: each a range of one
    index (last_used; creation), the other columns hidden (SQLite read ``last_used IS NULL``, every
    unused key, from the last_used index)."""
    used_within = and_(keys.c.last_used >= low, keys.c.last_used <= used)
    never = steer(keys.c.last_used.is_(None), _ALL_BUT_CREATION)
    return [used_within, and_(never, keys.c.creation >= low, keys.c.creation <= created)]


def _idle(shape: Shape, used: int, created: int) -> Statements:
    """Keys not invalidated last used at or before ``used`` (never used: created at or before
    ``created``), within the shape's expiration.

    Groups below both bounds' activity buckets and within whole expiration buckets are summed; the
    keys from the start of the lower bound's activity bucket to the bounds are counted among the whole
    expiration buckets, then the keys of the expiration buckets of the bounds (at most two), whatever
    their activity.
    """
    edge = min(used, created) >> BITS
    live = keys.c.invalidated == false()
    idle = or_(
        and_(keys.c.last_used.isnot(None), keys.c.last_used <= used),
        and_(keys.c.last_used.is_(None), keys.c.creation <= created),
    )
    partial: list[tuple[int | None, int | None]] = []
    if shape.missing:
        whole: list[ColumnElement[bool]] = [activity.c.bucket == NEVER]
        whole_keys: list[ColumnElement[bool]] = [keys.c.expiration.is_(None)]
    elif not shape.expiring:
        whole, whole_keys = [], []
    else:
        low_bucket, high_bucket, partial = _expiry_buckets(shape)
        whole = _whole_buckets(activity.c.bucket, low_bucket, high_bucket)
        # Tested on each key of the activity edge, through no index: PostgreSQL intersected the
        # last_used range (~1,500 keys) with the expiration index's (130,000 keys: 30 ms).
        expiration = keys.c.expiration + 0
        whole_keys = [keys.c.expiration.isnot(None)]
        if low_bucket is not None:
            whole_keys.append(expiration >= (low_bucket + 1) << BITS)
        if high_bucket is not None:
            whole_keys.append(expiration < high_bucket << BITS)
    summed = select(func.coalesce(func.sum(activity.c.n), 0)).where(activity.c.activity < edge, *whole)
    out: Statements = [(summed, None)]
    # The last activity bucket: the last_used and creation indexes find its keys, the rest is tested on
    # each key (the flag hidden, or SQLite would read all the live keys of api_keys_live_by_*).
    near = steer(and_(live, *whole_keys), _ALL_BUT_CREATION)
    for within in _last_activity_within(edge << BITS, used, created):
        out.append((select(func.count()).select_from(keys).where(near, within), None))
    # The expiration index finds the edge buckets' keys; their flag and activity are tested on each.
    tested = steer(and_(live, idle), frozenset(("invalidated", "last_used", "creation")))
    for low, high in partial:
        out.append((select(func.count()).select_from(keys).where(tested, *_expiring_within(low, high)), None))
    return out


async def terms(conn: Conn, agg: TermsAgg, shape: Shape) -> TermsResult:
    """A terms aggregation over a grouped column, as the SQL evaluator answers it (same order and ties)."""
    if shape.empty:
        return TermsResult([], 0)
    col = groups.c[agg.field.name]
    where = _grouped_where(shape, groups)
    total_n = func.sum(groups.c.n)
    by, direction = agg.order
    sort_col: Any = total_n if by == "_count" else col
    stmt = (
        select(col.label("k"), total_n.label("c"))
        .where(where)
        .group_by(col)
        .having(total_n > 0)
        .order_by(sort_col.desc() if direction == "desc" else sort_col.asc(), col.asc())
        .limit(agg.size)
    )
    rows = (await conn.execute(stmt)).rows
    total = int((await conn.execute(select(func.coalesce(func.sum(groups.c.n), 0)).where(where))).scalar() or 0)
    buckets = [Bucket(row["k"], int(row["c"])) for row in rows]
    return TermsResult(buckets, total - sum(b.doc_count for b in buckets))


# PostgreSQL's count tables take appended +1/-1 rows, folded now and then (store/migrations.py), so a
# burst of writes grows their files, and no plain VACUUM shrinks them while live rows sit at their
# end: after a million keys were created, 4,001 live rows sat in 107 MB and every total read it all
# (52 ms). A table this many times larger than its live rows is rewritten (VACUUM FULL: a few
# hundred KB of live rows, its lock held while the file is read: 25 ms for 96 MB), at most once a
# sweep, only when its lock comes at once.
_COUNT_TABLES = ("api_key_counts", "api_key_expiry_counts", "api_key_activity_counts")
_BLOATED_BYTES = 8 * 1024 * 1024
_BLOAT_FACTOR = 20
_ROW_BYTES = 100  # a count row with its tuple header, about
_LOCK_TIMEOUT_MS = 100
_SIZES = text(
    "SELECT name, pg_relation_size(to_regclass(name)) AS bytes, "
    "greatest(pg_stat_get_live_tuples(to_regclass(name)), "
    "(SELECT reltuples FROM pg_class WHERE oid = to_regclass(name)))::bigint AS live "
    "FROM unnest(CAST(:names AS text[])) AS name WHERE to_regclass(name) IS NOT NULL"
)


def bloated(bytes_: int, live: int) -> bool:
    """Whether a count table's file is worth rewriting for its live rows."""
    return bytes_ > _BLOATED_BYTES and bytes_ > _BLOAT_FACTOR * _ROW_BYTES * max(live, 1)


async def compact(db: Database) -> list[tuple[str, float]]:
    """Rewrite the count tables whose files grew far beyond their rows (PostgreSQL); the names of
    those rewritten and the seconds each took (its lock held meanwhile). SQLite's count tables are
    keyed by their groups and changed in place."""
    if not db.is_postgres:
        return []
    async with db.transaction() as conn:
        sizes = (await conn.execute(_SIZES, {"names": list(_COUNT_TABLES)})).rows
    done = []
    for row in sizes:
        if bloated(int(row["bytes"]), int(row["live"])):
            started = time.perf_counter()
            if await db.maintain(f"VACUUM FULL {row['name']}", _LOCK_TIMEOUT_MS):
                done.append((str(row["name"]), time.perf_counter() - started))
    return done
