"""The plans that read a page of keys (apikeys/backends/plans/sql.py) return the same keys as before.

Every plan — a walk in sort order, the selective index, the database's own choice (the plan every
page had before) — and the plan the repository chooses give the same total and the same keys in
the same order for the console's filters, sorts and pages (first page, ``search_after``, ``from``),
over a few thousand keys with ties, missing names, expirations and last uses on both sides of now.
On SQLite, the walk of a newest-first page uses the creation index for its order, so that it
cannot silently fall back to sorting every match.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import sqlite

from keyplane.apikeys import core, hashing
from keyplane.apikeys.backends.plans import sql as plan
from keyplane.apikeys.backends.sql import SqlApiKeyRepository, _page_statement, _row, _sort_column
from keyplane.apikeys.core import ApiKey, Creator
from keyplane.apikeys.query import owned_by, parse_query, parse_sort
from keyplane.query.tree import Bool
from keyplane.store.database import Database
from keyplane.timevalue import now_ms
from tests.integration.stores import filled_key_store

DAY = 86_400_000
KEYS = 3000
HASH = hashing.hash_secret("s")
# metadata.managed in each form a term on it matches ("true", alone or in an array), and one it does not.
MANAGED: dict[int, Any] = {
    0: {"managed": True},
    13: {"managed": "true"},
    26: {"managed": ["x", True]},
    39: {"managed": False},
}
SORTS = ["creation:desc", "creation:asc", "name:asc", "name:desc", "expiration:asc", "last_used:desc", "last_used:asc"]


def _keys(now: int) -> list[ApiKey]:
    rng = random.Random(5)
    keys = []
    for i in range(KEYS):
        created = now - rng.randrange(200) * DAY // 2  # many keys share a creation time
        expiration = None if rng.random() < 0.5 else created + rng.choice([1, 30, 90, 200]) * DAY
        invalidated = rng.random() < 0.15
        name = None if i % 37 == 0 else ("dup" if i % 11 == 0 else f"key-{i}")
        keys.append(
            ApiKey(
                id=f"id{i:05d}",
                name=name,
                type=core.CROSS_CLUSTER if i % 10 == 0 else core.REST,
                creation=created,
                expiration=expiration,
                invalidated=invalidated,
                invalidation=created + DAY if invalidated else None,
                hash=HASH,
                creator=Creator(f"user{i % 7}", None, None, {}, "native", "native"),
                metadata=MANAGED.get(i % 50, {"team": f"t{i % 5}"}),
                last_used=None if rng.random() < 0.4 else created + rng.randrange(1, 100) * DAY // 4,
            )
        )
    return keys


def console_query(text_: str, kind: str, owner: str, status: str) -> dict[str, Any]:
    """The query keyplane/console/static/js/keys.js builds from its search box and filters."""
    filters: list[Any] = []
    body: dict[str, Any] = {}
    if text_:
        by_name = {"wildcard": {"name": {"value": text_}}} if "*" in text_ else {"prefix": {"name": text_}}
        should = [by_name, {"term": {"username": text_}}, {"ids": {"values": [text_]}}]
        filters.append({"bool": {"should": should, "minimum_should_match": 1}})
    if kind in ("rest", "cross_cluster"):
        filters.append({"term": {"type": kind}})
    elif kind == "managed":
        filters.append({"term": {"metadata.managed": True}})
    if owner:
        filters.append({"term": {"username": owner}})
    if status == "active":
        filters.append({"term": {"invalidated": False}})
        body["should"] = [
            {"range": {"expiration": {"gt": "now"}}},
            {"bool": {"must_not": {"exists": {"field": "expiration"}}}},
        ]
        body["minimum_should_match"] = 1
    elif status == "expired":
        filters += [{"term": {"invalidated": False}}, {"range": {"expiration": {"lte": "now"}}}]
    elif status == "invalidated":
        filters.append({"term": {"invalidated": True}})
    if not filters and not body:
        return {"match_all": {}}
    if filters:
        body["filter"] = filters
    return {"bool": body}


def health_queries() -> list[tuple[dict[str, Any], list[Any]]]:
    """key_health.js: live keys expiring within 7 days, live keys unused for 30 days."""
    live = {
        "bool": {
            "should": [
                {"bool": {"must_not": {"exists": {"field": "expiration"}}}},
                {"range": {"expiration": {"gt": "now"}}},
            ],
            "minimum_should_match": 1,
        }
    }
    unused = {
        "bool": {
            "should": [
                {"range": {"last_used": {"lt": "now-30d"}}},
                {
                    "bool": {
                        "must_not": {"exists": {"field": "last_used"}},
                        "filter": {"range": {"creation": {"lt": "now-30d"}}},
                    }
                },
            ],
            "minimum_should_match": 1,
        }
    }
    not_invalidated = [{"term": {"invalidated": True}}]
    expiring = {"range": {"expiration": {"gt": "now", "lte": "now+7d"}}}
    return [
        ({"bool": {"must_not": not_invalidated, "filter": [expiring]}}, [{"expiration": {"order": "asc"}}, "_doc"]),
        ({"bool": {"must_not": not_invalidated, "filter": [unused, live]}}, [{"creation": {"order": "asc"}}, "_doc"]),
    ]


def shapes() -> list[tuple[dict[str, Any], list[Any]]]:
    texts = ["", "key-1", "key-12", "user3", "key-2*", "id00042", "dup"]
    combos = list(
        itertools.product(
            texts,
            ["", "rest", "cross_cluster", "managed"],
            ["", "user3"],
            ["", "active", "expired", "invalidated"],
            SORTS,
        )
    )
    chosen = random.Random(12).sample(combos, 140)
    # Every status and sort alone, as the console sends them first.
    chosen += [("", "", "", status, sort) for status in ("", "active", "expired", "invalidated") for sort in SORTS]
    out = [
        (console_query(t, k, o, s), [{sort.split(":")[0]: {"order": sort.split(":")[1]}}, "_doc"])
        for t, k, o, s, sort in chosen
    ]
    return out + health_queries()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[asyncio.AbstractEventLoop, Database]]:
    yield from filled_key_store(tmp_path_factory, "plans", [_row(k) for k in _keys(now_ms())])


async def _pages(repo: SqlApiKeyRepository, body: dict[str, Any], sort_body: list[Any]) -> list[Any]:
    """Total and ids of the first page, the next one by search_after, and one from an offset."""
    query, sort = parse_query(body), parse_sort(sort_body)
    now = now_ms()
    first = await repo.search(query, sort, 0, 25, None, now)
    out: list[Any] = [first.total, [k.id for k in first.keys]]
    if first.sort_values:
        after = await repo.search(query, sort, 0, 25, first.sort_values[-1], now)
        out.append([k.id for k in after.keys])
    offset = await repo.search(query, sort, 30, 10, None, now)
    out.append([k.id for k in offset.keys])
    return out


def test_every_plan_gives_the_same_pages(store: tuple[asyncio.AbstractEventLoop, Database]) -> None:
    loop, db = store
    before = SqlApiKeyRepository(db, forced_plan=plan.Plan.FREE, use_counts=False)
    others = [SqlApiKeyRepository(db)] + [SqlApiKeyRepository(db, forced_plan=p) for p in plan.Plan]

    async def go() -> None:
        seen_totals = set()
        for body, sort in shapes():
            expected = await _pages(before, body, sort)
            seen_totals.add(expected[0])
            for repo in others:
                assert await _pages(repo, body, sort) == expected, (repo.forced_plan, body, sort)
        assert len(seen_totals) > 20  # the shapes match very different numbers of keys

    loop.run_until_complete(go())


def test_newest_first_pages_read_an_index_in_creation_order(store: tuple[asyncio.AbstractEventLoop, Database]) -> None:
    """The plan chosen at a million keys for each status and type, newest first, reads keys in
    creation order from an index and stops at the page: no sort of every match."""
    loop, db = store
    if db.is_postgres:
        pytest.skip("PostgreSQL plans from statistics; EXPLAIN QUERY PLAN is SQLite's")
    sort = parse_sort([{"creation": {"order": "desc"}}, "_doc"])
    statuses = ["", "active", "expired", "invalidated"]

    async def plan_of(body: dict[str, Any], after: list[Any] | None, owner: bool = False) -> list[str]:
        query = parse_query(body)
        if owner:  # a manage_own_api_key user's list
            query = Bool(filter=(query, owned_by("user3", "native")))
        # At a million keys, these shapes match at least a tenth of them (a user's own, a hundredth).
        how = plan.choose(query, _sort_column(sort), 25, 10_000 if owner else 100_000, 1_000_000)
        stmt = _page_statement(query, sort, after, how)
        built = getattr(stmt, "stmt", stmt).params(start=0, size=25)
        sql = str(built.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
        async with db.transaction() as conn:
            rows = (await conn.execute(text("EXPLAIN QUERY PLAN " + sql))).rows
        return [str(r["detail"]) for r in rows]

    async def go() -> None:
        for status, kind in itertools.product(statuses, ["", "rest", "cross_cluster"]):
            body = console_query("", kind, "", status)
            for after in (None, [now_ms() - 5 * DAY, now_ms() - 5 * DAY]):
                details = await plan_of(body, after)
                in_order = ("USING INDEX api_keys_creation", "USING INDEX api_keys_live_by_creation")
                assert any(index in d for d in details for index in in_order), (body, details)
                assert "USE TEMP B-TREE FOR ORDER BY" not in details, (body, details)
                details = await plan_of(body, after, owner=True)
                assert any("USING INDEX api_keys_owner (username=? AND realm=?" in d for d in details), details
                assert "USE TEMP B-TREE FOR ORDER BY" not in details, (body, details)

    loop.run_until_complete(go())


def test_search_after_pages_cross_into_keys_without_a_value(store: tuple[asyncio.AbstractEventLoop, Database]) -> None:
    """Paging by search_after through a whole list gives the pages it gave before, across the keys
    that lack the sort value (names, expirations, last uses: sorted last, read apart from the others)."""
    loop, db = store
    before = SqlApiKeyRepository(db, forced_plan=plan.Plan.FREE, use_counts=False)
    others = [SqlApiKeyRepository(db)] + [SqlApiKeyRepository(db, forced_plan=p) for p in plan.Plan]

    async def paged(repo: SqlApiKeyRepository, query: Any, sort: Any) -> list[str]:
        got: list[str] = []
        after = None
        while True:
            page = await repo.search(query, sort, 0, 40, after, now_ms())
            if not page.keys:
                return got
            got += [k.id for k in page.keys]
            after = page.sort_values[-1]

    async def go() -> None:
        for sort_name, status in itertools.product(SORTS, ["", "active"]):
            field, order = sort_name.split(":")
            query = parse_query(console_query("", "", "user3", status))
            sort = parse_sort([{field: {"order": order}}, "_doc"])
            expected = await paged(before, query, sort)
            assert len(expected) > 100
            for repo in others:
                assert await paged(repo, query, sort) == expected, (repo.forced_plan, sort_name, status)

    loop.run_until_complete(go())
