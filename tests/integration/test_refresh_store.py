"""The refresh model on a real store: what searches see of an index whose writes are not visible at once,
and migration 10, which adds it to a store made before it."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from keyplane.indices.backends.sql import SqlDocumentRepository, SqlIndexRepository
from keyplane.indices.service import IndexService
from keyplane.store.database import Database
from keyplane.store.migrations import migrate


async def _service(url: str) -> tuple[Database, IndexService]:
    db = Database(url)
    await db.open()
    await migrate(db)
    return db, IndexService(SqlIndexRepository(db), SqlDocumentRepository(db))


def test_searches_see_the_last_refresh_and_realtime_gets_the_last_write(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        docs = svc.documents
        try:
            await svc.create("manual", {"index": {"refresh_interval": "-1"}})
            one = await docs.write("manual", "1", {"v": 1}, 1, None, refresh=False)
            assert one is not None
            assert await docs.count("manual") == 0
            assert await docs.get("manual", "1", realtime=False) is None
            assert (await docs.get("manual", "1")) == one
            await docs.refresh("manual")
            assert [d.source async for d in docs.scan("manual")] == [{"v": 1}]
            # A rewrite and a delete after the refresh: searches keep the refreshed versions.
            two = await docs.write("manual", "1", {"v": 2}, 2, one, refresh=False)
            assert two is not None
            three = await docs.write("manual", "1", {"v": 3}, 3, two, refresh=False)
            assert three is not None
            other = await docs.write("manual", "2", {"w": 1}, 1, None, refresh=True)
            assert other is not None
            assert [d.source async for d in docs.scan("manual")] == [{"v": 3}, {"w": 1}]
            assert await docs.delete("manual", "2", other, refresh=False) is not None
            assert [d.source async for d in docs.scan("manual")] == [{"v": 3}, {"w": 1}]
            assert await docs.count("manual") == 2
            assert await docs.get("manual", "2") is None
            assert (await docs.get("manual", "2", realtime=False)) == other
            await docs.refresh("manual")
            assert [d.source async for d in docs.scan("manual")] == [{"v": 3}]
            # Deleting the index drops what it kept for its searches.
            await docs.delete("manual", "1", three, refresh=False)
            await svc.delete([await svc.get("manual")])
            await svc.create("manual")
            assert await docs.count("manual") == 0
        finally:
            await db.close()

    asyncio.run(go())


def test_migration_10_adds_the_refresh_state_to_a_v9_store(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        try:
            await svc.create("old")
            await svc.index("old", "1", {"v": 1}, "index", None, None)
            async with db.transaction() as conn:  # back to the shape migration 9 made
                await conn.execute(text("DROP TABLE document_snapshots"))
                await conn.execute(text("ALTER TABLE indices DROP COLUMN refreshed_seq_no"))
                await conn.execute(text("UPDATE keyplane_schema SET version = 9"))
            await migrate(db)
            assert await svc.documents.count("old") == 1  # refreshed up to its last write
        finally:
            await db.close()

    asyncio.run(go())
