"""Plans the key list depends on at scale: a prefix on name is an index range on PostgreSQL too, and a
key looked up by id is found by its primary key."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from keyplane.apikeys.backends.base import KeyFilter
from keyplane.apikeys.backends.sql import _find_statement, _selector_params
from keyplane.store.prepared import Prepared
from tests.integration.stores import open_migrated


def test_prefix_on_name_is_an_index_range_on_postgresql(database_url: str) -> None:
    if not database_url.startswith("postgres"):
        pytest.skip("SQLite compares names byte by byte: its name index serves LIKE 'abc%' (case_sensitive_like)")

    async def go() -> str:
        db = await open_migrated(database_url)
        try:
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


def test_a_key_looked_up_by_id_and_owner_is_found_by_its_primary_key(database_url: str) -> None:
    """Update and invalidate find a key by id and owner. Before the first ANALYZE, PostgreSQL costed
    the owner index as the primary key's equal and read every key of the owner (6 ms at 15,000)."""
    selector = KeyFilter(ids=["key-1234"], username="elastic", realm="reserved", active_only=True)
    params = _selector_params(selector, 1_000)
    prepared = _find_statement(selector, database_url.startswith("postgres"))
    assert isinstance(prepared, Prepared)

    async def go() -> str:
        db = await open_migrated(database_url)
        try:
            async with db.transaction() as conn:
                # One owner's 3,000 keys, no statistics gathered (a new store before autovacuum's first).
                await conn.execute(
                    text(
                        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) "
                        "INSERT INTO api_keys (id, name, type, creation, invalidated, username, realm, realm_type, "
                        "hash, doc, seq_no, managed) SELECT 'key-' || i, 'k', 'rest', i, false, 'elastic', "
                        "'reserved', 'reserved', 'h', '{}', 1, false FROM n"
                    )
                )
            dialect: Dialect = postgresql.dialect() if db.is_postgres else sqlite.dialect()  # type: ignore[no-untyped-call]
            assert isinstance(prepared.stmt, Select)
            literal = prepared.stmt.params(**params).compile(dialect=dialect, compile_kwargs={"literal_binds": True})
            async with db.transaction() as conn:
                explain = "EXPLAIN " if db.is_postgres else "EXPLAIN QUERY PLAN "
                rows = (await conn.execute(text(explain + str(literal)))).rows
                found = (await conn.execute(prepared, params)).rows
                other = (await conn.execute(prepared, {**params, "username": "someone-else"})).rows
            assert [r["id"] for r in found] == ["key-1234"] and other == []
            return "\n".join(str(row["QUERY PLAN"] if db.is_postgres else row["detail"]) for row in rows)
        finally:
            await db.close()

    plan = asyncio.run(go())
    assert "api_keys_owner" not in plan, plan
    primary = "api_keys_pkey" if database_url.startswith("postgres") else "sqlite_autoindex_api_keys_1"
    assert primary in plan, plan
