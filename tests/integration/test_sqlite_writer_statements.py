"""The SQLite writer's statements per write transaction: a transaction that begins the outer
transaction needs no savepoint of its own (ROLLBACK undoes it), so a lone write is BEGIN, its
statements and COMMIT; one that joins a group has its savepoint, so it still fails alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from keyplane.store import schema
from keyplane.store.database import Database, _dbapi
from keyplane.store.migrations import migrate
from tests.conftest import STORE
from tests.integration.test_sqlite_group_commit import _committed_names

pytestmark = pytest.mark.skipif(STORE != "sqlite", reason="SQLite's writer thread")
roles = schema.roles


async def _open(path: Path) -> tuple[Database, list[str]]:
    db = Database.for_data_dir(path)
    await db.open()
    await migrate(db)
    assert db._sqlite is not None and db._sqlite.writer is not None
    writer = db._sqlite.writer
    seen: list[str] = []
    await writer.call(lambda: _dbapi(writer.conn).set_trace_callback(seen.append))  # type: ignore[arg-type]
    return db, seen


def _control(seen: list[str]) -> list[str]:
    """The transaction-control statements among those traced."""
    return [s.split()[0] for s in seen if s.split()[0] in ("BEGIN", "SAVEPOINT", "RELEASE", "ROLLBACK", "COMMIT")]


def test_a_lone_write_is_begin_its_statements_and_commit(tmp_path: Path) -> None:
    async def go() -> None:
        db, seen = await _open(tmp_path)
        async with db.transaction() as conn:
            await conn.execute(insert(roles).values(name="a", doc="{}", seq_no=1))
            await conn.execute(insert(roles).values(name="b", doc="{}", seq_no=1))
        assert _control(seen) == ["BEGIN", "COMMIT"]
        seen.clear()
        await db.execute_alone(insert(roles).values(name="c", doc="{}", seq_no=1))
        assert _control(seen) == ["BEGIN", "COMMIT"]
        assert _committed_names(tmp_path) == {"a", "b", "c"}
        await db.close()

    asyncio.run(go())


def test_a_failed_lone_write_changes_nothing(tmp_path: Path) -> None:
    async def go() -> None:
        db, seen = await _open(tmp_path)
        with pytest.raises(RuntimeError):
            async with db.transaction() as conn:
                await conn.execute(insert(roles).values(name="a", doc="{}", seq_no=1))
                raise RuntimeError("boom")
        assert db._sqlite is not None and db._sqlite.writer is not None
        await db._sqlite.writer.call(lambda: None)  # the rollback is queued, not awaited
        assert _control(seen) == ["BEGIN", "ROLLBACK"]
        assert _committed_names(tmp_path) == set()
        async with db.transaction() as conn:
            assert (await conn.execute(select(roles.c.name))).rows == []
        await db.close()

    asyncio.run(go())


def test_grouped_writes_fail_alone_whichever_began_the_group(tmp_path: Path) -> None:
    """Each round's first writer begins the outer transaction (no savepoint) while the others queue
    behind it; whichever one fails, the others' work is committed and its own is not."""

    async def go() -> None:
        db, seen = await _open(tmp_path)
        expected: set[str] = set()
        for failing in range(4):
            gate = asyncio.Event()

            async def add(i: int, failing: int = failing, gate: asyncio.Event = gate) -> None:
                async with db.transaction() as conn:
                    await conn.execute(insert(roles).values(name=f"{failing}-{i}", doc="{}", seq_no=1))
                    if i == 0:
                        await gate.wait()  # the others queue for the writer meanwhile
                    if i == failing:
                        raise RuntimeError("boom")

            tasks = [asyncio.create_task(add(i)) for i in range(4)]
            for _ in range(20):
                await asyncio.sleep(0)
            gate.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert [isinstance(r, RuntimeError) for r in results] == [i == failing for i in range(4)]
            expected |= {f"{failing}-{i}" for i in range(4) if i != failing}
            assert _committed_names(tmp_path) == expected
        # The later writers of a group had savepoints; the first of each did not.
        assert "SAVEPOINT" in _control(seen)
        await db.close()

    asyncio.run(go())
