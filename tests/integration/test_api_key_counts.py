"""Key counts from the count tables equal counting the keys, on random keys, writes and queries.

The counted repository (totals and terms aggregations from ``api_key_counts``) is compared with the
same repository counting on ``api_keys`` as before, on the same store, after random inserts,
updates, invalidations and sweeps; and the tables themselves with a GROUP BY over the keys.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, literal_column, select, text

from keyplane.api.aggregations import render_aggregations
from keyplane.apikeys import core, hashing
from keyplane.apikeys.backends.counts.shape import countable, parts, shape_of
from keyplane.apikeys.backends.counts.sql import bloated
from keyplane.apikeys.backends.sql import SqlApiKeyRepository
from keyplane.apikeys.core import ApiKey, Creator
from keyplane.apikeys.query import owned_by, parse_aggs, parse_query
from keyplane.query.tree import Bool, Query
from keyplane.store import schema
from keyplane.store.database import Database
from keyplane.store.migrations import MIGRATIONS, migrate

STEP = 1 << schema.EXPIRY_BUCKET_BITS
BASE = 1_700_000_000_000 // STEP * STEP
# Times on and around bucket edges, where whole buckets and index ranges meet.
TIMES = [BASE + k * STEP + d for k in (-1, 0, 1, 2) for d in (-1, 0, 1, STEP // 2)]
USERS = ["ann", "bob", "cy"]
REALMS = ["native", "file"]
HASH = hashing.hash_secret("s")

times = st.sampled_from(TIMES)
key_specs = st.fixed_dictionaries(
    {
        "user": st.sampled_from(USERS),
        "realm": st.sampled_from(REALMS),
        "type": st.sampled_from([core.REST, core.CROSS_CLUSTER]),
        "expiration": st.none() | times,
        "invalidated": st.booleans(),
    }
)


def leaf() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(lambda u: {"term": {"username": u}}, st.sampled_from([*USERS, "nobody"])),
        st.builds(lambda us: {"terms": {"username": us}}, st.lists(st.sampled_from(USERS), max_size=2)),
        st.builds(lambda r: {"term": {"realm_name": r}}, st.sampled_from(REALMS)),
        st.builds(lambda t: {"term": {"type": t}}, st.sampled_from(["rest", "cross_cluster"])),
        st.builds(lambda b: {"term": {"invalidated": b}}, st.booleans()),
        st.just({"exists": {"field": "expiration"}}),
        st.just({"bool": {"must_not": {"exists": {"field": "expiration"}}}}),
        st.builds(lambda b: {"bool": {"must_not": {"term": {"invalidated": b}}}}, st.booleans()),
        st.builds(
            lambda ops: {"range": {"expiration": ops}},
            st.dictionaries(st.sampled_from(["gt", "gte", "lt", "lte"]), times, max_size=2),
        ),
        st.just({"match_all": {}}),
        st.just({"prefix": {"name": "k-1"}}),  # not countable from the tables: counted on the keys
        st.just({"term": {"name": "k-2"}}),
    )


queries = st.one_of(
    leaf(),
    st.builds(
        lambda f, s, n, m: {
            "bool": {"filter": f, "should": s, "must_not": n, **({"minimum_should_match": m} if m else {})}
        },
        st.lists(leaf(), max_size=3),
        st.lists(leaf(), max_size=2),
        st.lists(st.sampled_from([{"exists": {"field": "expiration"}}, {"term": {"invalidated": True}}]), max_size=1),
        st.sampled_from([None, 1]),
    ),
)
AGGS = parse_aggs(
    {
        "users": {"terms": {"field": "username"}},
        "types": {"terms": {"field": "type", "order": {"_key": "asc"}}},
        "flags": {"terms": {"field": "invalidated", "size": 1}},
        "realms": {"terms": {"field": "realm_name", "order": {"_count": "asc"}, "size": 1}},
        "few": {"terms": {"field": "username", "size": 2, "order": {"_key": "desc"}}},
    }
)


def _key(i: int, spec: dict[str, Any]) -> ApiKey:
    return ApiKey(
        id=f"key{i:05d}",
        name=f"k-{i}",
        type=spec["type"],
        creation=1000 + i,
        expiration=spec["expiration"],
        invalidated=spec["invalidated"],
        invalidation=2000 + i if spec["invalidated"] else None,
        hash=HASH,
        creator=Creator(spec["user"], None, None, {}, spec["realm"], "native"),
        metadata={"i": i},
    )


@pytest.fixture
def store(database_url: str) -> Iterator[tuple[asyncio.AbstractEventLoop, Database]]:
    loop = asyncio.new_event_loop()
    db = Database(database_url)
    loop.run_until_complete(db.open())
    loop.run_until_complete(migrate(db))
    yield loop, db
    loop.run_until_complete(db.close())
    loop.close()


async def _grouped(db: Database) -> tuple[dict[tuple[Any, ...], int], dict[tuple[Any, ...], int]]:
    """The count tables' sums, and the same counts taken on the keys."""
    t, g, e = schema.api_keys, schema.api_key_counts, schema.api_key_expiry_counts
    shifted = t.c.expiration.op(">>")(literal_column(str(schema.EXPIRY_BUCKET_BITS)))
    bucket = func.coalesce(shifted, literal_column(str(schema.NEVER_EXPIRES)))
    async with db.transaction() as conn:
        by_group = (
            await conn.execute(
                select(g.c.username, g.c.realm, g.c.type, g.c.invalidated, func.sum(g.c.n)).group_by(
                    g.c.username, g.c.realm, g.c.type, g.c.invalidated
                )
            )
        ).rows
        by_bucket = (
            await conn.execute(
                select(e.c.type, e.c.invalidated, e.c.bucket, func.sum(e.c.n)).group_by(
                    e.c.type, e.c.invalidated, e.c.bucket
                )
            )
        ).rows
        keys_group = (
            await conn.execute(
                select(t.c.username, t.c.realm, t.c.type, t.c.invalidated, func.count()).group_by(
                    t.c.username, t.c.realm, t.c.type, t.c.invalidated
                )
            )
        ).rows
        keys_bucket = (
            await conn.execute(
                select(t.c.type, t.c.invalidated, bucket, func.count()).group_by(t.c.type, t.c.invalidated, bucket)
            )
        ).rows

    def table(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], int]:
        out = {}
        for row in rows:
            *group, n = row.values()
            if int(n):
                out[tuple(bool(v) if isinstance(v, bool) else v for v in group)] = int(n)
        return out

    assert table(by_group) == table(keys_group)
    return table(by_bucket), table(keys_bucket)


