"""WAL checkpoints on their own thread (store/checkpoint.py): the writer never runs one inside a
COMMIT, the WAL stays bounded under writes back to back even with readers, reads go on meanwhile,
an idle store's WAL is truncated, and everything committed is in the database file after close."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from keyplane.store import checkpoint, schema
from keyplane.store.database import Database
from keyplane.store.migrations import migrate
from tests.conftest import STORE

pytestmark = pytest.mark.skipif(STORE != "sqlite", reason="SQLite's WAL")
roles = schema.roles
DOC = "x" * 3000  # most of a page per row, so the WAL grows fast


async def _open(path: Path) -> Database:
    db = Database.for_data_dir(path)
    await db.open()
    await migrate(db)
    return db


def _wal_size(path: Path) -> int:
    try:
        return (path / "keyplane.db-wal").stat().st_size
    except FileNotFoundError:
        return 0


async def _write(db: Database, prefix: str, count: int, per_transaction: int = 20) -> None:
    for start in range(0, count, per_transaction):
        rows = [dict(name=f"{prefix}{i}", doc=DOC, seq_no=1) for i in range(start, start + per_transaction)]
        async with db.transaction() as conn:
            await conn.execute(insert(roles), rows)


async def _count(db: Database) -> int:
    async with db.transaction() as conn:
        return int((await conn.execute(select(func.count()).select_from(roles))).scalar())


def test_the_writer_never_checkpoints_and_the_checkpointer_does(tmp_path: Path) -> None:
    async def go() -> None:
        db = await _open(tmp_path)
        store = db._sqlite
        assert store is not None and store.writer is not None and store.checkpointer is not None
        writer = store.writer
        auto = await writer.call(lambda: writer.conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar())  # type: ignore[union-attr]
        assert auto == 0
        await _write(db, "r", 400)
        await asyncio.sleep(checkpoint.INTERVAL * 6)
        assert store.checkpointer.runs > 0
        await db.close()
        assert not any(t.name == "keyplane-sqlite-checkpointer" for t in threading.enumerate())

    asyncio.run(go())


def test_the_wal_stays_bounded_under_writes_back_to_back_with_readers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = 1024 * 1024
    monkeypatch.setattr(checkpoint, "WAL_LIMIT", limit)

    async def go() -> None:
        db = await _open(tmp_path)
        done = asyncio.Event()
        largest = 0
        reads = 0

        async def read() -> None:
            nonlocal reads
            while not done.is_set():
                async with db.transaction() as conn:  # a point read, as requests make
                    await conn.execute(select(roles.c.seq_no).where(roles.c.name == f"r{reads % 100}"))
                reads += 1
                await asyncio.sleep(0)

        async def watch() -> None:
            nonlocal largest
            while not done.is_set():
                largest = max(largest, _wal_size(tmp_path))
                await asyncio.sleep(0.005)

        side = [asyncio.create_task(read()), asyncio.create_task(watch())]
        await _write(db, "r", 12000)  # ~48 MiB of WAL frames in all
        done.set()
        await asyncio.gather(*side)
        assert reads > 0
        assert await _count(db) == 12000
        # Past the bound the writer catches up after its next COMMIT, and the WAL starts over; when
        # a reader's snapshot is in the way it tries again a bound later.
        assert largest < 8 * limit, largest
        await db.close()

    asyncio.run(go())


def test_an_old_snapshot_holds_neither_writes_nor_reads_and_the_idle_wal_is_truncated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint, "IDLE_SECONDS", 0.2)

    async def go() -> None:
        db = await _open(tmp_path)
        await _write(db, "a", 100)
        # Another process keeps reading an old snapshot (a backup, the sqlite3 shell): checkpoints
        # cannot pass it, and must not make writes or reads wait for it.
        other = sqlite3.connect(tmp_path / "keyplane.db", isolation_level=None, check_same_thread=False)
        other.execute("BEGIN")
        assert other.execute("SELECT count(*) FROM roles").fetchone()[0] == 100
        started = time.monotonic()
        await _write(db, "b", 400)
        assert await _count(db) == 500
        await asyncio.sleep(0.5)  # idle: the TRUNCATE is tried and gives up at once
        await _write(db, "c", 20)
        assert time.monotonic() - started < 5
        assert other.execute("SELECT count(*) FROM roles").fetchone()[0] == 100
        other.execute("ROLLBACK")
        other.close()
        deadline = time.monotonic() + 5
        while _wal_size(tmp_path) > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert _wal_size(tmp_path) == 0
        await db.close()

    asyncio.run(go())


def test_everything_committed_is_in_the_database_file_after_close(tmp_path: Path) -> None:
    async def go() -> None:
        db = await _open(tmp_path)
        await _write(db, "r", 1000)
        await db.close()

    asyncio.run(go())
    (tmp_path / "keyplane.db-wal").unlink(missing_ok=True)  # nothing may be left only in the WAL
    conn = sqlite3.connect(tmp_path / "keyplane.db")
    try:
        assert conn.execute("SELECT count(*) FROM roles").fetchone()[0] == 1000
    finally:
        conn.close()
