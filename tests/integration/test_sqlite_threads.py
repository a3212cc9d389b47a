"""SQLite off the event loop: a write lock held by another process stalls no read and no other task,
a waiting write gives up with StoreUnavailable, and commits are durable (synchronous=FULL)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import OperationalError

from keyplane.errors import StoreUnavailable
from keyplane.security.backends.sql import SqlUserRepository
from keyplane.security.users import User
from keyplane.store import database, schema
from keyplane.store.database import Database
from keyplane.store.migrations import migrate
from tests.conftest import STORE

pytestmark = pytest.mark.skipif(STORE != "sqlite", reason="SQLite's file lock and threads")


async def _open(path: Path) -> Database:
    db = Database.for_data_dir(path)
    await db.open()
    await migrate(db)
    return db


class Ticker:
    """Measures the longest time the event loop went without running this task."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now

    def __enter__(self) -> Ticker:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()


def test_a_held_write_lock_stalls_neither_reads_nor_the_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database, "LOCK_WAIT_SECONDS", 1.5)

    async def go() -> None:
        db = await _open(tmp_path)
        repo = SqlUserRepository(db)
        await repo.put(User("ann", roles=["r"]), "h0")
        other = sqlite3.connect(tmp_path / "keyplane.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process (a backup, the sqlite3 shell) holds the write lock
        try:
            with Ticker() as ticker:
                started = time.perf_counter()
                write = asyncio.create_task(repo.set_password("ann", "h1"))
                second = asyncio.create_task(repo.put(User("bob", roles=[]), "h"))
                await asyncio.sleep(0.2)
                # Reads, including transactions that only read, answer at once from WAL snapshots.
                t0 = time.perf_counter()
                for _ in range(20):
                    stored = await repo.get("ann")
                    assert stored is not None and stored.password_hash == "h0"
                    async with db.transaction() as conn:
                        assert (await conn.execute(select(schema.users.c.username))).rows
                assert time.perf_counter() - t0 < 1.0
                for task in (write, second):
                    with pytest.raises(StoreUnavailable):
                        await task
                waited = time.perf_counter() - started
                # The writes gave up after a bounded wait, and the loop kept running meanwhile.
                assert 1.4 < waited < 4.5
                assert ticker.longest < 0.25, ticker.longest
        finally:
            other.execute("ROLLBACK")
            other.close()
        # Once the lock is gone, writes go through; the failed ones changed nothing.
        stored = await repo.get("ann")
        assert stored is not None and stored.password_hash == "h0"
        assert await repo.get("bob") is None
        assert await repo.set_password("ann", "h2") is True
        stored = await repo.get("ann")
        assert stored is not None and stored.password_hash == "h2"
        await db.close()

    asyncio.run(go())


def test_read_then_write_transactions_see_the_latest_data_and_readers_see_commits(tmp_path: Path) -> None:
    async def go() -> None:
        db = await _open(tmp_path)
        roles = schema.roles

        async def add(name: str) -> None:
            async with db.transaction() as conn:
                await conn.execute(select(roles.c.name))  # starts on a reader
                await conn.execute(insert(roles).values(name=name, doc="{}", seq_no=1))
                # After its first write a transaction reads its own writes.
                assert (await conn.execute(select(roles.c.name).where(roles.c.name == name))).rows

        await asyncio.gather(*[add(f"r{i}") for i in range(30)])
        async with db.transaction() as conn:
            names = {r["name"] for r in (await conn.execute(select(roles.c.name))).rows}
        assert names == {f"r{i}" for i in range(30)}
        # A failed transaction that began by reading leaves nothing behind and frees its connections.
        for _ in range(database.READERS + 2):
            with pytest.raises(RuntimeError):
                async with db.transaction() as conn:
                    await conn.execute(select(roles.c.name))
                    await conn.execute(insert(roles).values(name="half", doc="{}", seq_no=1))
                    raise RuntimeError("boom")
        async with db.transaction() as conn:
            assert not (await conn.execute(select(roles.c.name).where(roles.c.name == "half"))).rows
        await db.close()

    asyncio.run(go())


def test_commits_are_durable(tmp_path: Path) -> None:
    async def go() -> None:
        db = await _open(tmp_path)
        async with db.transaction() as conn:
            # run_sync runs on the writer: the connection every commit goes through.
            pragmas = await conn.run_sync(
                lambda c: (
                    c.exec_driver_sql("PRAGMA journal_mode").scalar(),
                    c.exec_driver_sql("PRAGMA synchronous").scalar(),
                )
            )
        assert pragmas == ("wal", 2)  # 2 = FULL: the WAL is synced before a commit returns
        await db.close()

    asyncio.run(go())


def test_a_transaction_that_could_not_begin_writes_nothing_even_if_the_caller_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "LOCK_WAIT_SECONDS", 0.3)

    async def go() -> None:
        db = await _open(tmp_path)
        roles = schema.roles
        other = sqlite3.connect(tmp_path / "keyplane.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreUnavailable, match="could not begin"):
                async with db.transaction() as conn:
                    with pytest.raises(OperationalError, match="database is locked"):
                        await conn.execute(insert(roles).values(name="a", doc="{}", seq_no=1))
                    other.execute("ROLLBACK")  # the lock is gone, but this transaction never began
                    await conn.execute(insert(roles).values(name="b", doc="{}", seq_no=1))
        finally:
            if other.in_transaction:
                other.execute("ROLLBACK")
            other.close()
        async with db.transaction() as conn:
            assert (await conn.execute(select(roles.c.name))).rows == []
        await db.close()

    asyncio.run(go())
