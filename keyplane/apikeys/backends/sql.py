"""API keys in SQL: rows, and queries over them through the query engine's SQL evaluator.

Queries, sorts and aggregations run in the database on indexed columns, so a list page over a
million keys reads only what it returns.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    and_,
    bindparam,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.sql import Executable, Select, operators
from sqlalchemy.sql.elements import AsBoolean, BindParameter, ColumnElement
from sqlalchemy.sql.util import ClauseAdapter
from sqlalchemy.sql.visitors import replacement_traverse

from keyplane import jsontext
from keyplane.apikeys import core
from keyplane.apikeys.backends.base import KeyFilter, Page
from keyplane.apikeys.backends.counts import shape as counted
from keyplane.apikeys.backends.counts import sql as counts
from keyplane.apikeys.backends.plans import sql as plan
from keyplane.apikeys.core import ApiKey, Creator
from keyplane.query.aggs import Agg, AggResult, TermsAgg
from keyplane.query.backends.sql import SqlIndex, SqlQuery, escape_like
from keyplane.query.dates import format_date
from keyplane.query.fields import FieldType
from keyplane.query.tree import MatchAll, Query, SortKey
from keyplane.security import roles as role_mod
from keyplane.store import schema
from keyplane.store.batching import TARGET_SECONDS, BatchSize
from keyplane.store.database import Conn, Database, Rows
from keyplane.store.jsonleaf import LeafIn
from keyplane.store.prepared import Prepared

t = schema.api_keys
# The API-key index (apikeys/query.py): canonical field names are the column names.
INDEX = SqlIndex(
    table=t,
    id=t.c.id,
    columns={
        name: t.c[name]
        for name in (
            "username",
            "realm",
            "name",
            "type",
            "creation",
            "expiration",
            "invalidated",
            "invalidation",
            "last_used",
        )
    },
    flattened={"metadata": t.c.metadata},
    doc_order=t.c.creation,
)
SQL = SqlQuery(INDEX)
# Ids per read of a long id list.
WRITE_BATCH = 250
# Rows per write transaction of the retention sweep and of a bulk update: the SQLite writer (and
# PostgreSQL's row locks) are let go between batches, so other requests' writes wait for one batch
# at most. These are the first batches' sizes; the next ones are sized by time (store/batching.py):
# fixed counts let creations wait up to ~280 ms (500 rows) or ~120 ms (250) beside a sweep on a
# loaded SQLite, as a row's cost varies with the machine's load.
SWEEP_BATCH = 100
UPDATE_BATCH = 100
# At least 50 rows: on a loaded machine a batch's fixed costs (thread hand-offs, the commit) can
# exceed the target alone, and smaller batches would only multiply them.
LEAST_BATCH, MOST_BATCH = 50, 1000
PG_LEAST_BATCH = 250
# The retention sweep's rest between batches, as a share of the batch's time.
SWEEP_REST = 1.0
# What a sweep batch's DELETE and COMMIT may hold SQLite's writer for. Its COMMIT alone takes a few ms
# (an fsync of ~1 MiB of WAL for 50-400 keys); a target under that would pin batches to the least.
SWEEP_TARGET = 0.010
# Past this many rows, they are turned into keys on a worker thread instead of on the event loop.
_PARSE_OFF_LOOP = 200


def _row(key: ApiKey) -> dict[str, Any]:
    return dict(zip(_COLUMNS, _values(key), strict=True))


def _values(key: ApiKey) -> tuple[Any, ...]:
    """The key's column values, in ``_COLUMNS`` order."""
    creator = key.creator
    return (
        key.id,
        key.name,
        key.type,
        key.creation,
        key.expiration,
        key.invalidated,
        key.invalidation,
        creator.principal,
        creator.realm,
        creator.realm_type,
        key.hash,
        key.metadata,
        _doc_text(key),
        key.last_used,
        key.seq_no,
        _managed(key.metadata),
    )


def _doc_text(key: ApiKey) -> str:
    """The key's ``doc`` column: the same text for every key of one owner (object), roles and version,
    written once while kept. An owner's new keys and updates repeat it (its creator is one object per
    caller, its descriptors' stored forms are kept: core.stored_form), so it is found by those texts
    and the owner's identity instead of written out again (a dict of the owner and a JSON dump a key)."""
    creator = key.creator
    identity = (
        id(creator),
        tuple([(rd.name, core.stored_form(rd)) for rd in key.role_descriptors]),
        tuple([(rd.name, core.stored_form(rd)) for rd in key.limited_by]),
        key.version,
        key.certificate_identity,
    )
    try:
        found = _DOCS.get(identity)
    except TypeError:  # an unhashable certificate identity: written out
        return _written_doc(key)
    if found is not None and found[0] is creator:
        return found[1]
    text = _written_doc(key)
    if len(_DOCS) >= _MAX_DOCS:
        _DOCS.clear()
    _DOCS[identity] = (creator, text)  # holds the owner, so its id is not reused meanwhile
    return text


# Stored docs by what they are written from (``_doc_text``).
_DOCS: dict[tuple[Any, ...], tuple[Creator, str]] = {}
_MAX_DOCS = 1024


def _written_doc(key: ApiKey) -> str:
    # Each descriptor as the JSON it is stored as, written once per descriptor (core.stored_form).
    doc = {
        "role_descriptors": {rd.name: orjson.Fragment(core.stored_form(rd)) for rd in key.role_descriptors},
        "role_descriptor_order": [rd.name for rd in key.role_descriptors],
        "limited_by": {rd.name: orjson.Fragment(core.stored_form(rd)) for rd in key.limited_by},
        "creator": key.creator.to_dict(),
        "version": key.version,
    }
    if key.certificate_identity is not None:
        doc["certificate_identity"] = key.certificate_identity
    return jsontext.dumps(doc).decode()


