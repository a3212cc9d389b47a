"""Writes queued for SQLite's one writer: each gives up with StoreUnavailable once it has waited
LOCK_WAIT_SECONDS (one timer serves them all), and any other cancellation stays a cancellation."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from keyplane.errors import StoreUnavailable
from keyplane.store import database, schema
from keyplane.store.database import Database
from keyplane.store.migrations import migrate
from tests.conftest import STORE

pytestmark = pytest.mark.skipif(STORE != "sqlite", reason="SQLite's one writer")

WAIT = 0.3


async def _open(path: Path) -> Database:
    db = Database.for_data_dir(path)
    await db.open()
    await migrate(db)
    return db


async def _write(db: Database, name: str) -> float:
    """Insert a role; how long it took."""
    started = time.perf_counter()
    async with db.transaction() as conn:
        await conn.execute(insert(schema.roles).values(name=name, doc="{}", seq_no=1))
    return time.perf_counter() - started


async def _timed_out(db: Database, name: str) -> float:
    """A write that must give up: after how long."""
    started = time.perf_counter()
    with pytest.raises(StoreUnavailable, match="busy with other writes"):
        await _write(db, name)
    return time.perf_counter() - started


def test_each_queued_write_gives_up_after_its_own_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database, "LOCK_WAIT_SECONDS", WAIT)

    async def go() -> None:
        db = await _open(tmp_path)
        store = db._sqlite
        assert store is not None
        await store.write_lock.acquire()  # a long write holds the writer
        first = asyncio.create_task(_timed_out(db, "a"))
        await asyncio.sleep(0.1)
        second = asyncio.create_task(_timed_out(db, "b"))
        await asyncio.sleep(0.1)
        third = asyncio.create_task(_timed_out(db, "c"))
        waited = await asyncio.gather(first, second, third)
        for seconds in waited:
            # Never before its own limit, and not long after it.
            assert WAIT <= seconds < WAIT + 0.15, waited
        assert store.waiting == 0
        store.write_lock.release()
        await _write(db, "d")  # the writer works on
        async with db.transaction() as conn:
            assert [r["name"] for r in (await conn.execute(select(schema.roles.c.name))).rows] == ["d"]
        await db.close()

    asyncio.run(go())


def test_a_write_served_in_time_leaves_the_limit_of_the_next_one_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "LOCK_WAIT_SECONDS", WAIT)

    async def go() -> None:
        db = await _open(tmp_path)
        store = db._sqlite
        assert store is not None
        await store.write_lock.acquire()
        served = asyncio.create_task(_write(db, "a"))  # the timer is set for its limit
        await asyncio.sleep(0.05)
        store.write_lock.release()
        assert await served < WAIT  # it had the writer in time
        await asyncio.sleep(0.05)
        await store.write_lock.acquire()
        # Queued before the first write's limit passes: it still has its whole wait.
        assert WAIT <= await _timed_out(db, "b") < WAIT + 0.15
        store.write_lock.release()
        await db.close()

    asyncio.run(go())


def test_a_queued_write_cancelled_from_outside_is_cancelled_not_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "LOCK_WAIT_SECONDS", WAIT)

    async def go() -> None:
        db = await _open(tmp_path)
        store = db._sqlite
        assert store is not None
        await store.write_lock.acquire()
        waiting = asyncio.create_task(_write(db, "a"))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert store.waiting == 0
        store.write_lock.release()
        assert await _write(db, "c") < WAIT
        await db.close()

    asyncio.run(go())
