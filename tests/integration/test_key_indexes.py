"""The retention sweep's search on a large PostgreSQL store (migration v17), read from its plan.

The plan is what matters here: the sweep deletes the right keys without the index (other tests show
it), but at a million keys its search for keys invalidated before their time was kept read every
invalidated key (0.6 s each time the sweep ran).
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql

from keyplane.apikeys.backends.sql import _inactive
from keyplane.store import schema
from keyplane.store.database import Database
from keyplane.store.migrations import migrate
from tests.conftest import STORE

pytestmark = pytest.mark.skipif(STORE != "postgres", reason="a PostgreSQL index (SQLite's planner keeps to another)")


async def _plan(db: Database, sql: str) -> str:
    async with db.transaction() as conn:
        # A handful of rows: the planner would rather read the table. The test asks whether the
        # index serves the read; which one it picks at scale is its own costing.
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        rows = (await conn.execute(text("EXPLAIN " + sql))).rows
    return "\n".join(" ".join(str(v) for v in row.values()) for row in rows)


def test_the_sweep_finds_keys_invalidated_before_their_time_by_a_partial_index(database_url: str) -> None:
    async def go() -> None:
        db = Database(database_url)
        await db.open()
        try:
            await migrate(db)
            untimed = select(schema.api_keys.c.id).where(_inactive(0)[2]).limit(250)
            sql = str(untimed.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
            assert "api_keys_invalidated_untimed" in await _plan(db, sql)
        finally:
            await db.close()

    asyncio.run(go())
