"""Search pages read their keys' versions first and answer from kept keys only when every version matches.

Each page is compared with the one a new repository (nothing kept) reads from the same store, after
changes made through another repository on that store (another node): the kept keys never hide one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from keyplane.apikeys import core, hashing
from keyplane.apikeys.backends.base import KeyFilter
from keyplane.apikeys.backends.sql import SqlApiKeyRepository
from keyplane.apikeys.core import ApiKey, Creator
from keyplane.apikeys.query import parse_query, parse_sort
from keyplane.store.database import Database
from keyplane.store.migrations import migrate

# A list, a filter (the page after the count on SQLite), a sort on a column keys may lack (read in
# parts), a sort on creation (plans by the total), and a page past the start.
PAGES: list[tuple[Any, Any, int, int]] = [
    (None, None, 0, 10),
    ({"prefix": {"name": "k-1"}}, None, 0, 10),
    (None, [{"expiration": "asc"}, "name"], 0, 10),
    (None, [{"creation": "desc"}], 0, 5),
    ({"term": {"username": "ann"}}, [{"name": "asc"}], 3, 10),
]


def _key(i: int) -> ApiKey:
    return ApiKey(
        id=ids_of(i),
        name=f"k-{i}",
        type=core.REST,
        creation=1000 + i,
        expiration=None if i % 3 else 10**13 + i,
        invalidated=False,
        invalidation=None,
        hash=hashing.hash_secret("s"),
        creator=Creator("ann", None, None, {}, "default_native", "native"),
        metadata={"n": i},
    )


def ids_of(i: int) -> str:
    return f"versions-key{i:03d}"


async def _pages(repo: SqlApiKeyRepository) -> list[tuple[int, list[dict[str, Any]], list[list[Any]]]]:
    out = []
    for query, sort, start, size in PAGES:
        page = await repo.search(parse_query(query), parse_sort(sort), start, size, None, 0)
        out.append((page.total, [dict(k.__dict__) for k in page.keys], page.sort_values))
    return out


def test_pages_match_a_fresh_read_after_changes_through_another_node(database_url: str) -> None:
    async def go() -> None:
        db = Database(database_url)
        await db.open()
        try:
            await migrate(db)
            node, other = SqlApiKeyRepository(db), SqlApiKeyRepository(db)
            await node.delete_all()
            for i in range(24):
                await node.insert(_key(i))
            first = await _pages(node)
            assert first == await _pages(SqlApiKeyRepository(db))
            assert await _pages(node) == first  # answered from the kept keys

            # Through the other node: an update (seq_no), a use (last_used alone), an invalidation, a
            # new key; each page of the first node must show them.
            changed = (await other.find(KeyFilter(ids=[ids_of(1)]), 0))[0]
            changed.metadata = {"n": "changed"}
            assert await other.replace_many([changed]) == {changed.id}
            await other.record_last_used({ids_of(2): 5000, ids_of(10): 6000})
            await other.invalidate([ids_of(3)], 7000)
            await other.insert(_key(30))
            now = await _pages(node)
            assert now == await _pages(SqlApiKeyRepository(db))
            assert now != first
            shown = {k["id"]: k for _, keys, _ in now for k in keys}
            assert shown[ids_of(1)]["metadata"] == {"n": "changed"}
            assert shown[ids_of(2)]["last_used"] == 5000
            assert shown[ids_of(3)]["invalidated"]
        finally:
            await db.close()

    asyncio.run(go())


def test_a_large_page_is_read_whole(database_url: str) -> None:
    async def go() -> None:
        db = Database(database_url)
        await db.open()
        try:
            await migrate(db)
            repo = SqlApiKeyRepository(db)
            await repo.delete_all()
            for i in range(205):
                await repo.insert(_key(i))
            page = await repo.search(parse_query(None), parse_sort(None), 0, 205, None, 0)
            assert page.total == 205
            assert [k.id for k in page.keys] == [ids_of(i) for i in range(205)]
            assert [k.metadata for k in page.keys] == [{"n": i} for i in range(205)]
        finally:
            await db.close()

    asyncio.run(go())
