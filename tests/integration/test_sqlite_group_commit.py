"""Group commit on SQLite: concurrent write transactions share one COMMIT (and fsync), yet each one
succeeds or fails alone, and a transaction is acknowledged only once its work is committed."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from keyplane.errors import StoreUnavailable
from keyplane.store import database, schema
from keyplane.store.database import Database
from keyplane.store.migrations import migrate
from tests.conftest import STORE

rm = schema.role_mappings

pytestmark = pytest.mark.skipif(STORE != "sqlite", reason="SQLite's writer thread")
roles = schema.roles


async def _open(path: Path) -> Database:
    db = Database.for_data_dir(path)
    await db.open()
    await migrate(db)
    return db


async def _names(db: Database) -> set[str]:
    async with db.transaction() as conn:
        return {r["name"] for r in (await conn.execute(select(roles.c.name))).rows}


def _committed_names(path: Path) -> set[str]:
    """What another connection sees: committed rows only."""
    other = sqlite3.connect(path / "keyplane.db")
    try:
        return {r[0] for r in other.execute("SELECT name FROM roles")}
    finally:
        other.close()


def test_concurrent_writes_share_commits_and_a_failed_one_rolls_back_alone(tmp_path: Path) -> None:
    async def go() -> None:
        db = await _open(tmp_path)
        assert db._sqlite is not None
        before = db._sqlite.generation
        seen_after_ack: list[bool] = []

        async def add(i: int) -> None:
            async with db.transaction() as conn:
                await conn.execute(select(roles.c.name))  # starts on a reader
                await conn.execute(insert(roles).values(name=f"r{i}", doc="{}", seq_no=1))
                await conn.execute(insert(roles).values(name=f"r{i}-b", doc="{}", seq_no=1))
                if i % 5 == 0:
                    raise RuntimeError("boom")  # after its writes, while others wait in its group
            # Acknowledged: committed, so a connection outside the store sees it.
            seen_after_ack.append({f"r{i}", f"r{i}-b"} <= _committed_names(tmp_path))

        results = await asyncio.gather(*[add(i) for i in range(60)], return_exceptions=True)
        failed = {i for i, r in enumerate(results) if isinstance(r, BaseException)}
        assert failed == {i for i in range(60) if i % 5 == 0}
        assert all(isinstance(results[i], RuntimeError) for i in failed)
        assert all(seen_after_ack) and len(seen_after_ack) == 48
        expected = {f"r{i}{s}" for i in range(60) if i % 5 for s in ("", "-b")}
        assert await _names(db) == expected == _committed_names(tmp_path)
        # Fewer outer transactions than successful ones: commits were shared.
        assert db._sqlite.generation - before < 48
        await db.close()

    asyncio.run(go())


def test_a_failed_group_commit_acknowledges_none_of_its_transactions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = database._SqliteStore.commit
    calls = {"n": 0}

    def failing_commit(self: database._SqliteStore, conn: Connection) -> int:
        calls["n"] += 1
        if calls["n"] == 2:  # a disk error at this COMMIT: it rolls back whatever it carries
            conn.rollback()
            self.group_open = False
            raise OperationalError("COMMIT", None, sqlite3.OperationalError("disk I/O error"))
        return real(self, conn)

    async def go() -> None:
        db = await _open(tmp_path)
        monkeypatch.setattr(database._SqliteStore, "commit", failing_commit)

        async def add(i: int) -> None:
            async with db.transaction() as conn:
                await conn.execute(insert(roles).values(name=f"r{i}", doc="{}", seq_no=1))

        results: list[BaseException | None] = []
        for start in range(0, 40, 10):  # rounds of ten: a group or two each
            results += await asyncio.gather(*[add(i) for i in range(start, start + 10)], return_exceptions=True)
        ok = {f"r{i}" for i, r in enumerate(results) if r is None}
        failed = [r for r in results if r is not None]
        assert failed and all(isinstance(r, StoreUnavailable) for r in failed) and ok
        # Exactly the acknowledged writes were committed.
        assert _committed_names(tmp_path) == ok == await _names(db)
        # And the store goes on writing afterwards.
        await add(100)
        assert "r100" in _committed_names(tmp_path)
        await db.close()

    asyncio.run(go())


def test_racing_upserts_of_grouped_writes_all_land(tmp_path: Path) -> None:
    """Read-then-write transactions (an upsert, retried once on a unique violation) racing on four keys
    while the writer groups their commits: every one lands, none fails twice."""

    async def go() -> None:
        db = Database.for_data_dir(tmp_path)
        await db.open()
        try:
            await migrate(db)

            async def upsert(name: str) -> None:
                for _ in range(2):
                    try:
                        async with db.transaction() as conn:
                            found = (await conn.execute(select(rm.c.name).where(rm.c.name == name))).first()
                            if found is None:
                                await conn.execute(insert(rm).values(name=name, doc="{}", seq_no=1))
                            else:
                                await conn.execute(update(rm).where(rm.c.name == name).values(seq_no=rm.c.seq_no + 1))
                        return
                    except IntegrityError:
                        continue
                raise AssertionError(f"{name}: a unique violation on every attempt")

            await asyncio.gather(*(upsert(f"m{n % 4}") for n in range(64)))
            async with db.transaction() as conn:
                rows = (await conn.execute(select(rm.c.name, rm.c.seq_no).order_by(rm.c.name))).rows
            assert sum(row["seq_no"] for row in rows) == 64 and len(rows) == 4
        finally:
            await db.close()

    asyncio.run(go())