_COLUMNS = (
    "id",
    "name",
    "type",
    "creation",
    "expiration",
    "invalidated",
    "invalidation",
    "username",
    "realm",
    "realm_type",
    "hash",
    "metadata",
    "doc",
    "last_used",
    "seq_no",
    "managed",
)


def _managed(metadata: dict[str, Any] | None) -> bool:
    """Whether ``metadata.managed`` has the keyword "true" among its values, as a term query on it
    matches (store/jsonleaf.py LeafIn): the boolean or the text, alone or an element of an array."""
    if not metadata:  # most keys: nothing to look at
        return False
    value = metadata.get("managed")
    values = value if isinstance(value, list) else [value]
    return any(v is True or v == "true" for v in values)


def _where(query: Query) -> ColumnElement[bool]:
    """``SQL.where(query)`` with its terms on ``metadata.managed`` read from the ``managed`` column,
    which holds whether they match "true" (same rows; schema.py's partial index finds them)."""

    def replace(element: Any) -> Any:
        # SQLite wraps a boolean in "= 1" (AsBoolean): the wrapper goes too, so that the condition
        # reads "managed = 1", the partial index's own, and not "(managed = 1) = 1".
        leaf = element.element if isinstance(element, AsBoolean) and element.operator is operators.is_true else element
        if not (isinstance(leaf, LeafIn) and leaf.column is t.c.metadata and leaf.path == ("managed",)):
            return None
        if "true" not in leaf.values:
            return None
        others = [v for v in leaf.values if v != "true"]
        managed = t.c.managed == true()
        return or_(managed, LeafIn(t.c.metadata, ("managed",), others)) if others else managed

    cond: ColumnElement[bool] = replacement_traverse(SQL.where(query), {}, replace)  # type: ignore[call-overload]
    return cond


@dataclasses.dataclass(frozen=True, slots=True)
class _Doc:
    """A stored ``doc`` column, parsed: what every key of one owner and role set has alike."""

    # Shared by the keys of this doc, as the verified-key cache shares it (cache.Grant): nothing changes a
    # Creator in place (an update gives the key another one), and a copy per key cost 0.3 µs.
    creator: Creator
    role_descriptors: tuple[role_mod.RoleDescriptor, ...]
    limited_by: tuple[role_mod.RoleDescriptor, ...]
    version: int
    certificate_identity: Any


@functools.lru_cache(maxsize=256)
def _parsed_doc(text: str) -> _Doc:
    """The parsed ``doc``, shared by the keys whose ``doc`` is the same text (descriptors are never
    changed once parsed): a page of keys of one owner parses the owner's roles once, not per key."""
    doc = orjson.loads(text)
    descriptors = doc["role_descriptors"]
    order = doc.get("role_descriptor_order", list(descriptors))
    return _Doc(
        creator=Creator.from_dict(doc["creator"]),
        role_descriptors=tuple(role_mod.parse_stored(n, descriptors[n]) for n in order),
        limited_by=tuple(role_mod.parse_stored(n, body) for n, body in doc["limited_by"].items()),
        version=doc.get("version", 0),
        certificate_identity=doc.get("certificate_identity"),
    )


# The columns a key is made of (``_key``): reads of keys leave out those that repeat the stored doc
# (owner, realm, realm type) or serve only queries (managed), which would be converted for nothing
# (three text conversions a row on PostgreSQL).
_KEY_COLUMNS = tuple(
    t.c[name]
    for name in (
        "id",
        "name",
        "type",
        "creation",
        "expiration",
        "invalidated",
        "invalidation",
        "hash",
        "metadata",
        "doc",
        "last_used",
        "seq_no",
    )
)


def _columns_of(rows: Any) -> list[Any]:
    """``_KEY_COLUMNS`` of a common table expression of whole keys."""
    return [rows.c[c.name] for c in _KEY_COLUMNS]


def _key(row: dict[str, Any]) -> ApiKey:
    doc = _parsed_doc(row["doc"])
    metadata = row["metadata"]
    if isinstance(metadata, str):  # some drivers hand JSON back as text
        metadata = orjson.loads(metadata)
    # Positional, in ApiKey's field order: sixteen keyword arguments cost 0.6 µs more a key (a
    # page of query results builds ten to a hundred of them).
    return ApiKey(
        row["id"],
        row["name"],
        row["type"],
        row["creation"],
        row["expiration"],
        bool(row["invalidated"]),
        row["invalidation"],
        row["hash"],
        doc.creator,
        list(doc.role_descriptors),
        list(doc.limited_by),
        metadata,
        doc.version,
        row["last_used"],
        row["seq_no"],
        doc.certificate_identity,
    )


# What tells a kept key from the stored one: every change of a stored key raises its ``seq_no`` but its
# last use, which authentication records in a column of its own (the update path relies on the same:
# ApiKeyService.update_one). A page is read as these first and its keys taken from those kept when all
# match, so a console listing the same keys again reads and converts three small columns a row, not
# the twelve a key is built from (its stored doc's text among them).
_VERSION_COLUMNS = (t.c.id, t.c.seq_no, t.c.last_used)
# Keys of search pages kept by a repository (``SqlApiKeyRepository._page_keys``): about 1 KB each with
# their stored doc text (the parsed roles are shared through ``_parsed_doc``).
MAX_PAGE_KEYS = 2048
# A kept key: its seq_no and last_used as read, and the key built from that row.
_Kept = tuple[int, int | None, ApiKey]


@dataclasses.dataclass(slots=True)
class _Keys:
    """A page's keys, every one kept at the version read (rather than rows to build them from)."""

    keys: list[ApiKey]


