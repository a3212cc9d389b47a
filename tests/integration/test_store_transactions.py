"""A transaction mixes prepared statements, statements built per call and ``run_sync`` work, atomically.

On PostgreSQL a transaction holds one connection of the node's asyncpg pool: prepared statements run
on asyncpg, SQLAlchemy runs the rest on the same connection (keyplane.store.postgres ``_PgConn``).
These tests check, on both stores, that every kind of statement sees the transaction's own writes
and is committed or rolled back with them; and on PostgreSQL that a cancelled transaction or a lost
connection commits nothing, answers as an outage (503), and leaves the node working.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.engine import Connection

from keyplane.errors import StoreUnavailable
from keyplane.store import postgres, schema
from keyplane.store.database import Database
from keyplane.store.prepared import Prepared
from tests.integration.stores import open_migrated

t = schema.roles
INSERT = Prepared(insert(t).values(name=bindparam("name"), doc=bindparam("doc"), seq_no=1))
BUMP = Prepared(update(t).where(t.c.name == bindparam("name")).values(seq_no=t.c.seq_no + 1))
SEQ_NO = Prepared(select(t.c.seq_no).where(t.c.name == bindparam("name")))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _rows(db: Database) -> dict[str, int]:
    async with db.transaction() as conn:
        return {r["name"]: r["seq_no"] for r in (await conn.execute(select(t.c.name, t.c.seq_no))).rows}


def _bump_in_sync(name: str) -> Any:
    def fn(sync: Connection) -> int:
        sync.execute(update(t).where(t.c.name == name).values(seq_no=t.c.seq_no + 10))
        return int(sync.execute(select(t.c.seq_no).where(t.c.name == name)).scalar_one())

    return fn


def test_every_kind_of_statement_shares_the_transaction(database_url: str) -> None:
    async def go() -> None:
        db = await open_migrated(database_url)
        try:
            async with db.transaction() as conn:
                await conn.execute(INSERT, {"name": "a", "doc": "{}"})
                # Built per call (SQLAlchemy) and run_sync work see the prepared write, and each other's.
                await conn.execute(insert(t).values(name="b", doc="{}", seq_no=1))
                assert await conn.run_sync(_bump_in_sync("a")) == 11
                await conn.execute(BUMP, {"name": "b"})
                assert (await conn.execute(SEQ_NO, {"name": "b"})).scalar() == 2
                names = select(t.c.name).where(t.c.name.in_(["a", "b", "c"])).order_by(t.c.name)
                assert [r["name"] for r in (await conn.execute(names)).rows] == ["a", "b"]
            assert await _rows(db) == {"a": 11, "b": 2}

            # A failure after every kind of write undoes them all.
            with pytest.raises(RuntimeError):
                async with db.transaction() as conn:
                    await conn.execute(BUMP, {"name": "a"})
                    await conn.execute(insert(t).values(name="c", doc="{}", seq_no=1))
                    await conn.run_sync(_bump_in_sync("b"))
                    await conn.execute(INSERT, {"name": "d", "doc": "{}"})
                    raise RuntimeError("abort")
            assert await _rows(db) == {"a": 11, "b": 2}

            # SQLAlchemy first, prepared statements after: the same transaction too.
            with pytest.raises(RuntimeError):
                async with db.transaction() as conn:
                    await conn.run_sync(_bump_in_sync("a"))
                    await conn.execute(INSERT, {"name": "e", "doc": "{}"})
                    assert (await conn.execute(select(func.count()).select_from(t))).scalar() == 3
                    raise RuntimeError("abort")
            assert await _rows(db) == {"a": 11, "b": 2}
        finally:
            await db.close()

    run(go())


def test_a_cancelled_transaction_commits_nothing(database_url: str) -> None:
    """A request cancelled while its statement runs (or while it waits between statements) leaves
    nothing behind, and the node's next transactions work."""

    async def go() -> None:
        db = await open_migrated(database_url)
        try:
            await db.execute_alone(INSERT, {"name": "a", "doc": "{}"})
            started = asyncio.Event()

            async def slow(sleep_sql: bool) -> None:
                async with db.transaction() as conn:
                    await conn.execute(BUMP, {"name": "a"})
                    await conn.execute(insert(t).values(name="b", doc="{}", seq_no=1))
                    started.set()
                    if sleep_sql and db.is_postgres:
                        await conn.execute(text("SELECT pg_sleep(5)"))
                    else:
                        await asyncio.sleep(5)

            for sleep_sql in (True, False):
                started.clear()
                task = asyncio.create_task(slow(sleep_sql))
                await started.wait()
                await asyncio.sleep(0.1)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert await _rows(db) == {"a": 1}
            for _ in range(25):  # more than the pool holds: no connection was left in a transaction
                async with db.transaction() as conn:
                    await conn.execute(BUMP, {"name": "a"})
            assert await _rows(db) == {"a": 26}
        finally:
            await db.close()

    run(go())


