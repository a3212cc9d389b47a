"""The node's pool of PostgreSQL connections (keyplane.store.postgres ``_PgPool``), on a real server.

At most ``POOL_SIZE`` connections, opened when needed and kept while idle: a transaction finding
every one held waits for the next given back (in arrival order), at most ``ACQUIRE_SECONDS``, then
answers 503; a connection closed, terminated or failing is dropped and its place freed, also when
the task giving it back is cancelled; one given back inside a transaction block is rolled back;
close() closes them all. Checked by the places the pool counts, which must all come back.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import bindparam, insert, select, text

from keyplane.errors import StoreUnavailable
from keyplane.store import postgres, schema
from keyplane.store.database import Database
from keyplane.store.prepared import Prepared
from tests import pg
from tests.conftest import STORE
from tests.integration.stores import open_migrated

pytestmark = pytest.mark.skipif(STORE != "postgres", reason="the connection pool is PostgreSQL's")

t = schema.roles
INSERT = Prepared(insert(t).values(name=bindparam("name"), doc=bindparam("doc"), seq_no=1))
SEQ_NO = Prepared(select(t.c.seq_no).where(t.c.name == bindparam("name")))


@pytest.fixture
def small_pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Three connections, a short wait: exhaustion within a test's time."""
    monkeypatch.setattr(postgres, "POOL_SIZE", 3)
    monkeypatch.setattr(postgres, "ACQUIRE_SECONDS", 0.3)
    yield


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def _pool(db: Database) -> postgres._PgPool:
    assert db._pg_pool is not None
    return db._pg_pool


def _assert_settled(pool: postgres._PgPool) -> None:
    """Nothing held or awaited: every place taken is an idle open connection."""
    assert not pool._waiters
    assert pool._size == len(pool._idle) == len(pool._open) <= postgres.POOL_SIZE
    assert all(not conn.is_closed() for conn in pool._idle)


async def _pid(conn: Any) -> int:
    return int(await conn.fetchval("SELECT pg_backend_pid()"))


def test_a_transaction_waits_for_the_next_connection_given_back(database_url: str, small_pool: None) -> None:
    async def go() -> None:
        db = await open_migrated(database_url)
        pool = _pool(db)
        try:
            held = [await pool.acquire() for _ in range(postgres.POOL_SIZE)]
            assert pool._size == postgres.POOL_SIZE and not pool._idle
            first = asyncio.create_task(pool.acquire())
            second = asyncio.create_task(pool.acquire())
            await asyncio.sleep(0.05)
            assert not first.done() and not second.done()
            await pool.release(held[1])
            assert await first is held[1]  # straight to the first waiter, in arrival order
            assert not second.done()
            await pool.release(held[0])
            assert await second is held[0]
            for conn in (held[2], held[1], held[0]):
                await pool.release(conn)
            _assert_settled(pool)
            assert pool._size == postgres.POOL_SIZE  # nothing opened beyond the size
        finally:
            await db.close()

    run(go())


def test_a_wait_longer_than_acquire_seconds_answers_503(database_url: str, small_pool: None) -> None:
    async def go() -> None:
        db = await open_migrated(database_url)
        pool = _pool(db)
        try:
            await db.execute_alone(INSERT, {"name": "a", "doc": "{}"})
            held = [await pool.acquire() for _ in range(postgres.POOL_SIZE)]
            with pytest.raises(TimeoutError):
                await pool.acquire()
            with pytest.raises(StoreUnavailable):
                async with db.transaction() as conn:
                    await conn.execute(SEQ_NO, {"name": "a"})
            assert not pool._waiters  # the waits that ended left nothing behind
            for conn in held:
                await pool.release(conn)
            async with db.transaction() as conn:
                assert (await conn.execute(SEQ_NO, {"name": "a"})).scalar() == 1
            _assert_settled(pool)
        finally:
            await db.close()

    run(go())