async def _keys(rows: list[dict[str, Any]]) -> list[ApiKey]:
    """Keys of ``rows``; a large result is parsed off the event loop so other requests go on meanwhile."""
    if len(rows) <= _PARSE_OFF_LOOP:
        return [_key(r) for r in rows]
    return await asyncio.to_thread(lambda: [_key(r) for r in rows])


def _inactive(before: int) -> list[ColumnElement[bool]]:
    """Keys the retention sweep removes: expired, or invalidated, at or before ``before``.

    Three conditions rather than one OR, each answered by an index (on expiration, on invalidation,
    on invalidated first), so finding the next batch never scans the table.
    """
    return [
        and_(t.c.expiration.isnot(None), t.c.expiration <= before),
        and_(t.c.invalidated == true(), t.c.invalidation <= before),
        and_(t.c.invalidated == true(), t.c.invalidation.is_(None)),  # invalidated before the time was kept
    ]


def _selector(selector: KeyFilter) -> ColumnElement[bool]:
    """The condition of ``selector``, its values as bound parameters (``_selector_params``).

    Every value but a list of ids is bound, never inlined, so the condition of one shape of
    selector (which of its parts are given) is the same statement whatever the values, and a
    single-id lookup is prepared once per shape (``_find_statement``).
    """
    conds: list[ColumnElement[bool]] = []
    if selector.ids is not None:
        conds.append(t.c.id == bindparam("id") if len(selector.ids) == 1 else t.c.id.in_(selector.ids))
    if selector.name is not None and selector.name != "*":
        if selector.name.endswith("*"):
            conds.append(t.c.name.like(bindparam("name"), escape="\\"))
        else:
            conds.append(t.c.name == bindparam("name"))
    if selector.username is not None:
        conds.append(t.c.username == bindparam("username"))
    if selector.realm is not None:
        conds.append(t.c.realm == bindparam("realm"))
    if selector.active_only or selector.exclude_invalidated:
        conds.append(t.c.invalidated == false())
    if selector.active_only:
        conds.append(or_(t.c.expiration.is_(None), t.c.expiration > bindparam("now", type_=BigInteger)))
    return and_(true(), *conds)


def _selector_params(selector: KeyFilter, now: int) -> dict[str, Any]:
    params: dict[str, Any] = {"now": now} if selector.active_only else {}
    if selector.ids is not None and len(selector.ids) == 1:
        params["id"] = selector.ids[0]
    if selector.name is not None and selector.name != "*":
        name = selector.name
        params["name"] = escape_like(name[:-1]) + "%" if name.endswith("*") else name
    if selector.username is not None:
        params["username"] = selector.username
    if selector.realm is not None:
        params["realm"] = selector.realm
    return params


def _find_statement(selector: KeyFilter, postgres: bool) -> Executable | Prepared:
    if selector.ids is None or len(selector.ids) != 1:
        return select(*_KEY_COLUMNS).where(_selector(selector)).order_by(t.c.creation, t.c.id)
    shape = (
        selector.name is not None and selector.name != "*",
        (selector.name or "").endswith("*"),
        selector.username is not None,
        selector.realm is not None,
        selector.active_only,
        selector.exclude_invalidated,
    )
    if not any(shape):
        # The id alone: its primary key finds it, no other index to choose (see _by_id_then), so the
        # plain read (8 µs of CPU less than through the common table expression on SQLite).
        return _GET
    prepared = _FIND_ONE.get((shape, postgres))
    if prepared is None:
        cond = _selector(selector)
        # SQLite finds the id by its primary key whatever else is tested (a unique index with every
        # column equal is one row to its planner, statistics or not): the plain read costs 8 µs of CPU
        # less than materialising the common table expression (an update's lookup by id and owner).
        stmt = _by_id_then(cond) if postgres else select(*_KEY_COLUMNS).where(cond)
        prepared = _FIND_ONE[(shape, postgres)] = Prepared(stmt)
    return prepared


def _by_id_then(cond: ColumnElement[bool]) -> Select[Any]:
    """The key of the ``id`` parameter, found by its primary key, then tested against ``cond``.

    Without statistics (a new table, before its first ANALYZE) PostgreSQL costed the owner index as
    the primary key's equal and chose it for ``id = $1 AND username = $2``: an update of one of 15,000
    keys of one owner read them all (6 ms a lookup). The key found first, in a MATERIALIZED common
    table expression, leaves no other index to choose (PostgreSQL only: see _find_statement)."""
    one = select(t).where(t.c.id == bindparam("id")).cte("one").prefix_with("MATERIALIZED")
    return select(*_columns_of(one)).where(ClauseAdapter(one).traverse(cond))


# Single-id lookups (get by id, invalidate by id), one prepared statement per selector shape.
_FIND_ONE: dict[tuple[tuple[bool, ...], bool], Prepared] = {}
_GET = Prepared(select(*_KEY_COLUMNS).where(t.c.id == bindparam("id")))


def _sort_value(key: ApiKey, sort: SortKey) -> Any:
    """A key's value for one sort key, as ``_sort`` shows it."""
    field = sort.field
    if field.type is FieldType.DOC:
        return key.creation
    value: Any
    if field.name in INDEX.columns:
        value = {"username": key.creator.principal, "realm": key.creator.realm}.get(
            field.name, getattr(key, field.name, None)
        )
    elif field.type is FieldType.FLATTENED:
        value = None
    else:
        node: Any = key.metadata or {}
        for part in field.path:
            node = node.get(part) if isinstance(node, dict) else None
        value = None if node is None else (node if isinstance(node, str) else orjson.dumps(node).decode())
    if value is not None and sort.format and field.type is FieldType.DATE:
        return format_date(value)
    return value


