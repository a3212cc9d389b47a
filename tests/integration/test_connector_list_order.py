"""Connector lists in Elasticsearch's order (index name, nulls last, then id) on every page, whatever
statement a store runs for them: on SQLite, a list of live connectors is a union of the named ones,
straight from the index, and the unnamed ones by id (``_live_sqlite_page``)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from sqlalchemy import select

from keyplane.connectors.backends import sql
from keyplane.connectors.backends.base import Stored
from keyplane.connectors.backends.sql import SqlConnectorRepository
from keyplane.connectors.model import ConnectorFilter
from tests.integration.stores import open_migrated

IDS = ["b", "B", "a", "a0", "é", "z", "Zz", "c-1", "c_1", "日本", "x y", "a\u00e9", "m"]


def _doc(name: Any, deleted: bool) -> dict[str, Any]:
    # NUL and U+FFFF: stored sealed on PostgreSQL, read back unsealed on every path
    return {"index_name": name, "name": f"n {name}\x00\uffff", "description": "Some Words", "deleted": deleted}


def test_pages_keep_the_order(database_url: str) -> None:
    async def go() -> None:
        db = await open_migrated(database_url)
        repo = SqlConnectorRepository(db)
        # Unique among live connectors; a name that is no string is no index name (the column holds null).
        names: list[Any] = [
            "search-b",
            None,
            "Search-a",
            None,
            "search-é",
            "search-a",
            None,
            "s",
            7,
            None,
            "t",
            "",
            None,
        ]
        for connector_id, name in zip(IDS, names, strict=True):
            await repo.put(connector_id, _doc(name, deleted=False))
        # Deleted connectors may share a live one's index name.
        await repo.put("d1", _doc("search-b", deleted=True))
        await repo.put("d2", _doc(None, deleted=True))
        for include_deleted in (False, True):
            for query in (None, "search", "words"):
                selector = ConnectorFilter([], [], [], query, include_deleted)
                conds = sql._list_conditions(selector)  # noqa: SLF001
                pattern = sql._like(query) if query else None  # noqa: SLF001
                params = {"pattern": pattern, "pattern_lower": pattern.lower()} if pattern else {}
                async with db.transaction() as conn:
                    rows = await conn.execute(select(sql.c.c.id).where(*conds).order_by(*sql._ORDER), params)  # noqa: SLF001
                expected = [r["id"] for r in rows.rows]
                assert expected, (include_deleted, query)
                for start in range(len(expected) + 2):
                    for size in (0, 1, 3, 20):
                        total, page = await repo.list(selector, start, size)
                        assert total == len(expected)
                        assert [s.id for s in page] == expected[start : start + size], (include_deleted, query)
                        total, texts = await repo.list_texts(selector, start, size)
                        assert [t[0] for t in texts] == expected[start : start + size]
                        assert [orjson.loads(t[1]) for t in texts] == [s.doc for s in page]
        await db.close()

    asyncio.run(go())


def test_lists_follow_every_change(database_url: str) -> None:
    """Texts kept between lists (PostgreSQL keeps them by version) never outlive the form they were
    read from: an update, a delete and a new connector of the same id at ``seq_no`` 1 again, a write
    through another repository (another node)."""

    async def go() -> None:
        db = await open_migrated(database_url)
        repo, other = SqlConnectorRepository(db), SqlConnectorRepository(db)
        selector = ConnectorFilter([], [], [], None, False)

        async def names() -> list[tuple[str, Any]]:
            for _ in range(2):  # the second list from what the first kept
                total, texts = await repo.list_texts(selector, 0, 20)
            assert total == len(texts)
            return [(i, orjson.loads(t)["name"]) for i, t in texts]

        await repo.put("a", _doc("search-a", deleted=False))
        await repo.put("b", _doc("search-b", deleted=False))
        first = await names()
        stored = await repo.get("a")
        assert stored is not None
        assert await repo.replace(Stored("a", {**stored.doc, "name": "renamed"}, stored.seq_no), stored.doc)
        assert await names() == [("a", "renamed"), first[1]]
        assert await other.delete("a")
        await other.put("a", _doc("search-a", deleted=False) | {"name": "new"})  # seq_no 1 again
        assert await names() == [("a", "new"), first[1]]
        assert await other.delete("b")
        await other.put("b", _doc("search-b", deleted=False) | {"name": "b again"})  # the same seq_no as kept
        assert await names() == [("a", "new"), ("b", "b again")]
        assert await other.delete("b")
        assert await names() == [("a", "new")]
        await db.close()

    asyncio.run(go())