def test_a_cancelled_wait_gives_what_it_was_handed_to_the_next(database_url: str, small_pool: None) -> None:
    """A waiter cancelled in the same turn as it is handed a connection passes it on: none is lost."""

    async def go() -> None:
        db = await open_migrated(database_url)
        pool = _pool(db)
        try:
            held = [await pool.acquire() for _ in range(postgres.POOL_SIZE)]
            first = asyncio.create_task(pool.acquire())
            second = asyncio.create_task(pool.acquire())
            await asyncio.sleep(0.05)
            await pool.release(held[0])  # handed to the first waiter, which has not run yet
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            assert await second is held[0]
            held[0].terminate()  # its place, too, goes to the next waiter
            third = asyncio.create_task(pool.acquire())
            await asyncio.sleep(0.05)
            await pool.release(held[0])
            replacement = await third
            assert replacement is not held[0] and not replacement.is_closed()
            for conn in (held[1], held[2], replacement):
                await pool.release(conn)
            _assert_settled(pool)
        finally:
            await db.close()

    run(go())


def test_a_terminated_connection_is_replaced(database_url: str, small_pool: None) -> None:
    async def go() -> None:
        db = await open_migrated(database_url)
        admin = await open_migrated(database_url)
        pool = _pool(db)
        try:
            # Ended by the server while idle: the next transaction gets a new one.
            conn = await pool.acquire()
            pid = await _pid(conn)
            await pool.release(conn)
            async with admin.transaction() as other:
                await other.execute(text(f"SELECT pg_terminate_backend({pid})"))
            await asyncio.sleep(0.1)
            again = await pool.acquire()
            assert again is not conn and await _pid(again) != pid
            # Terminated while held (a disconnect, a cancelled statement): dropped when given back.
            again.terminate()
            await pool.release(again)
            assert pool._size == 0
            held = [await pool.acquire() for _ in range(postgres.POOL_SIZE)]
            assert len({await _pid(c) for c in held}) == postgres.POOL_SIZE
            for c in held:
                await pool.release(c)
            _assert_settled(pool)
        finally:
            await db.close()
            await admin.close()

    run(go())


def test_a_connection_given_back_in_a_transaction_is_rolled_back(database_url: str, small_pool: None) -> None:
    async def go() -> None:
        db = await open_migrated(database_url)
        pool = _pool(db)
        try:
            conn = await pool.acquire()
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO roles (name, doc, seq_no) VALUES ('x', '{}', 1)")
            await pool.release(conn)
            assert not conn.is_closed() and not conn.is_in_transaction()
            again = await pool.acquire()
            assert again is conn  # kept, the most recently used first
            assert await again.fetchval("SELECT count(*) FROM roles WHERE name = 'x'") == 0
            await pool.release(again)
            _assert_settled(pool)
        finally:
            await db.close()

    run(go())


def test_a_release_cancelled_while_it_waits_frees_the_place(database_url: str, small_pool: None) -> None:
    """A statement cancelled mid-flight leaves its connection busy until the server acknowledges:
    giving it back waits for that; a task cancelled during that wait loses no place."""

    async def go() -> None:
        db = await open_migrated(database_url)
        pool = _pool(db)
        try:
            conn = await pool.acquire()
            await conn.execute("BEGIN")
            sleeping = asyncio.create_task(conn.execute("SELECT pg_sleep(5)"))
            await asyncio.sleep(0.1)
            sleeping.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sleeping
            releasing = asyncio.create_task(pool.release(conn))
            await asyncio.sleep(0)
            releasing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await releasing
            assert conn.is_closed()  # whether it rolled back is unknown: not reused
            assert pool._size == 0
            # Not cancelled: the cancellation ends, the block is rolled back, the connection kept.
            conn = await pool.acquire()
            await conn.execute("BEGIN")
            sleeping = asyncio.create_task(conn.execute("SELECT pg_sleep(5)"))
            await asyncio.sleep(0.1)
            sleeping.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sleeping
            await pool.release(conn)
            assert not conn.is_closed() and not conn.is_in_transaction()
            _assert_settled(pool)
        finally:
            await db.close()

    run(go())