async def _check(db: Database, bodies: list[dict[str, Any]], owner: tuple[str, str] | None) -> None:
    counted, plain = SqlApiKeyRepository(db), SqlApiKeyRepository(db, use_counts=False)
    tables, keys = await _grouped(db)
    assert tables == keys
    for body in bodies:
        query: Query = parse_query(body)
        if owner is not None:
            query = Bool(filter=(query, owned_by(*owner)))  # what a manage_own_api_key user queries
        expected = await plain.search(query, [], 0, 0, None, 0)
        got = await counted.search(query, [], 0, 0, None, 0)
        assert got.total == expected.total, body
        want_aggs = render_aggregations(AGGS, await plain.aggregate(query, AGGS))
        assert render_aggregations(AGGS, await counted.aggregate(query, AGGS)) == want_aggs, body


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    specs=st.lists(key_specs, min_size=1, max_size=25),
    changes=st.lists(
        st.tuples(st.integers(0, 24), st.sampled_from(["expire", "invalidate", "metadata", "retype"]), times),
        max_size=10,
    ),
    sweep=st.none() | times,
    bodies=st.lists(queries, min_size=1, max_size=6),
    owner=st.none() | st.tuples(st.sampled_from(USERS), st.sampled_from(REALMS)),
)
def test_counts_equal_counting_the_keys(
    store: tuple[asyncio.AbstractEventLoop, Database],
    specs: list[dict[str, Any]],
    changes: list[tuple[int, str, int]],
    sweep: int | None,
    bodies: list[dict[str, Any]],
    owner: tuple[str, str] | None,
) -> None:
    loop, db = store

    async def go() -> None:
        repo = SqlApiKeyRepository(db)
        await repo.delete_all()
        keys = [_key(i, spec) for i, spec in enumerate(specs)]
        for key in keys:
            await repo.insert(key)
        await _check(db, bodies, owner)
        changed: list[ApiKey] = []
        to_invalidate: list[str] = []
        for index, what, at in changes:
            if index >= len(keys):
                continue
            key = keys[index]
            if what == "invalidate":
                to_invalidate.append(key.id)
            elif what == "expire":
                changed.append(dataclasses.replace(key, expiration=at if key.expiration != at else None))
            elif what == "retype":
                other = core.CROSS_CLUSTER if key.type == core.REST else core.REST
                changed.append(dataclasses.replace(key, type=other))
            else:
                changed.append(dataclasses.replace(key, metadata={"at": at}))
        unique = list({k.id: k for k in changed}.values())
        await repo.replace_many(unique)
        await repo.invalidate(to_invalidate, 5000)
        await repo.record_last_used({k.id: 7000 for k in keys[:3]})
        if sweep is not None:
            await repo.delete_inactive(sweep)
        await _check(db, bodies, owner)

    loop.run_until_complete(go())


