"""Pages read with their totals (on PostgreSQL in one statement): the same totals and pages as counting
apart, past the end of the matches, with counts whose parameters share names, and for connector lists."""

from __future__ import annotations

import asyncio

from keyplane.apikeys import core, hashing
from keyplane.apikeys.backends.plans import sql as plan
from keyplane.apikeys.backends.sql import SqlApiKeyRepository
from keyplane.apikeys.core import ApiKey, Creator
from keyplane.apikeys.query import parse_query, parse_sort
from keyplane.connectors.backends.sql import SqlConnectorRepository
from keyplane.connectors.model import ConnectorFilter
from keyplane.store.database import Database
from keyplane.store.migrations import migrate

QUERIES = [
    {"match_all": {}},
    # Two sums of the count tables by owner, each with a parameter named "username".
    {"bool": {"should": [{"term": {"username": "ann"}}, {"term": {"username": "bob"}}]}},
    {"bool": {"filter": [{"term": {"username": "ann"}}, {"term": {"realm_name": "native"}}]}},
    {"term": {"username": "nobody"}},
    {"prefix": {"name": "k-1"}},
    {"ids": {"values": ["key001", "key004"]}},
    {"bool": {"must_not": [{"term": {"type": "cross_cluster"}}], "filter": [{"term": {"invalidated": False}}]}},
]


def _key(i: int) -> ApiKey:
    return ApiKey(
        id=f"key{i:03d}",
        name=f"k-{i}",
        type=core.CROSS_CLUSTER if i % 5 == 0 else core.REST,
        creation=1000 + i,
        expiration=None,
        invalidated=i % 7 == 0,
        invalidation=None,
        hash=hashing.hash_secret("s"),
        creator=Creator(["ann", "bob", "cy"][i % 3], None, None, {}, "default_native", "native"),
        metadata={"n": i},
    )


def test_key_pages_and_totals_as_counted_apart(database_url: str) -> None:
    async def go() -> None:
        db = Database(database_url)
        await db.open()
        await migrate(db)
        try:
            repo = SqlApiKeyRepository(db)
            for i in range(30):
                await repo.insert(_key(i))
            # Counting on the keys, with the free plan: the reference.
            plain = SqlApiKeyRepository(db, use_counts=False, forced_plan=plan.Plan.FREE)
            others = [repo, SqlApiKeyRepository(db, use_counts=False)]
            others += [SqlApiKeyRepository(db, forced_plan=p) for p in plan.Plan]
            for body in QUERIES:
                query = parse_query(body)
                for sort in ([], parse_sort(["name"]), parse_sort([{"creation": "desc"}])):
                    for start, size in ((0, 10), (5, 3), (29, 10), (30, 10), (100, 5), (0, 0)):
                        expected = await plain.search(query, sort, start, size, None, 0)
                        for other in others:
                            page = await other.search(query, sort, start, size, None, 0)
                            assert page.total == expected.total, (body, sort, start, size)
                            assert [k.id for k in page.keys] == [k.id for k in expected.keys], (body, sort, start)
                            assert page.sort_values == expected.sort_values
            total = (await repo.search(parse_query(QUERIES[1]), [], 0, 100, None, 0)).total
            assert total == 20
        finally:
            await db.close()

    asyncio.run(go())


def test_connector_lists_count_past_the_page(database_url: str) -> None:
    async def go() -> None:
        db = Database(database_url)
        await db.open()
        await migrate(db)
        try:
            repo = SqlConnectorRepository(db)
            for i in range(7):
                doc = {"name": f"c{i}", "index_name": f"search-{i}", "service_type": "s", "deleted": i == 6}
                assert await repo.insert(f"id{i}", doc)
            every = ConnectorFilter([], [], [], None, False)
            for start, size, ids in ((0, 20, 6), (4, 20, 2), (6, 20, 0), (50, 5, 0), (0, 0, 0)):
                total, page = await repo.list(every, start, size)
                assert total == 6 and len(page) == ids
            assert [s.id for s in (await repo.list(every, 1, 2))[1]] == ["id1", "id2"]
            texts = await repo.list_texts(ConnectorFilter([], [], [], "search-3", False), 0, 10)
            assert texts[0] == 1 and [t[0] for t in texts[1]] == ["id3"]
            assert await repo.list(ConnectorFilter([], ["c1", "c2", "zz"], [], None, True), 0, 10) == (
                2,
                (await repo.list(ConnectorFilter([], ["c1", "c2"], [], None, False), 0, 10))[1],
            )
            assert (await repo.list(ConnectorFilter([], ["zz"], [], None, True), 0, 10)) == (0, [])
            assert (await repo.list(ConnectorFilter([], [], [], None, True), 0, 20))[0] == 7
        finally:
            await db.close()

    asyncio.run(go())