def _batch_size(first: int, postgres: bool, target: float = TARGET_SECONDS) -> BatchSize:
    if postgres:
        # Row locks, not one writer: a batch holds up only writes to its own rows, while each batch's
        # round trips and COMMIT make time-sized batches shrink to the least under load (a sweep of
        # 243,000 keys did not end in 120 s). The least is the fixed size that served before.
        return BatchSize(max(first, PG_LEAST_BATCH), PG_LEAST_BATCH, max(MOST_BATCH, first), target)
    return BatchSize(first, min(LEAST_BATCH, first), max(MOST_BATCH, first), target)


def _notify_keys(conn: Any, ids: list[str]) -> None:
    """Tell every node which keys changed; past a hundred, to drop all cached keys instead."""
    if len(ids) > 100:
        conn.notify("api_keys")
        return
    for key_id in ids:
        conn.notify("api_key:" + key_id)


# The columns an update of a key writes: those an update may change (its owner, roles, metadata and
# expiration: ApiKeyService._apply) and seq_no. Not the others, whose indexes then stay untouched, nor
# last_used, which authentication records meanwhile without raising seq_no: an update does not set it back.
_UPDATED = ("expiration", "username", "realm", "realm_type", "metadata", "doc", "seq_no", "managed")
_SET = tuple(_COLUMNS.index(name) for name in _UPDATED)
# A key written back if unchanged since read (compare-and-set on seq_no); parameters v_<column>, k_id, k_seq_no.
_REPLACE = (
    update(t)
    .where(and_(t.c.id == bindparam("k_id"), t.c.seq_no == bindparam("k_seq_no")))
    .values({name: bindparam("v_" + name, type_=t.c[name].type) for name in _UPDATED})
)

_REPLACE_ONE = Prepared(_REPLACE)
_INSERT = Prepared(insert(t).values({c.name: bindparam(c.name, type_=c.type) for c in t.columns}))


# For this transaction only (SET LOCAL): no scan of the whole table, no JIT compilation (tens of
# milliseconds, for queries that run in about a hundred).
_INDEXED_COUNT = (text("SET LOCAL enable_seqscan = off"), text("SET LOCAL jit = off"))

# First pages of the queries a console repeats (a list, a user's own keys, a filter), built once each
# per plan.
_PAGES: dict[tuple[Query, tuple[SortKey, ...], plan.Plan, bool, bool], Prepared] = {}


def _sort_column(sort: list[SortKey]) -> str | None:
    """The column the page's order starts with (the id when nothing is sorted), None if not a column."""
    if not sort:
        return "id"
    field = sort[0].field
    if field.type is FieldType.DOC:
        return INDEX.doc_order.name
    return field.name if field.name in INDEX.columns else None


def _fenced(cond: ColumnElement[bool], order: list[Any], columns: tuple[Column[Any], ...]) -> Select[Any]:
    """The keys of ``cond`` found first, then put in ``order``: PostgreSQL computes a MATERIALIZED
    common table expression on its own, so no index walk in sort order stands in for the filter's."""
    found = select(t).where(cond).cte("found").prefix_with("MATERIALIZED")
    adapter = ClauseAdapter(found)
    return select(*[found.c[c.name] for c in columns]).order_by(*[adapter.traverse(o) for o in order])


def _ordered(
    cond: ColumnElement[bool],
    order: list[Any],
    how: plan.Plan,
    postgres: bool,
    columns: tuple[Column[Any], ...] = _KEY_COLUMNS,
) -> Select[Any]:
    if postgres and how is plan.Plan.SELECTIVE:
        return _fenced(cond, order, columns)
    return select(*columns).where(cond).order_by(*order)


def _page_statement(
    query: Query,
    sort: list[SortKey],
    search_after: list[Any] | None,
    how: plan.Plan,
    postgres: bool = False,
    versions: bool = False,
) -> Executable | Prepared:
    """One page of the keys ``query`` matches in ``sort`` order (their ``_VERSION_COLUMNS`` alone if
    ``versions``); ``start`` and ``size`` bound at the call."""
    key: tuple[Query, tuple[SortKey, ...], plan.Plan, bool, bool] | None = None
    if not search_after:
        try:
            key = (query, tuple(sort), how, postgres, versions)
            found = _PAGES.get(key)
        except TypeError:  # a query holding a list or a dict (metadata values) has no hash
            key, found = None, None
        if found is not None:
            return found
    cond = _where(query)
    if search_after:
        cond = and_(cond, SQL.after(sort, search_after))
    cond = plan.steer(cond, plan.hidden_for(how, _sort_column(sort)))
    stmt = _ordered(cond, SQL.order_by(sort), how, postgres, _VERSION_COLUMNS if versions else _KEY_COLUMNS)
    stmt = stmt.offset(bindparam("start", type_=Integer)).limit(bindparam("size", type_=Integer))
    if key is None or not Prepared.possible(stmt):
        return stmt
    if len(_PAGES) >= 1000:
        _PAGES.clear()
    prepared = _PAGES[key] = Prepared(stmt)
    return prepared


# The column of a PostgreSQL page's rows that holds the query's exact total (_totalled_page).
_TOTAL = "keyplane_total"
# Pages with their totals (PostgreSQL), built once per query, sort, plan and way of counting.
_TOTALLED: dict[tuple[Query, tuple[SortKey, ...], plan.Plan, bool, bool], Prepared] = {}