def test_migration_counts_keys_already_stored(database_url: str) -> None:
    """A store upgraded from before the count tables starts with its keys counted."""
    version = MIGRATIONS.index(next(m for m in MIGRATIONS if m.__name__ == "_v12_key_counts"))

    def old_schema(conn: Any) -> None:
        schema.schema_version.create(conn, checkfirst=True)
        for step in MIGRATIONS[:version]:
            step(conn)
        conn.execute(schema.schema_version.insert().values(version=version))

    async def go() -> None:
        db = Database(database_url)
        await db.open()
        try:
            async with db.transaction() as conn:
                await conn.run_sync(old_schema)
            repo = SqlApiKeyRepository(db)
            for i in range(40):
                spec = {
                    "user": USERS[i % 3],
                    "realm": REALMS[i % 2],
                    "type": core.REST if i % 5 else core.CROSS_CLUSTER,
                    "expiration": TIMES[i % len(TIMES)] if i % 3 else None,
                    "invalidated": i % 7 == 0,
                }
                await repo.insert(_key(i, spec))
            await migrate(db)
            async with db.transaction() as conn:
                assert (await conn.execute(text("SELECT count(*) FROM api_key_counts"))).scalar()
            await _check(db, [{"match_all": {}}, {"range": {"expiration": {"gt": TIMES[5]}}}], None)
            await repo.insert(_key(99, {**spec, "user": "dee"}))
            await _check(db, [{"term": {"username": "dee"}}], None)
            async with db.transaction() as conn:  # set back: the step runs again and counts once
                await conn.execute(text(f"UPDATE keyplane_schema SET version = {version}"))
            await migrate(db)
            await _check(db, [{"match_all": {}}, {"term": {"username": "dee"}}], None)
            await _check_activity(db, [_unused(at, TIMES[1], False) for at in (999, 1020, 1100)])
        finally:
            await db.close()

    asyncio.run(go())


def test_concurrent_writes_keep_counts(store: tuple[asyncio.AbstractEventLoop, Database]) -> None:
    """Writers racing (several connections on PostgreSQL, each folding counts now and then) leave exact counts."""
    loop, db = store

    async def go() -> None:
        repo = SqlApiKeyRepository(db)
        keys = [
            _key(
                i,
                {
                    "user": USERS[i % 3],
                    "realm": REALMS[i % 2],
                    "type": core.REST,
                    "expiration": TIMES[i % len(TIMES)] if i % 2 else None,
                    "invalidated": False,
                },
            )
            for i in range(600)
        ]
        for start in range(0, len(keys), 100):
            await asyncio.gather(*[repo.insert(k) for k in keys[start : start + 100]])
        await asyncio.gather(*[repo.invalidate([k.id], 5000) for k in keys[::3]])
        await asyncio.gather(
            *[repo.replace_many([dataclasses.replace(k, expiration=TIMES[0])]) for k in keys[1::3]],
            repo.delete_inactive(TIMES[3]),
        )
        if db.is_postgres:
            async with db.transaction() as conn:
                await conn.execute(text("SELECT keyplane_compact_api_key_counts()"))
        await _check(db, [{"match_all": {}}, {"bool": {"must_not": {"exists": {"field": "expiration"}}}}], None)
        await asyncio.gather(*[repo.record_last_used({k.id: TIMES[i % len(TIMES)]}) for i, k in enumerate(keys[::2])])
        if db.is_postgres:
            async with db.transaction() as conn:
                await conn.execute(text("SELECT keyplane_compact_api_key_activity()"))
        await _check_activity(db, [_unused(at, TIMES[2], True) for at in TIMES[4:8]])

    loop.run_until_complete(go())


