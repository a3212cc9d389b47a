"""Plans the key list depends on at scale: a prefix on name is an index range on PostgreSQL too."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from keyplane.store.database import Database
from keyplane.store.migrations import migrate


def test_prefix_on_name_is_an_index_range_on_postgresql(database_url: str) -> None:
    if not database_url.startswith("postgres"):
        pytest.skip("SQLite compares names byte by byte: its name index serves LIKE 'abc%' (case_sensitive_like)")

    async def go() -> str:
        db = Database(database_url)
        await db.open()
        try:
            await migrate(db)
            async with db.transaction() as conn:
                # A tiny table would be scanned whatever the indices: ask for the plan an index allows.
                await conn.execute(text("SET LOCAL enable_seqscan = off"))
                plan = await conn.execute(
                    text("EXPLAIN SELECT id FROM api_keys WHERE name LIKE :p ESCAPE '\\'"), {"p": "key-1%"}
                )
                return "\n".join(str(row["QUERY PLAN"]) for row in plan.rows)
        finally:
            await db.close()

    plan = asyncio.run(go())
    assert "api_keys_name_pattern" in plan, plan
