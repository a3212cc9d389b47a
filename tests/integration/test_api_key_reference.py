"""Planned pages and totals equal a plain query's, on a store where few keys were ever used.

The reference is the query engine's own SQL with nothing steered: one statement for the total
(``count(*)`` of the query's condition) and one per page (the condition, ``search_after`` as an OR of
ranges, ``ORDER BY`` with missing values last, ``OFFSET``/``LIMIT``). The repository's pages are read in
parts, on steered plans, and its totals come from count tables where they can: for the console's
shapes that were slow over a million keys (next pages sorted by ``last_used``, keys unused for N days,
a broad search text), both must give what the reference gives.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import and_, func, select

from keyplane.apikeys import core, hashing
from keyplane.apikeys.backends.plans import sql as plan
from keyplane.apikeys.backends.sql import SQL, SqlApiKeyRepository, _row
from keyplane.apikeys.core import ApiKey, Creator
from keyplane.apikeys.query import parse_query, parse_sort
from keyplane.query.tree import Query, SortKey
from keyplane.store import schema
from keyplane.store.database import Database
from keyplane.timevalue import now_ms
from tests.integration.stores import filled_key_store
from tests.integration.test_api_key_plans import console_query, health_queries

DAY = 86_400_000
KEYS = 2500
HASH = hashing.hash_secret("s")
t = schema.api_keys


def _keys(now: int, used_share: float) -> list[ApiKey]:
    rng = random.Random(12)
    keys = []
    for i in range(KEYS):
        created = now - rng.randrange(120) * DAY // 2  # ties on creation
        expiration = None if rng.random() < 0.6 else created + rng.choice([1, 30, 90]) * DAY
        invalidated = rng.random() < 0.1
        used = rng.random() < used_share
        keys.append(
            ApiKey(
                id=f"k{i:05d}",
                name=None if i % 41 == 0 else f"key-{i}",
                type=core.CROSS_CLUSTER if i % 9 == 0 else core.REST,
                creation=created,
                expiration=expiration,
                invalidated=invalidated,
                invalidation=created + DAY if invalidated else None,
                hash=HASH,
                creator=Creator(f"user{i % 5}", None, None, {}, "native", "native"),
                # Last uses on both sides of "now-30d", some at exactly a creation time.
                last_used=(created + rng.randrange(0, 60) * DAY // 2) if used else None,
            )
        )
    return keys


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[asyncio.AbstractEventLoop, Database]]:
    yield from filled_key_store(tmp_path_factory, "reference", [_row(k) for k in _keys(now_ms(), 0.05)])


async def _plain_total(db: Database, query: Query) -> int:
    async with db.transaction() as conn:
        return int((await conn.execute(select(func.count()).select_from(t).where(SQL.where(query)))).scalar() or 0)


async def _plain_page(db: Database, query: Query, sort: list[SortKey], after: list[Any] | None, size: int) -> list[str]:
    cond = SQL.where(query)
    if after:
        cond = and_(cond, SQL.after(sort, after))
    stmt = select(t.c.id).where(cond).order_by(*SQL.order_by(sort)).limit(size)
    async with db.transaction() as conn:
        return [r["id"] for r in (await conn.execute(stmt)).rows]


async def _compare_paging(db: Database, repo: SqlApiKeyRepository, body: dict[str, Any], sort_body: list[Any]) -> int:
    """Pages by search_after to the end, each equal to the plain query's from the same value; the pages read."""
    query, sort = parse_query(body), parse_sort(sort_body)
    total = await _plain_total(db, query)
    after: list[Any] | None = None
    pages = 0
    while True:
        page = await repo.search(query, sort, 0, 30, after, now_ms())
        assert page.total == total, (body, sort_body)
        expected = await _plain_page(db, query, sort, after, 30)
        assert [k.id for k in page.keys] == expected, (body, sort_body, after)
        pages += 1
        if not page.keys:
            return pages
        after = page.sort_values[-1]


def unused_query(days: int) -> dict[str, Any]:
    """key_health.js: live keys whose last use (or, never used, creation) is older than ``days``."""
    before = f"now-{days}d"
    never_used = {"must_not": {"exists": {"field": "last_used"}}, "filter": {"range": {"creation": {"lt": before}}}}
    unused = {"should": [{"range": {"last_used": {"lt": before}}}, {"bool": never_used}], "minimum_should_match": 1}
    live = {
        "should": [
            {"bool": {"must_not": {"exists": {"field": "expiration"}}}},
            {"range": {"expiration": {"gt": "now"}}},
        ],
        "minimum_should_match": 1,
    }
    return {"bool": {"must_not": [{"term": {"invalidated": True}}], "filter": [{"bool": unused}, {"bool": live}]}}


def _repos(db: Database) -> list[SqlApiKeyRepository]:
    return [SqlApiKeyRepository(db)] + [SqlApiKeyRepository(db, forced_plan=p) for p in plan.Plan]


def test_pages_sorted_by_last_use_equal_the_plain_query(store: tuple[asyncio.AbstractEventLoop, Database]) -> None:
    """Sorted by last_used where 1 key in 20 has one: the next pages run past the used keys into the
    unused ones, read apart from them."""
    loop, db = store

    async def go() -> None:
        for order, status, owner, repo in itertools.product(
            ["desc", "asc"], ["", "active", "expired"], ["", "user3"], _repos(db)
        ):
            body = console_query("", "", owner, status)
            pages = await _compare_paging(db, repo, body, [{"last_used": {"order": order}}, "_doc"])
            assert pages > 3
        # A single sort key: nothing sorts after a key without the value.
        for repo in _repos(db):
            await _compare_paging(db, repo, {"match_all": {}}, [{"last_used": {"order": "desc"}}])
            await _compare_paging(db, repo, {"match_all": {}}, [{"expiration": {"order": "asc"}}, {"name": "desc"}])

    loop.run_until_complete(go())


def test_health_and_search_totals_equal_the_plain_query(store: tuple[asyncio.AbstractEventLoop, Database]) -> None:
    """Keys unused for N days (several N), expiring soon, and broad search texts: same totals and pages."""
    loop, db = store

    async def go() -> None:
        bodies = [unused_query(days) for days in (0, 1, 7, 30, 45, 90)]
        bodies.append(health_queries()[0][0])
        bodies += [
            console_query(text, kind, "", status)
            for text, kind, status in (
                ("key-1", "", "active"),
                ("key-1", "rest", ""),
                ("key-2*", "", "active"),
                ("user3", "", "active"),
                ("key-1", "", "expired"),
            )
        ]
        for body in bodies:
            for repo in _repos(db):
                await _compare_paging(db, repo, body, [{"creation": {"order": "asc"}}, "_doc"])

    loop.run_until_complete(go())
