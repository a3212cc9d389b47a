"""API keys in SQL: rows, the query tree translated to SQL expressions, and aggregations as GROUP BY.

Queries, sorts and aggregations run in the database on indexed columns, so a list page over a
million keys reads only what it returns.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import (
    String,
    and_,
    case,
    cast,
    delete,
    false,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from keyplane import jsontext
from keyplane.apikeys.backends.base import KeyFilter, Page
from keyplane.apikeys.core import ApiKey, Creator
from keyplane.apikeys.query import DATE_FIELDS, Agg, CompositeSource, Node, SortKey, format_date, parse_date
from keyplane.security import roles as role_mod
from keyplane.store import schema
from keyplane.store.database import Database
from keyplane.store.jsonleaf import LeafIn, LeafText, leaf_rows

t = schema.api_keys
_COLUMNS = {
    "username": t.c.username,
    "realm_name": t.c.realm,
    "name": t.c.name,
    "type": t.c.type,
    "creation": t.c.creation,
    "expiration": t.c.expiration,
    "invalidated": t.c.invalidated,
    "invalidation": t.c.invalidation,
    "last_used": t.c.last_used,
}


_NOT_NULL = {"username", "realm_name", "type", "creation", "invalidated", "_doc"}


def _row(key: ApiKey) -> dict[str, Any]:
    doc = {
        "role_descriptors": {rd.name: rd.to_dict(transient=False) for rd in key.role_descriptors},
        "role_descriptor_order": [rd.name for rd in key.role_descriptors],
        "limited_by": {rd.name: rd.to_dict(transient=False) for rd in key.limited_by},
        "creator": key.creator.to_dict(),
        "version": key.version,
    }
    if key.certificate_identity is not None:
        doc["certificate_identity"] = key.certificate_identity
    return {
        "id": key.id,
        "name": key.name,
        "type": key.type,
        "creation": key.creation,
        "expiration": key.expiration,
        "invalidated": key.invalidated,
        "invalidation": key.invalidation,
        "username": key.creator.principal,
        "realm": key.creator.realm,
        "realm_type": key.creator.realm_type,
        "hash": key.hash,
        "metadata": key.metadata,
        "doc": jsontext.dumps(doc).decode(),
        "last_used": key.last_used,
        "seq_no": key.seq_no,
    }


def _key(row: dict[str, Any]) -> ApiKey:
    doc = orjson.loads(row["doc"])
    descriptors = doc["role_descriptors"]
    order = doc.get("role_descriptor_order", list(descriptors))
    metadata = row["metadata"]
    if isinstance(metadata, str):  # some drivers hand JSON back as text
        metadata = orjson.loads(metadata)
    return ApiKey(
        id=row["id"],
        name=row["name"],
        type=row["type"],
        creation=row["creation"],
        expiration=row["expiration"],
        invalidated=bool(row["invalidated"]),
        invalidation=row["invalidation"],
        hash=row["hash"],
        creator=Creator.from_dict(doc["creator"]),
        role_descriptors=[role_mod.parse_stored(n, descriptors[n]) for n in order],
        limited_by=[role_mod.parse_stored(n, body) for n, body in doc["limited_by"].items()],
        metadata=metadata,
        version=doc.get("version", 0),
        last_used=row["last_used"],
        seq_no=row["seq_no"],
        certificate_identity=doc.get("certificate_identity"),
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _column(field: str) -> ColumnElement[Any]:
    if field in _COLUMNS:
        return _COLUMNS[field]
    if field == "metadata":
        return cast(t.c.metadata, String)
    return LeafText(t.c.metadata, _metadata_path(field))


def _metadata_path(field: str) -> tuple[str, ...]:
    return tuple(field.split(".")[1:])


def _leaf(node: Node) -> ColumnElement[bool]:
    kind, field = node.kind, node.field
    if kind == "ids":
        return t.c.id.in_(list(node.value))
    col = _column(field)
    ci = node.options.get("case_insensitive", False)
    if field == "metadata" and kind in ("term", "terms", "prefix", "wildcard"):
        # The flattened root matches any leaf value; look for it in the JSON text.
        values = node.value if kind == "terms" else (node.value,)
        return or_(
            *[col.like("%" + _escape_like(orjson.dumps(str(v)).decode()[:-1]) + "%", escape="\\") for v in values]
        )
    if field.startswith("metadata.") and kind in ("term", "terms") and not ci:
        # A flattened field: any element of an array at that path matches too.
        values = list(node.value) if kind == "terms" else [node.value]
        return LeafIn(t.c.metadata, _metadata_path(field), values) if values else false()
    if kind == "term":
        if ci and isinstance(node.value, str):
            return func.lower(col) == node.value.lower()
        return col == node.value
    if kind == "terms":
        return col.in_(list(node.value)) if node.value else false()
    if kind == "prefix":
        pattern = _escape_like(node.value) + "%"
        return func.lower(col).like(pattern.lower(), escape="\\") if ci else col.like(pattern, escape="\\")
    if kind == "wildcard":
        pattern = "".join("%" if c == "*" else "_" if c == "?" else _escape_like(c) for c in node.value)
        return func.lower(col).like(pattern.lower(), escape="\\") if ci else col.like(pattern, escape="\\")
    if kind == "exists":
        if field == "metadata":
            return and_(t.c.metadata.isnot(None), cast(t.c.metadata, String) != "{}")
        return col.isnot(None)
    if kind == "range":
        conds = []
        for op, value in node.value.items():
            conds.append({"gt": col > value, "gte": col >= value, "lt": col < value, "lte": col <= value}[op])
        return and_(col.isnot(None), *conds)
    raise ValueError(f"unknown query node {kind}")


def _negate(node: Node) -> ColumnElement[bool]:
    """NOT of a clause, where a missing field counts as not matching (SQL's NULL would drop the row)."""
    if node.kind == "exists" and node.field != "metadata":
        return _column(node.field).is_(None)  # stays an index range
    if (
        node.kind == "bool"
        and len(node.children)
        and all(not clauses or key == "must_not" for key, clauses in node.children)
    ):
        inner = dict(node.children).get("must_not", ())
        if len(inner) == 1:
            return where(inner[0])  # not (not x) is x
    return not_(func.coalesce(where(node), false()))


def where(node: Node) -> ColumnElement[bool]:
    """Translate a validated query tree into a SQL condition."""
    if node.kind == "all":
        return true()
    if node.kind == "none":
        return false()
    if node.kind != "bool":
        return _leaf(node)
    groups = dict(node.children)
    required = [where(n) for n in groups.get("must", ()) + groups.get("filter", ())]
    excluded = [_negate(n) for n in groups.get("must_not", ())]
    should = [where(n) for n in groups.get("should", ())]
    minimum = node.options.get("minimum_should_match")
    if minimum is None:
        minimum = 0 if (required or excluded) else 1
    if should and minimum == 1:
        required.append(or_(*should))
    elif should and minimum > 1:
        hits = sum((case((s, 1), else_=0) for s in should), literal(0))
        required.append(hits >= minimum)
    conds = required + excluded
    return and_(true(), *conds) if conds else true()


def _count_terms(node: Node) -> list[tuple[int, ColumnElement[bool]]]:
    """Conditions whose signed counts add up to the count of ``node``.

    ``A and (B or C)`` is counted as ``|A and B| + |A and C| - |A and B and C|``: each part is an
    index range, where the disjunction forces a scan (a key-management UI asks for "live keys
    that expire later or never" on every page).
    """
    groups = dict(node.children) if node.kind == "bool" else {}
    should = groups.get("should", ())
    required = groups.get("must", ()) + groups.get("filter", ())
    minimum = node.options.get("minimum_should_match")
    if len(should) != 2 or minimum != 1:
        return [(1, where(node))]
    base = [where(n) for n in required] + [_negate(n) for n in groups.get("must_not", ())]
    first, second = where(should[0]), where(should[1])
    return [(1, and_(*base, first)), (1, and_(*base, second)), (-1, and_(*base, first, second))]


def _selector(selector: KeyFilter, now: int) -> ColumnElement[bool]:
    conds: list[ColumnElement[bool]] = []
    if selector.ids is not None:
        conds.append(t.c.id.in_(selector.ids))
    if selector.name is not None and selector.name != "*":
        if selector.name.endswith("*"):
            conds.append(t.c.name.like(_escape_like(selector.name[:-1]) + "%", escape="\\"))
        else:
            conds.append(t.c.name == selector.name)
    if selector.username is not None:
        conds.append(t.c.username == selector.username)
    if selector.realm is not None:
        conds.append(t.c.realm == selector.realm)
    if selector.active_only or selector.exclude_invalidated:
        conds.append(t.c.invalidated == false())
    if selector.active_only:
        conds.append(or_(t.c.expiration.is_(None), t.c.expiration > now))
    return and_(true(), *conds)


def _sort_value(key: ApiKey, sort: SortKey) -> Any:
    if sort.field == "_doc":
        return key.creation
    value: Any
    if sort.field in _COLUMNS:
        value = {"username": key.creator.principal, "realm_name": key.creator.realm}.get(
            sort.field, getattr(key, sort.field, None)
        )
    elif sort.field == "metadata":
        value = None
    else:
        node: Any = key.metadata or {}
        for part in sort.field.split(".")[1:]:
            node = node.get(part) if isinstance(node, dict) else None
        value = None if node is None else (node if isinstance(node, str) else orjson.dumps(node).decode())
    if value is not None and sort.format and sort.field in DATE_FIELDS:
        return format_date(value)
    return value


def _sort_column(key: SortKey) -> ColumnElement[Any]:
    return t.c.creation if key.field == "_doc" else _column(key.field)


def _typed(key: SortKey, value: Any) -> Any:
    """A search_after value in the column's type (clients send numbers back as strings too)."""
    if key.field in DATE_FIELDS + ("_doc",):
        return parse_date(value)
    if key.field == "invalidated":
        return str(value).lower() in ("true", "1")
    return value


def _after(sort: list[SortKey], values: list[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the sort order, with missing values last."""
    clauses = []
    for i, key in enumerate(sort):
        value = values[i] if i < len(values) else None
        if value is None:
            continue  # nothing sorts after a missing value in this position
        col = _sort_column(key)
        equal_before = [
            _sort_column(k).is_(None) if values[j] is None else _sort_column(k) == _typed(k, values[j])
            for j, k in enumerate(sort[:i])
        ]
        typed = _typed(key, value)
        beyond = (col < typed) if key.desc else (col > typed)
        clauses.append(and_(*equal_before, or_(beyond, col.is_(None))))
    return or_(false(), *clauses)


def _notify_keys(conn: Any, ids: list[str]) -> None:
    """Tell every node which keys changed; past a hundred, to drop all cached keys instead."""
    if len(ids) > 100:
        conn.notify("api_keys")
        return
    for key_id in ids:
        conn.notify("api_key:" + key_id)


class SqlApiKeyRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, key: ApiKey) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(insert(t).values(**_row(key)))

    async def get(self, key_id: str) -> ApiKey | None:
        async with self.db.transaction() as conn:
            row = (await conn.execute(select(t).where(t.c.id == key_id))).first()
        return _key(row) if row else None

    async def find(self, selector: KeyFilter, now: int) -> list[ApiKey]:
        stmt = select(t).where(_selector(selector, now)).order_by(t.c.creation, t.c.id)
        async with self.db.transaction() as conn:
            rows = (await conn.execute(stmt)).rows
        return [_key(r) for r in rows]

    async def search(
        self, query: Node, sort: list[SortKey], start: int, size: int, search_after: list[Any] | None, now: int
    ) -> Page:
        cond = where(query)
        order = []
        for key in sort:
            col = _sort_column(key)
            direction = col.desc() if key.desc else col.asc()
            # Missing values sort last, as in Elasticsearch; NOT NULL columns need no such clause,
            # and without it an index can deliver the order.
            order.append(direction if key.field in _NOT_NULL else direction.nulls_last())
        # A tie-breaker in the direction of the last key keeps pages stable and index-friendly.
        order.append(t.c.id.desc() if sort and sort[-1].desc else t.c.id.asc())
        page_cond = cond if not search_after else and_(cond, _after(sort, search_after))
        stmt = select(t).where(page_cond).order_by(*order).offset(start).limit(size)
        async with self.db.transaction() as conn:
            total = 0
            for sign, part in _count_terms(query):
                total += sign * ((await conn.execute(select(func.count()).select_from(t).where(part))).scalar() or 0)
            rows = (await conn.execute(stmt)).rows if size > 0 else []
        keys = [_key(r) for r in rows]
        return Page(int(total), keys, [[_sort_value(k, s) for s in sort] for k in keys])

    async def aggregate(self, query: Node, aggs: list[Agg], typed_keys: bool) -> dict[str, Any]:
        async with self.db.transaction() as conn:
            return await _Aggregator(conn, typed_keys, self.db.is_postgres).run(aggs, where(query))

    async def replace_many(self, keys: list[ApiKey]) -> set[str]:
        written: set[str] = set()
        if not keys:
            return written
        async with self.db.transaction() as conn:
            for key in keys:
                values = _row(key)
                values["seq_no"] = key.seq_no + 1
                res = await conn.execute(
                    update(t).where(and_(t.c.id == key.id, t.c.seq_no == key.seq_no)).values(**values)
                )
                if res.rowcount == 1:
                    written.add(key.id)
                    key.seq_no += 1
            _notify_keys(conn, sorted(written))
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
        async with self.db.transaction() as conn:
            res = await conn.execute(
                delete(t).where(
                    or_(
                        and_(t.c.expiration.isnot(None), t.c.expiration <= before),
                        and_(t.c.invalidated == true(), or_(t.c.invalidation.is_(None), t.c.invalidation <= before)),
                    )
                )
            )
            if res.rowcount:
                conn.notify("api_keys")
        return res.rowcount

    async def delete_all(self) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(delete(t))
            conn.notify("api_keys")


def _terms_order(agg: Agg) -> tuple[str, str]:
    """What a terms aggregation sorts its buckets by (``_count`` or ``_key``) and in which direction."""
    order = agg.spec.get("order", {"_count": "desc"})
    order = order if isinstance(order, dict) else order[0]
    return next(iter(order.items())) if order else ("_count", "desc")


def _equal(col: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    return col.is_(None) if value is None else col == value


def _beyond(source: CompositeSource, col: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    """Values of one composite source that sort after ``value`` (missing: first ascending, last descending)."""
    if value is None:
        return false() if source.descending else col.isnot(None)
    if source.descending:
        return or_(col < value, col.is_(None)) if source.missing_bucket else col < value
    return col > value


class _Aggregator:
    """Runs the aggregation tree as SQL, one statement per aggregation or bucket level."""

    def __init__(self, conn: Any, typed_keys: bool, postgres: bool) -> None:
        self.conn = conn
        self.typed_keys = typed_keys
        self.postgres = postgres

    def _leaves(self, field: str, cond: ColumnElement[bool]) -> Any:
        """(key, v) rows of a metadata field for the matching keys: one per value, array elements apart."""
        rows = leaf_rows(t, "id", "metadata", _metadata_path(field), postgres=self.postgres)
        return select(rows.c.key, rows.c.v).where(rows.c.key.in_(select(t.c.id).where(cond))).subquery()

    async def run(self, aggs: list[Agg], cond: ColumnElement[bool]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for agg in aggs:
            result, prefix = await getattr(self, "_" + agg.type)(agg, cond)
            out[f"{prefix}#{agg.name}" if self.typed_keys else agg.name] = result
        return out

    async def _count(self, cond: ColumnElement[bool]) -> int:
        return int((await self.conn.execute(select(func.count()).select_from(t).where(cond))).scalar() or 0)

    async def _bucket(self, agg: Agg, cond: ColumnElement[bool], key: dict[str, Any]) -> dict[str, Any]:
        bucket = dict(key)
        bucket["doc_count"] = await self._count(cond)
        if agg.subs:
            bucket.update(await self.run(agg.subs, cond))
        return bucket

    @staticmethod
    def _key_fields(field: str, value: Any) -> dict[str, Any]:
        if field in DATE_FIELDS:
            return {"key_as_string": format_date(value), "key": value}
        if field == "invalidated":
            return {"key": 1 if value else 0, "key_as_string": "true" if value else "false"}
        return {"key": value}

    async def _metadata_terms(self, agg: Agg, cond: ColumnElement[bool]) -> tuple[dict[str, Any], str]:
        """Terms over a metadata field: a key counts once in the bucket of each of its values."""
        leaves = self._leaves(agg.field, cond)
        size = int(agg.spec.get("size", 10))
        count = func.count(leaves.c.key.distinct()).label("c")
        stmt = select(leaves.c.v.label("k"), count).group_by(leaves.c.v)
        by, direction = _terms_order(agg)
        sort_col = count if by == "_count" else leaves.c.v
        stmt = stmt.order_by(sort_col.desc() if direction == "desc" else sort_col.asc(), leaves.c.v.asc()).limit(size)
        rows = (await self.conn.execute(stmt)).rows
        pairs = select(leaves.c.key, leaves.c.v).distinct().subquery()
        total = int((await self.conn.execute(select(func.count()).select_from(pairs))).scalar() or 0)
        buckets = []
        for row in rows:
            bucket = {"key": row["k"], "doc_count": int(row["c"])}
            if agg.subs:
                path = _metadata_path(agg.field)
                bucket.update(await self.run(agg.subs, and_(cond, LeafIn(t.c.metadata, path, [row["k"]]))))
            buckets.append(bucket)
        result = {
            "doc_count_error_upper_bound": 0,
            "sum_other_doc_count": total - sum(b["doc_count"] for b in buckets),
            "buckets": buckets,
        }
        return result, "sterms"

    async def _terms(self, agg: Agg, cond: ColumnElement[bool]) -> tuple[dict[str, Any], str]:
        if agg.field.startswith("metadata."):
            return await self._metadata_terms(agg, cond)
        col = _column(agg.field)
        size = int(agg.spec.get("size", 10))
        count = func.count().label("c")
        stmt = select(col.label("k"), count).where(and_(cond, col.isnot(None))).group_by(col)
        by, direction = _terms_order(agg)
        sort_col = count if by == "_count" else col
        stmt = stmt.order_by(sort_col.desc() if direction == "desc" else sort_col.asc(), col.asc()).limit(size)
        rows = (await self.conn.execute(stmt)).rows
        total = await self._count(and_(cond, col.isnot(None)))
        buckets = []
        for row in rows:
            bucket_cond = and_(cond, col == row["k"])
            bucket = self._key_fields(agg.field, row["k"]) | {"doc_count": int(row["c"])}
            if agg.subs:
                bucket.update(await self.run(agg.subs, bucket_cond))
            buckets.append(bucket)
        result = {
            "doc_count_error_upper_bound": 0,
            "sum_other_doc_count": total - sum(b["doc_count"] for b in buckets),
            "buckets": buckets,
        }
        numeric = agg.field in DATE_FIELDS or agg.field == "invalidated"
        return result, "lterms" if numeric else "sterms"

    async def _composite(self, agg: Agg, cond: ColumnElement[bool]) -> tuple[dict[str, Any], str]:
        # A metadata source joins its values (one row per array element; none when missing), so a key
        # falls in every combination of its values, and is counted once per bucket.
        base: Any = t
        cols: list[tuple[CompositeSource, ColumnElement[Any]]] = []
        for source in agg.sources:
            if source.field.startswith("metadata."):
                leaves = self._leaves(source.field, cond)
                base = base.outerjoin(leaves, leaves.c.key == t.c.id)
                cols.append((source, leaves.c.v))
            else:
                cols.append((source, _column(source.field)))
        size = int(agg.spec.get("size", 10))
        present = [col.isnot(None) for source, col in cols if not source.missing_bucket]
        count = func.count(t.c.id.distinct()).label("_count")
        stmt = select(*[c.label(s.name) for s, c in cols], count).select_from(base).where(cond, *present)
        after = agg.spec.get("after")
        if isinstance(after, dict):
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
            key = {s.name: row[s.name] for s, _ in cols}
            bucket = {"key": key, "doc_count": int(row["_count"])}
            if agg.subs:
                matches = [self._source_is(s, c, row[s.name], cond) for s, c in cols]
                bucket.update(await self.run(agg.subs, and_(cond, *matches)))
            buckets.append(bucket)
        result: dict[str, Any] = {}
        if buckets:
            result["after_key"] = buckets[-1]["key"]
        result["buckets"] = buckets
        return result, "composite"

    def _source_is(
        self, source: CompositeSource, col: ColumnElement[Any], value: Any, cond: ColumnElement[bool]
    ) -> ColumnElement[bool]:
        """Keys in a composite bucket, as a condition on the keys table."""
        if not source.field.startswith("metadata."):
            return _equal(col, value)
        if value is not None:
            return LeafIn(t.c.metadata, _metadata_path(source.field), [value])
        return t.c.id.notin_(select(self._leaves(source.field, cond).c.key))

    async def _missing(self, agg: Agg, cond: ColumnElement[bool]) -> tuple[dict[str, Any], str]:
        if agg.field.startswith("metadata."):
            leaves = self._leaves(agg.field, cond)
            return await self._bucket(agg, and_(cond, t.c.id.notin_(select(leaves.c.key))), {}), "missing"
        col = _column(agg.field)
        return await self._bucket(agg, and_(cond, col.is_(None)), {}), "missing"

    async def _cardinality(self, agg: Agg, cond: ColumnElement[bool]) -> tuple[dict[str, Any], str]:
        if agg.field.startswith("metadata."):
            leaves = self._leaves(agg.field, cond)
            value = (await self.conn.execute(select(func.count(leaves.c.v.distinct())))).scalar()
            return {"value": int(value or 0)}, "cardinality"
        col = _column(agg.field)
        value = (await self.conn.execute(select(func.count(col.distinct())).where(cond))).scalar()
        return {"value": int(value or 0)}, "cardinality"

    async def _value_count(self, agg: Agg, cond: ColumnElement[bool]) -> tuple[dict[str, Any], str]:
        if agg.field.startswith("metadata."):
            leaves = self._leaves(agg.field, cond)
            value = (await self.conn.execute(select(func.count()).select_from(leaves))).scalar()
            return {"value": int(value or 0)}, "value_count"
        col = _column(agg.field)
        value = (await self.conn.execute(select(func.count(col)).where(cond))).scalar()
        return {"value": int(value or 0)}, "value_count"

    async def _ranges(self, agg: Agg, cond: ColumnElement[bool], dates: bool) -> dict[str, Any]:
        col = _column(agg.field)
        keyed = bool(agg.spec.get("keyed", False))
        buckets: list[dict[str, Any]] = []
        for spec in agg.spec.get("ranges", []):
            low, high = spec.get("from"), spec.get("to")
            if dates or agg.field in DATE_FIELDS:
                low = parse_date(low) if low is not None else None
                high = parse_date(high) if high is not None else None
            conds = [cond, col.isnot(None)]
            if low is not None:
                conds.append(col >= low)
            if high is not None:
                conds.append(col < high)

            def label(v: Any) -> str:
                if v is None:
                    return "*"
                return format_date(v) if agg.field in DATE_FIELDS else str(float(v))

            key = spec.get("key", f"{label(low)}-{label(high)}")
            entry: dict[str, Any] = {"key": key}
            if low is not None:
                entry["from"] = low
                if agg.field in DATE_FIELDS:
                    entry["from_as_string"] = format_date(low)
            if high is not None:
                entry["to"] = high
                if agg.field in DATE_FIELDS:
                    entry["to_as_string"] = format_date(high)
            buckets.append(await self._bucket(agg, and_(*conds), entry))
        if keyed:
            return {"buckets": {b.pop("key"): b for b in buckets}}
        return {"buckets": buckets}

    async def _range(self, agg: Agg, cond: ColumnElement[bool]) -> tuple[dict[str, Any], str]:
        return await self._ranges(agg, cond, False), "range"

    async def _date_range(self, agg: Agg, cond: ColumnElement[bool]) -> tuple[dict[str, Any], str]:
        return await self._ranges(agg, cond, True), "date_range"

    async def _filter(self, agg: Agg, cond: ColumnElement[bool]) -> tuple[dict[str, Any], str]:
        assert agg.filter is not None
        return await self._bucket(agg, and_(cond, where(agg.filter)), {}), "filter"

    async def _filters(self, agg: Agg, cond: ColumnElement[bool]) -> tuple[dict[str, Any], str]:
        buckets = {name: await self._bucket(agg, and_(cond, where(q)), {}) for name, q in agg.filters}
        if agg.keyed:
            return {"buckets": buckets}, "filters"
        return {"buckets": list(buckets.values())}, "filters"