def test_a_lost_connection_is_an_outage_and_the_node_goes_on(database_url: str) -> None:
    """PostgreSQL ends the transaction's backend (a restart, a failover): the request answers 503
    (StoreUnavailable), its writes are not committed, and the next transactions get a working
    connection."""
    if not database_url.startswith("postgres"):
        pytest.skip("a server-side connection kill is PostgreSQL's")

    async def go() -> None:
        db = await open_migrated(database_url)
        admin = await open_migrated(database_url)
        try:
            await db.execute_alone(INSERT, {"name": "a", "doc": "{}"})
            for kind in ("prepared", "sqlalchemy", "commit"):
                with pytest.raises(StoreUnavailable):
                    async with db.transaction() as conn:
                        await conn.execute(BUMP, {"name": "a"})
                        pid = (await conn.execute(text("SELECT pg_backend_pid() AS pid"))).scalar()
                        async with admin.transaction() as other:
                            await other.execute(text(f"SELECT pg_terminate_backend({int(pid)})"))
                        await asyncio.sleep(0.1)
                        if kind == "prepared":
                            await conn.execute(BUMP, {"name": "a"})
                        elif kind == "sqlalchemy":
                            await conn.execute(update(t).values(seq_no=t.c.seq_no + 1))
                        else:
                            conn.notify("roles")
                assert await _rows(db) == {"a": 1}
            for _ in range(25):
                async with db.transaction() as conn:
                    await conn.execute(BUMP, {"name": "a"})
                    await conn.execute(update(t).where(t.c.name == "a").values(seq_no=t.c.seq_no + 1))
            assert await _rows(db) == {"a": 51}
        finally:
            await db.close()
            await admin.close()

    run(go())


def test_a_node_out_of_connections_answers_503_then_recovers(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every connection of the node's pool held by a transaction: the next one waits, then answers
    503 (StoreUnavailable); once they end, transactions get connections again."""
    if not database_url.startswith("postgres"):
        pytest.skip("the connection pool is PostgreSQL's")
    monkeypatch.setattr(postgres, "ACQUIRE_SECONDS", 0.3)

    async def go() -> None:
        db = await open_migrated(database_url)
        try:
            await db.execute_alone(INSERT, {"name": "a", "doc": "{}"})
            release = asyncio.Event()
            holding = 0

            async def hold() -> None:
                nonlocal holding
                async with db.transaction() as conn:
                    await conn.execute(SEQ_NO, {"name": "a"})
                    holding += 1
                    await release.wait()

            holders = [asyncio.create_task(hold()) for _ in range(postgres.POOL_SIZE)]
            while holding < postgres.POOL_SIZE:
                await asyncio.sleep(0.01)
            with pytest.raises(StoreUnavailable):
                async with db.transaction() as conn:
                    await conn.execute(SEQ_NO, {"name": "a"})
            release.set()
            await asyncio.gather(*holders)
            async with db.transaction() as conn:
                await conn.execute(BUMP, {"name": "a"})
            assert await _rows(db) == {"a": 2}
        finally:
            await db.close()

    run(go())