def _totalled_page(
    query: Query,
    sort: list[SortKey],
    search_after: list[Any] | None,
    how: plan.Plan,
    signed: list[tuple[int, counts.Statements]],
    use_counts: bool,
    versions: bool = False,
) -> Executable | Prepared:
    """The page of ``_page_statement`` with the total the ``signed`` counts make as a column of each
    row (``_TOTAL``): uncorrelated scalar subqueries, which PostgreSQL computes once, so the page and
    its total come in one round trip. The counts' statements depend on the query alone (and on
    ``use_counts``), so the whole is built once where the page is."""
    key = (query, tuple(sort), how, use_counts, versions)
    if not search_after:
        try:
            found = _TOTALLED.get(key)
        except TypeError:  # a query holding a list or a dict (metadata values) has no hash
            found = None
        if found is not None:
            return found
    page = _page_statement(query, sort, search_after, how, True, versions)
    total: ColumnElement[Any] | None = None
    for sign, part in signed:
        for stmt, params in part:
            # Not correlated with the page's api_keys (SQLAlchemy would by default): a count of its own.
            count = _bound(stmt, params).correlate(None).scalar_subquery()
            if total is None:
                total = count if sign > 0 else -count
            else:
                total = total + count if sign > 0 else total - count
    assert total is not None
    base = page.stmt if isinstance(page, Prepared) else page
    assert isinstance(base, Select)
    stmt = base.add_columns(total.label(_TOTAL))
    if not isinstance(page, Prepared) or not Prepared.possible(stmt):
        return stmt
    if len(_TOTALLED) >= 1000:
        _TOTALLED.clear()
    prepared = _TOTALLED[key] = Prepared(stmt)
    return prepared


def _bound(stmt: Executable | Prepared, params: dict[str, Any] | None) -> Select[Any]:
    """A count's statement with the values of its named parameters in place: statements composed into
    one may name their parameters alike (two sums by owner) and would collide by name; a value bound
    this way takes a name of its own when compiled."""
    inner = stmt.stmt if isinstance(stmt, Prepared) else stmt
    assert isinstance(inner, Select)
    if not params:
        return inner

    def replace(element: Any) -> Any:
        if isinstance(element, BindParameter) and element.key in params:
            return bindparam(None, params[element.key], type_=element.type, unique=True)
        return None

    bound: Select[Any] = replacement_traverse(inner, {}, replace)  # type: ignore[call-overload]
    return bound


def _signed_total(signed: list[tuple[int, counts.Statements]], results: list[Rows]) -> int:
    """The total that the ``signed`` counts' results (in their order) make."""
    total, at = 0, 0
    for sign, part in signed:
        total += sign * counts.total(results[at : at + len(part)])
        at += len(part)
    return total


# The count-table statements of the queries they answer, by query: they depend on the query alone, and
# working them out (the query's parts, their shapes) cost more than the rest of a list page's planning.
_COUNTED: dict[Query, list[tuple[int, counts.Statements]]] = {}


@functools.cache
def _every_key_count() -> counts.Statements:
    """The count of every key, from the count tables (SQLite's plans weigh a total against it)."""
    return counts.statements(counted.Shape())


def _nullable(key: SortKey) -> bool:
    return key.field.type is not FieldType.DOC and bool(INDEX.columns[key.field.name].nullable)


def _split(sort: list[SortKey], search_after: list[Any] | None) -> bool:
    """Whether a page is read in parts, the keys with a value of the first sort column and those
    without: a ``search_after`` page from a value or past the values of a column keys may lack, and a
    first page sorted on such a column."""
    if not sort or not (sort[0].field.type is FieldType.DOC or sort[0].field.name in INDEX.columns):
        return False
    if search_after:
        return search_after[0] is not None or _nullable(sort[0])
    return _nullable(sort[0])


async def _page_rows(
    conn: Conn,
    query: Query,
    sort: list[SortKey],
    search_after: list[Any] | None,
    how: plan.Plan,
    start: int,
    size: int,
    postgres: bool,
) -> list[dict[str, Any]]:
    """The rows of one page, read as ranges of the first sort column's index where they can be.

    Keys without a value of a column sort last whatever the direction, as in Elasticsearch, which is
    the order of neither store's index (SQLite puts NULL first, PostgreSQL last, and each reads its
    index backwards for the other direction), and a ``search_after`` page is a disjunction no index
    walk can start from. So the keys with a value are read first, in the index's own order, from the
    ``search_after`` value on; then, if the page is not full, the keys without one, in the order of the
    other sort keys (the first is the same for all of them).
    """
    if not _split(sort, search_after):
        stmt = _page_statement(query, sort, search_after, how, postgres)
        return (await conn.execute(stmt, {"start": start, "size": size})).rows
    first, wanted = sort[0], start + size
    order = SQL.order_by(sort)
    column = SQL.sort_column(first)
    name = column.name if isinstance(column, Column) else ""

    async def read(
        where: ColumnElement[bool], order_by: list[Any], walked: str | None, limit: int
    ) -> list[dict[str, Any]]:
        steered = plan.steer(where, plan.hidden_for(how, walked))
        return (await conn.execute(_ordered(steered, order_by, how, postgres).limit(limit))).rows

    if search_after and search_after[0] is None:
        # After a key without the first sort value only keys without it follow, in the order of the
        # other sort keys: read as that range alone. As one statement (missing values last, an OR of
        # ranges) it sorted every key lacking the value, 1-2 s over 1M keys sorted by last_used.
        missing = _where(plan.given(query, name, present=False))
        after = SQL.after(sort[1:], search_after[1:])
        rows = await read(and_(missing, column.is_(None), after), order[1:], _sort_column(sort[1:]), wanted)
        return rows[start:]
    cond = _where(plan.given(query, name, present=True))
    if search_after:
        valued = and_(cond, SQL.after(sort, search_after), SQL.at_or_after(first, search_after[0]))
    else:
        valued = and_(cond, column.isnot(None))
    natural = column.desc() if first.desc else column.asc()
    rows = await read(valued, [natural, *order[1:]], _sort_column(sort), wanted)
    if len(rows) < wanted and _nullable(first):
        missing = _where(plan.given(query, name, present=False))
        rows += await read(and_(missing, column.is_(None)), order[1:], _sort_column(sort[1:]), wanted - len(rows))
    return rows[start:]


