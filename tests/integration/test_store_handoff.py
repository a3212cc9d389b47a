"""Hand-offs between the event loop and SQLite's threads (keyplane.store.database): reads served by any
reader from one queue, answers settled in batches, and a write alone committed in the call that runs it
when no other write waits, yet sharing the group commit when others do."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy import exc as sa_exc

from keyplane.store import schema
from keyplane.store.database import Database
from keyplane.store.migrations import migrate
from keyplane.store.prepared import Prepared
from tests.conftest import STORE

pytestmark = pytest.mark.skipif(STORE != "sqlite", reason="SQLite's threads")
roles = schema.roles
INSERT = Prepared(insert(roles).values(name=bindparam("name"), doc=bindparam("doc"), seq_no=1))
BUMP = Prepared(update(roles).where(roles.c.name == bindparam("name")).values(seq_no=roles.c.seq_no + 1))
BY_NAME = Prepared(select(roles.c.name, roles.c.seq_no).where(roles.c.name == bindparam("name")))


async def _open(path: Path) -> Database:
    db = Database.for_data_dir(path)
    await db.open()
    await migrate(db)
    return db


def _committed(path: Path) -> dict[str, int]:
    """What a connection outside the store sees: committed rows only."""
    other = sqlite3.connect(path / "keyplane.db")
    try:
        return {name: seq for name, seq in other.execute("SELECT name, seq_no FROM roles")}
    finally:
        other.close()


def test_many_concurrent_reads_each_get_their_own_answer(tmp_path: Path) -> None:
    async def go() -> None:
        db = await _open(tmp_path)
        try:
            for i in range(20):
                await db.execute_alone(INSERT, {"name": f"r{i}", "doc": "{}"})

            async def read(i: int) -> str:
                async with db.transaction() as conn:
                    first = (await conn.execute(BY_NAME, {"name": f"r{i % 20}"})).first()
                    both = await conn.execute_all((BY_NAME, {"name": f"r{(i + 1) % 20}"}), (BY_NAME, {"name": "none"}))
                assert first is not None and both[0].first() is not None and both[1].first() is None
                return f"{first['name']}+{both[0].rows[0]['name']}"

            answers = await asyncio.gather(*(read(i) for i in range(200)))
            assert answers == [f"r{i % 20}+r{(i + 1) % 20}" for i in range(200)]
        finally:
            await db.close()

    asyncio.run(go())


def test_a_write_alone_is_committed_and_its_notices_sent_when_it_returns(tmp_path: Path) -> None:
    async def go() -> None:
        db = await _open(tmp_path)
        seen: list[str] = []
        db.on_change(seen.append)
        try:
            async with db.transaction() as conn:
                assert (await conn.execute(BY_NAME, {"name": "a"})).first() is None
                conn.notify("role:a")
                assert (await conn.execute_alone(INSERT, {"name": "a", "doc": "{}"})).rowcount == 1
                # Committed in the statement's own call, and caches dropped before the caller goes on.
                assert _committed(tmp_path) == {"a": 1}
                assert seen == ["role:a"]
            assert seen == ["role:a"]  # not sent twice
            # A failed one changes nothing, and the store goes on.
            with pytest.raises(sa_exc.IntegrityError):
                await db.execute_alone(INSERT, {"name": "a", "doc": "{}"}, ["role:a"])
            assert seen == ["role:a"]
            assert (await db.execute_alone(BUMP, {"name": "a"})).rowcount == 1
            assert _committed(tmp_path) == {"a": 2}
        finally:
            await db.close()

    asyncio.run(go())


def test_concurrent_writes_alone_share_commits_and_fail_alone(tmp_path: Path) -> None:
    async def go() -> None:
        db = await _open(tmp_path)
        assert db._sqlite is not None
        try:
            await db.execute_alone(INSERT, {"name": "dup", "doc": "{}"})
            before = db._sqlite.generation
            acknowledged: list[bool] = []

            async def add(i: int) -> None:
                name = "dup" if i % 7 == 0 else f"r{i}"  # every seventh violates the primary key
                await db.execute_alone(INSERT, {"name": name, "doc": "{}"})
                acknowledged.append(name in _committed(tmp_path))

            results = await asyncio.gather(*(add(i) for i in range(64)), return_exceptions=True)
            failed = {i for i, r in enumerate(results) if r is not None}
            assert failed == {i for i in range(64) if i % 7 == 0}
            assert all(isinstance(results[i], sa_exc.IntegrityError) for i in failed)
            assert all(acknowledged) and len(acknowledged) == 64 - len(failed)
            assert set(_committed(tmp_path)) == {"dup"} | {f"r{i}" for i in range(64) if i % 7}
            assert db._sqlite.generation - before < 64 - len(failed)  # commits were shared
        finally:
            await db.close()

    asyncio.run(go())


def test_cancelled_writes_alone_leave_the_store_consistent(tmp_path: Path) -> None:
    """A caller cancelled while its write runs: the write is committed or not at all, its notices
    sent if it was, and the writes after it go on."""

    async def go() -> None:
        db = await _open(tmp_path)
        seen: list[str] = []
        db.on_change(seen.append)
        try:
            for round_ in range(30):
                name = f"c{round_}"
                task = asyncio.create_task(db.execute_alone(INSERT, {"name": name, "doc": "{}"}, [name]))
                others = [asyncio.create_task(db.execute_alone(BUMP, {"name": "c0"})) for _ in range(round_ % 3)]
                for _ in range(round_ % 4):
                    await asyncio.sleep(0)
                task.cancel()
                await asyncio.gather(task, *others, return_exceptions=True)
                await db.execute_alone(INSERT, {"name": f"after{round_}", "doc": "{}"})
                committed = _committed(tmp_path)
                assert f"after{round_}" in committed
                if name in committed:
                    assert name in seen  # committed: caches were dropped
            async with db.transaction() as conn:
                rows = (await conn.execute(select(roles.c.name, roles.c.seq_no))).rows
            assert {r["name"]: r["seq_no"] for r in rows} == _committed(tmp_path)
        finally:
            await db.close()

    asyncio.run(go())