def test_count_tables_grown_far_beyond_their_rows_are_rewritten(
    store: tuple[asyncio.AbstractEventLoop, Database],
) -> None:
    """PostgreSQL: rows appended and folded by a burst of writes leave the live rows spread over a file
    no plain VACUUM shrinks; the sweep's upkeep rewrites it, and the counts stay exact."""
    loop, db = store
    if not db.is_postgres:
        assert loop.run_until_complete(SqlApiKeyRepository(db).compact_counts()) == []
        return

    async def pages() -> int:
        async with db.transaction() as conn:
            found = await conn.execute(text("SELECT pg_relation_size('api_key_counts') / 8192"))
        return int(found.scalar())

    async def go() -> None:
        repo = SqlApiKeyRepository(db)
        junk = (
            "INSERT INTO api_key_counts (username, realm, type, invalidated, n) "
            "SELECT 'gone' || g, 'native', 'rest', false, 0 FROM generate_series(1, 40000) g"
        )
        for chunk in range(5):  # live rows between what folding leaves behind, up to the file's end
            async with db.transaction() as conn:
                await conn.execute(text(junk))
            for i in range(10):
                spec = {"user": USERS[i % 3], "realm": REALMS[chunk % 2], "type": core.REST}
                await repo.insert(_key(chunk * 10 + i, {**spec, "expiration": None, "invalidated": i == 0}))
        async with db.transaction() as conn:
            await conn.execute(text("DELETE FROM api_key_counts WHERE username LIKE 'gone%'"))
        raw = await asyncpg.connect(db.url)
        try:
            await raw.execute("VACUUM ANALYZE api_key_counts")  # as autovacuum does: the file keeps its size
        finally:
            await raw.close()
        grown = await pages()
        assert grown > 1000
        writer = await asyncpg.connect(db.url)
        try:  # a write under way: the rewrite gives up at once rather than hold every writer behind it
            async with writer.transaction():
                await writer.execute("INSERT INTO api_key_counts VALUES ('ann', 'native', 'rest', false, 0)")
                started = time.perf_counter()
                assert await repo.compact_counts() == []
                assert time.perf_counter() - started < 2
        finally:
            await writer.close()
        assert await pages() == grown
        assert [name for name, _ in await repo.compact_counts()] == ["api_key_counts"]
        assert await pages() < grown // 100
        await _check(db, [{"match_all": {}}, {"term": {"invalidated": True}}], None)
        assert await repo.compact_counts() == []  # rewritten once, not at every sweep

    loop.run_until_complete(go())


def test_only_a_file_far_beyond_its_rows_is_bloated() -> None:
    mib = 1024 * 1024
    assert not bloated(4 * mib, 0)  # small files are left alone, whatever they hold
    assert bloated(100 * mib, 4_000)
    assert not bloated(100 * mib, 1_000_000)  # a million groups: that is their size


def _unused(before: int, live_after: int | None, lt: bool, created: int | None = None) -> dict[str, Any]:
    """key_health.js's unused view: last activity before ``before``, not invalidated, live after a time;
    never used keys created before ``created`` (default ``before``: date math reads "now" per value)."""
    op = "lt" if lt else "lte"
    created = before if created is None else created
    never = {"must_not": {"exists": {"field": "last_used"}}, "filter": {"range": {"creation": {op: created}}}}
    should = [{"bool": never}, {"range": {"last_used": {op: before}}}]
    filters: list[Any] = [{"bool": {"should": should, "minimum_should_match": 1}}]
    if live_after is not None:
        unexpired = {"range": {"expiration": {"gt": live_after}}}
        missing = {"bool": {"must_not": {"exists": {"field": "expiration"}}}}
        filters.append({"bool": {"should": [missing, unexpired], "minimum_should_match": 1}})
    return {"bool": {"must_not": [{"term": {"invalidated": True}}], "filter": filters}}