class SqlApiKeyRepository:
    def __init__(self, db: Database, *, use_counts: bool = True, forced_plan: plan.Plan | None = None) -> None:
        self.db = db
        # Totals and terms aggregations from the count tables when a query allows (counts.py);
        # off, everything is counted on api_keys (the tests compare both).
        self.use_counts = use_counts
        # Pages read with this plan whatever the total (the tests compare the plans' pages).
        self.forced_plan = forced_plan
        # Keys of search pages by id (``_kept_keys``), per repository: its store's seq_no values alone
        # tell its keys' versions apart.
        self._page_keys: dict[str, _Kept] = {}

    async def insert(self, key: ApiKey) -> None:
        self._page_keys.pop(key.id, None)  # a reused id (tests, a restore) starts its seq_no over
        await self.db.execute_alone(_INSERT, _row(key))  # PostgreSQL: one round trip, no BEGIN/COMMIT

    async def get(self, key_id: str) -> ApiKey | None:
        # A read alone: no transaction()'s context managers around it (Database.execute_alone).
        row = (await self.db.execute_alone(_GET, {"id": key_id})).first()
        return _key(row) if row else None

    async def find(self, selector: KeyFilter, now: int) -> list[ApiKey]:
        if selector.ids is not None and len(selector.ids) > WRITE_BATCH:
            # Thousands of ids (a bulk update) are read a batch at a time: no statement of thousands
            # of parameters, and the rows are turned into dicts in small parts (on the event loop on
            # PostgreSQL).
            keys: list[ApiKey] = []
            for start in range(0, len(selector.ids), WRITE_BATCH):
                part = dataclasses.replace(selector, ids=selector.ids[start : start + WRITE_BATCH])
                keys += await self.find(part, now)
            keys.sort(key=lambda k: (k.creation, k.id))
            return keys
        stmt = _find_statement(selector, self.db.is_postgres)
        rows = (await self.db.execute_alone(stmt, _selector_params(selector, now))).rows  # a read alone, as get
        return await _keys(rows)

    async def search(
        self, query: Query, sort: list[SortKey], start: int, size: int, search_after: list[Any] | None, now: int
    ) -> Page:
        # A page of up to 200 keys is read as the versions of its keys first, and taken from the kept
        # keys when every one is kept (``_kept_keys``); a larger one is read whole and parsed off the
        # event loop, and not kept (thousands of keys read once would push out those a console lists
        # again and again).
        versions = size <= _PARSE_OFF_LOOP
        async with self.db.transaction() as conn:
            signed = await self._count_statements(conn, query)
            if self.db.is_postgres:
                total, found = await self._pg_total_and_rows(
                    conn, signed, query, sort, start, size, search_after, versions
                )
            else:
                total, found = await self._sqlite_total_and_rows(
                    conn, signed, query, sort, start, size, search_after, versions
                )
        if isinstance(found, _Keys):
            keys = found.keys
        elif versions:
            keys = [self._page_key(r) for r in found]
        else:
            keys = await _keys(found)
        sort_values = [[_sort_value(k, s) for s in sort] for k in keys] if sort else [[]] * len(keys)
        return Page(int(total), keys, sort_values)

    def _kept_keys(self, rows: list[dict[str, Any]]) -> _Keys | None:
        """The keys of a page read as ``_VERSION_COLUMNS``, if every one is kept at the version read."""
        kept = self._page_keys
        keys: list[ApiKey] = []
        for row in rows:
            found = kept.get(row["id"])
            if found is None or found[0] != row["seq_no"] or found[1] != row["last_used"]:
                return None
            keys.append(found[2])
        return _Keys(keys)

    def _page_key(self, row: dict[str, Any]) -> ApiKey:
        """The key of a search page's whole row: the one kept for the same version, else built and kept.

        A console lists the same unchanged keys again and again, and building each (and rendering it,
        which the API layer keeps by the key's identity: apikey_view.render_hits) was most of a page's
        own CPU. Keys of a page are shared by later pages: read-only, as every reader of a page (the
        query service, its rendering) treats them.
        """
        kept = self._page_keys
        found = kept.get(row["id"])
        if found is not None and found[0] == row["seq_no"] and found[1] == row["last_used"]:
            return found[2]
        key = _key(row)
        if len(kept) >= MAX_PAGE_KEYS:
            kept.clear()
        kept[key.id] = (key.seq_no, key.last_used, key)
        return key

    async def _versions_then_keys(
        self,
        conn: Conn,
        rows: list[dict[str, Any]],
        query: Query,
        sort: list[SortKey],
        search_after: list[Any] | None,
        how: plan.Plan,
        start: int,
        size: int,
    ) -> _Keys | list[dict[str, Any]]:
        """The kept keys of a page read as versions, or the page read again whole when one is not kept
        (a new or changed key): that read is its own snapshot, as every read of the transaction is."""
        keys = self._kept_keys(rows)
        if keys is not None:
            return keys
        return await _page_rows(conn, query, sort, search_after, how, start, size, self.db.is_postgres)

    async def _sqlite_total_and_rows(
        self,
        conn: Conn,
        signed: list[tuple[int, counts.Statements]],
        query: Query,
        sort: list[SortKey],
        start: int,
        size: int,
        search_after: list[Any] | None,
        versions: bool,
    ) -> tuple[int, _Keys | list[dict[str, Any]]]:
        column = _sort_column(sort)
        reads = [read for _, part in signed for read in part]
        # SQLite chooses the page's plan from the total and the number of all keys; both counts,
        # and the page itself when its plan is known beforehand, are read in one hand-off to a
        # reader thread (each hand-off costs about as much CPU as a short read).
        choosing = size > 0 and self.forced_plan is None
        # A query that matches every key (match_all, the console's first list) counts them all.
        every = choosing and isinstance(query, MatchAll)
        stored_at = len(reads)
        if choosing and not every:
            reads += _every_key_count()
        guess: plan.Plan | None = None
        if every and not _split(sort, search_after):
            # Its plan depends only on the total being more than none (1 of 1 key); checked below.
            guess = plan.choose(query, column, start + size, 1, 1)
            stmt = _page_statement(query, sort, search_after, guess, False, versions)
            reads.append((stmt, {"start": start, "size": size}))
        results = await conn.execute_all(*reads) if reads else []
        total = _signed_total(signed, results)
        # The page holds keys the query matches, past ``start`` of them: none when the total is no more.
        if size <= 0 or total <= start:
            return total, []
        how = self.forced_plan
        if how is None:
            stored = total if every else counts.total(results[stored_at:])
            how = plan.choose(query, column, start + size, total, stored)
        if guess is not None and how == guess:
            rows = results[-1].rows
            if not versions:
                return total, rows
            return total, await self._versions_then_keys(conn, rows, query, sort, search_after, how, start, size)
        return total, await _page_rows(conn, query, sort, search_after, how, start, size, False)

    async def _pg_total_and_rows(
        self,
        conn: Conn,
        signed: list[tuple[int, counts.Statements]],
        query: Query,
        sort: list[SortKey],
        start: int,
        size: int,
        search_after: list[Any] | None,
        versions: bool,
    ) -> tuple[int, _Keys | list[dict[str, Any]]]:
        column = _sort_column(sort)
        reads = [read for _, part in signed for read in part]
        if size <= 0 or not reads or _split(sort, search_after):
            total = _signed_total(signed, await conn.execute_all(*reads)) if reads else 0
            rows: list[dict[str, Any]] = []
            if size > 0 and total > start:
                how = self._pg_plan(query, column, total)
                rows = await _page_rows(conn, query, sort, search_after, how, start, size, True)
            return total, rows
        # The page and its total in one statement, one round trip (the total a column of each row).
        # A selective clause's plan depends on the total: guessed for few keys, as a filter's usually
        # are, and the page read again in the rare case that the total says otherwise.
        guess = self._pg_plan(query, column, 0)
        stmt = _totalled_page(query, sort, search_after, guess, signed, self.use_counts, versions)
        rows = (await conn.execute(stmt, {"start": start, "size": size})).rows
        if rows:
            total = int(rows[0][_TOTAL])
        else:
            # No row to carry the total (none matched, or the page is past them): counted apart.
            total = _signed_total(signed, await conn.execute_all(*reads))
        # The page holds keys the query matches, past ``start`` of them: none when the total is no more.
        if total <= start:
            return total, []
        how = self._pg_plan(query, column, total)
        if how != guess or not rows:
            return total, await _page_rows(conn, query, sort, search_after, how, start, size, True)
        if not versions:
            return total, rows
        return total, await self._versions_then_keys(conn, rows, query, sort, search_after, how, start, size)

    def _pg_plan(self, query: Query, column: str | None, total: int) -> plan.Plan:
        """PostgreSQL's plan for a page of ``query`` (``total`` keys) ordered from ``column``."""
        if self.forced_plan is not None:
            return self.forced_plan
        # PostgreSQL plans from statistics and sees no hidden column; but with a LIMIT it walks an
        # index in sort order hoping to meet the filter's keys soon, which fails when they lack the
        # sort value (elastic's keys by expiration: 3 s). The selective plan there reads the filter's
        # keys first (_fenced). The managed keys newest first are a walk of their own index (0.5 ms,
        # not 43 ms for 10,000 of them read first).
        selective = plan.prefers_selective(query, column, total)
        selective = selective and not plan.managed_in_order(query, column)
        return plan.Plan.SELECTIVE if selective else plan.Plan.FREE

    async def _count_statements(self, conn: Conn, query: Query) -> list[tuple[int, counts.Statements]]:
        """Statements whose counts, signed, sum to the exact number of keys ``query`` matches: sums of
        the count tables when they answer it, else one count."""
        kept = self.use_counts
        if kept:
            try:
                found = _COUNTED.get(query)
            except TypeError:  # a query holding a list or a dict (metadata values) has no hash
                found, kept = None, False
            if found is not None:
                return found
        parts = counted.parts(query)
        shapes = [counted.shape_of(part) if self.use_counts else None for _, part in parts]
        if not all(shape is not None and counted.countable(shape) for shape in shapes):
            # Counted on the keys in one pass: in parts, each part would read the same keys again.
            if self.db.is_postgres and plan.selective(query):
                # A selective clause's index finds every key counted (as on SQLite, counted_hidden).
                # Once updates have spread a name prefix's keys over the table, PostgreSQL prefers a
                # parallel scan of all of it, which crosses the JIT's cost threshold too: "key-1"
                # (83,000 of 1M keys) took 470-630 ms so, 110-140 ms through the indexes.
                for setting in _INDEXED_COUNT:
                    await conn.execute(setting)
            cond = _where(query)
            cond = plan.steer(cond, plan.counted_hidden(query, cond))
            return [(1, [(select(func.count()).select_from(t).where(cond), None)])]
        out: list[tuple[int, counts.Statements]] = []
        for (sign, _), shape in zip(parts, shapes, strict=True):
            assert shape is not None
            out.append((sign, counts.statements(shape)))
        if kept:
            if len(_COUNTED) >= 1000:
                _COUNTED.clear()
            _COUNTED[query] = out
        return out

    async def aggregate(self, query: Query, aggs: list[Agg]) -> dict[str, AggResult]:
        shape = counted.shape_of(query) if self.use_counts else None
        async with self.db.transaction() as conn:
            out: dict[str, AggResult] = {}
            for agg in aggs:
                if isinstance(agg, TermsAgg) and shape is not None and counted.serves_terms(agg, shape):
                    out[agg.name] = await counts.terms(conn, agg, shape)
                else:
                    out.update(await SQL.aggregate(conn, [agg], query, postgres=self.db.is_postgres))
            return out

    async def replace_many(self, keys: list[ApiKey]) -> set[str]:
        if len(keys) <= 1:  # an update by id: one batch, nothing to size
            return await self._replace_batch(keys)
        written: set[str] = set()
        size = _batch_size(UPDATE_BATCH, self.db.is_postgres)
        start = 0
        while start < len(keys):
            batch = keys[start : start + size.rows]
            t0 = time.perf_counter()
            written |= await self._replace_batch(batch)
            size.took(time.perf_counter() - t0, len(batch))
            start += len(batch)
        return written

    async def _replace_batch(self, keys: list[ApiKey]) -> set[str]:
        def params_of() -> list[dict[str, Any]]:
            params = []
            for key in keys:
                row = _values(key)
                values = {"v_" + name: row[at] for name, at in zip(_UPDATED, _SET, strict=True)}
                values.update(v_seq_no=key.seq_no + 1, k_id=key.id, k_seq_no=key.seq_no)
                params.append(values)
            return params

        def write(conn: Any) -> list[str]:
            # Under the write lock (SQLite) or row locks (PostgreSQL's FOR UPDATE) nobody else changes
            # these rows, so the keys still at the seq_no read are written with one executemany.
            ids = [key.id for key in keys]
            found = conn.execute(select(t.c.id, t.c.seq_no).where(t.c.id.in_(ids)).with_for_update())
            current = {row.id: row.seq_no for row in found}
            unchanged = [p for p in params if current.get(p["k_id"]) == p["k_seq_no"]]
            if unchanged:
                conn.execute(_REPLACE, unchanged)
            return [p["k_id"] for p in unchanged]

        if not keys:
            return set()
        if len(keys) == 1:
            # One key (an update by id): the compare-and-set is the UPDATE's own condition.
            key = keys[0]
            # One statement with its notice (one round trip on PostgreSQL). The notice goes even when
            # the compare-and-set finds the key changed: it only drops a cached key.
            replaced = await self.db.execute_alone(_REPLACE_ONE, params_of()[0], ["api_key:" + key.id])
            changed = replaced.rowcount == 1
            if not changed:
                return set()
            key.seq_no += 1
            return {key.id}
        # Rows are built before the transaction, off the event loop for a large batch.
        params = params_of() if len(keys) <= _PARSE_OFF_LOOP else await asyncio.to_thread(params_of)
        async with self.db.transaction() as conn:
            # One call for the batch: on SQLite it runs on the writer thread, not the event loop.
            done = await conn.run_sync(write)
            _notify_keys(conn, sorted(done))
        written = set(done)
        for key in keys:
            if key.id in written:
                key.seq_no += 1
        return written

    async def invalidate(self, ids: list[str], now: int) -> list[str]:
        if not ids:
            return []
        async with self.db.transaction() as conn:
            live = (await conn.execute(select(t.c.id).where(and_(t.c.id.in_(ids), t.c.invalidated == false())))).rows
            done = [r["id"] for r in live]
            if done:
                await conn.execute(
                    update(t)
                    .where(and_(t.c.id.in_(done), t.c.invalidated == false()))
                    .values(invalidated=True, invalidation=now, seq_no=t.c.seq_no + 1)
                )
            _notify_keys(conn, done)
        return done

    async def record_last_used(self, used: dict[str, int]) -> None:
        if not used:
            return
        async with self.db.transaction() as conn:
            for key_id, at in used.items():
                await conn.execute(
                    update(t)
                    .where(and_(t.c.id == key_id, or_(t.c.last_used.is_(None), t.c.last_used < at)))
                    .values(last_used=at)
                )

    async def delete_inactive(self, before: int) -> int:
        # A bounded batch per transaction, so no write transaction holds the writer for long. Each
        # batch is picked inside its DELETE through an index (no list of ids bound: PostgreSQL plans
        # a long IN list badly); deleted rows no longer match, so each statement finds the next ones.
        removed = 0
        size = _batch_size(SWEEP_BATCH, self.db.is_postgres, SWEEP_TARGET)
        for inactive in _inactive(before):
            while True:
                rows = size.rows
                batch = select(t.c.id).where(inactive).limit(rows)
                async with self.db.transaction(background=True) as conn:
                    t0 = time.perf_counter()
                    gone = (await conn.execute(delete(t).where(t.c.id.in_(batch)))).rowcount
                    held = conn.writer_since or t0  # SQLite: after requests took the writer first
                # Sized by the statement and its COMMIT, which writes and syncs the pages the batch
                # changed: others' writes wait for both.
                ended = time.perf_counter()
                size.took(ended - held, gone)
                removed += gone
                if gone < rows:
                    break
                # A background job: it rests as long as its batch held the writer, so other requests
                # get at least half of the writer, the disk and the cores meanwhile. The rest begins
                # with the copy of its pages out of the WAL (SQLite), which leaves the writer free.
                await self.db.copy_wal()
                await asyncio.sleep(max(0.0, (ended - held) * SWEEP_REST - (time.perf_counter() - ended)))
        if removed:
            # Caches are emptied once, when the sweep is over, as when it was one transaction: until
            # then a cached removed key is still refused (it is expired or invalidated), and cached
            # live keys are not re-verified after every batch.
            async with self.db.transaction() as conn:
                conn.notify("api_keys")
        return removed

    async def compact_counts(self) -> list[tuple[str, float]]:
        return await counts.compact(self.db)

    async def delete_all(self) -> None:
        self._page_keys.clear()
        async with self.db.transaction() as conn:
            await conn.execute(delete(t))
            conn.notify("api_keys")