def test_close_closes_every_connection(database_url: str, small_pool: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "CLOSE_SECONDS", 0.5)

    async def go() -> None:
        db = await open_migrated(database_url)
        pool = _pool(db)
        try:
            held = [await pool.acquire() for _ in range(postgres.POOL_SIZE)]
            waiter = asyncio.create_task(pool.acquire())
            await asyncio.sleep(0.05)
            await pool.release(held[0])
            assert await waiter is held[0]
            await pool.release(held[0])
            closing = asyncio.create_task(pool.close())
            await asyncio.sleep(0.05)
            assert held[0].is_closed()  # idle: closed at once
            with pytest.raises(asyncpg.InterfaceError):
                await pool.acquire()
            await pool.release(held[1])  # given back while closing: closed
            assert held[1].is_closed()
            await closing  # held[2] never comes back: terminated after CLOSE_SECONDS
            assert all(conn.is_closed() for conn in held)
            assert pool._size == 0 and not pool._open
            await pool.release(held[2])  # given back late: nothing more to free
            assert pool._size == 0
        finally:
            await db.close()

    run(go())


def test_an_unreachable_database_frees_the_place(database_url: str, small_pool: None) -> None:
    """Connections refused (an outage): 503, no place kept by the failed attempts, and the node
    recovers once the database accepts connections again."""

    async def go() -> None:
        db = await open_migrated(database_url)
        pool = _pool(db)
        try:
            await db.execute_alone(INSERT, {"name": "a", "doc": "{}"})
            await asyncio.to_thread(pg.set_accepting, database_url, False)
            try:
                for _ in range(postgres.POOL_SIZE + 2):
                    with pytest.raises(StoreUnavailable):
                        async with db.transaction() as conn:
                            await conn.execute(SEQ_NO, {"name": "a"})
                assert pool._size == 0
            finally:
                await asyncio.to_thread(pg.set_accepting, database_url, True)
            async with db.transaction() as conn:
                assert (await conn.execute(SEQ_NO, {"name": "a"})).scalar() == 1
            _assert_settled(pool)
        finally:
            await db.close()

    run(go())


def test_many_transactions_lose_no_place(database_url: str, small_pool: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two hundred transactions on three connections, some cancelled, some failing, some meeting a
    terminated connection: afterwards every place is an idle open connection."""
    monkeypatch.setattr(postgres, "ACQUIRE_SECONDS", 30.0)
    rng = random.Random(11)

    async def go() -> None:
        db = await open_migrated(database_url)
        pool = _pool(db)
        try:
            await db.execute_alone(INSERT, {"name": "a", "doc": "{}"})

            async def one(i: int) -> None:
                async with db.transaction() as conn:
                    await conn.execute(SEQ_NO, {"name": "a"})
                    if i % 7 == 0:
                        await conn.execute(INSERT, {"name": f"n{i}", "doc": "{}"})  # in a block
                    await asyncio.sleep(rng.random() / 100)
                    if i % 11 == 0:
                        raise ValueError("rolled back")
                    if i % 13 == 0:
                        assert isinstance(conn, postgres._PgConn)
                        postgres._drop(conn._driver)

            tasks = [asyncio.create_task(one(i)) for i in range(200)]
            await asyncio.sleep(0.02)
            for task in tasks[::9]:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            expected = (ValueError, asyncio.CancelledError, StoreUnavailable)
            assert all(r is None or isinstance(r, expected) for r in results)
            _assert_settled(pool)
            # Every place usable at once.
            held = [await pool.acquire() for _ in range(postgres.POOL_SIZE)]
            for conn in held:
                await pool.release(conn)
            _assert_settled(pool)
        finally:
            await db.close()

    run(go())