async def _check_activity(db: Database, bodies: list[dict[str, Any]]) -> None:
    """api_key_activity_counts equals a GROUP BY of the keys; unused totals equal counting the keys."""
    bits = schema.EXPIRY_BUCKET_BITS
    async with db.transaction() as conn:
        tables = (
            await conn.execute(
                text("SELECT bucket, activity, sum(n) AS n FROM api_key_activity_counts GROUP BY bucket, activity")
            )
        ).rows
        keys = (
            await conn.execute(
                text(
                    f"SELECT COALESCE(expiration >> {bits}, {schema.NEVER_EXPIRES}) AS b, "
                    f"COALESCE(last_used, creation) >> {bits} AS a, count(*) AS n FROM api_keys "
                    "WHERE NOT invalidated GROUP BY 1, 2"
                )
            )
        ).rows
    assert {(r["bucket"], r["activity"]): int(r["n"]) for r in tables if int(r["n"])} == {
        (r["b"], r["a"]): int(r["n"]) for r in keys
    }
    counted, plain = SqlApiKeyRepository(db), SqlApiKeyRepository(db, use_counts=False)
    for body in bodies:
        query = parse_query(body)
        shapes = [shape_of(p) for _, p in parts(query)]
        assert all(s is not None and countable(s) for s in shapes), body  # summed, not counted
        expected = await plain.search(query, [], 0, 0, None, 0)
        assert (await counted.search(query, [], 0, 0, None, 0)).total == expected.total, body


activity_specs = st.fixed_dictionaries(
    {
        "creation": times,
        "last_used": st.none() | times,
        "expiration": st.none() | times,
        "invalidated": st.booleans(),
    }
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    specs=st.lists(activity_specs, min_size=1, max_size=25),
    changes=st.lists(
        st.tuples(st.integers(0, 24), st.sampled_from(["use", "expire", "invalidate", "recreate"]), times),
        max_size=10,
    ),
    sweep=st.none() | times,
    bounds=st.lists(st.tuples(times, st.none() | times, st.booleans(), st.none() | times), min_size=1, max_size=4),
)
def test_unused_counts_equal_counting_the_keys(
    store: tuple[asyncio.AbstractEventLoop, Database],
    specs: list[dict[str, Any]],
    changes: list[tuple[int, str, int]],
    sweep: int | None,
    bounds: list[tuple[int, int | None, bool, int | None]],
) -> None:
    """Last activity and expiration on and around bucket edges, through inserts, last uses, updates,
    invalidations and sweeps: the unused totals from api_key_activity_counts stay exact."""
    loop, db = store
    bodies = [_unused(before, live, lt, created) for before, live, lt, created in bounds]

    async def go() -> None:
        repo = SqlApiKeyRepository(db)
        await repo.delete_all()
        keys = []
        for i, spec in enumerate(specs):
            base = {"user": "ann", "realm": "native", "type": core.REST}
            key = _key(i, {**base, "expiration": spec["expiration"], "invalidated": spec["invalidated"]})
            keys.append(dataclasses.replace(key, creation=spec["creation"], last_used=spec["last_used"]))
        for key in keys:
            await repo.insert(key)
        await _check_activity(db, bodies)
        used: dict[str, int] = {}
        changed: list[ApiKey] = []
        for index, what, at in changes:
            if index >= len(keys):
                continue
            key = keys[index]
            if what == "use":
                used[key.id] = at
            elif what == "invalidate":
                await repo.invalidate([key.id], at)
            elif what == "expire":
                changed.append(dataclasses.replace(key, expiration=at if key.expiration != at else None))
            else:
                changed.append(dataclasses.replace(key, creation=at))
        await repo.replace_many(list({k.id: k for k in changed}.values()))
        await repo.record_last_used(used)
        if sweep is not None:
            await repo.delete_inactive(sweep)
        await _check_activity(db, bodies)

    loop.run_until_complete(go())
