"""In-process cost of one store call on SQLite, without HTTP: where a point read's time goes.

Each line times the same primary-key read of an API key row a different way (wall time, and the
CPU of all the process's threads), from the repository method down to raw sqlite3 on the same
file, and one durable insert (synchronous=full) per transaction; then inserts from many concurrent
tasks, which share the writer.

With --database-url (PostgreSQL) the same calls run on that database (emptied first), and the
write paths of issue 11 besides: a key's compare-and-set update with its change notice (as updating
a key's metadata does), the same in a block that reads first (a connector's configuration), and
one statement alone (creating a key); each beside raw asyncpg doing the same round trips (floor).

Concurrent lines run the calls from 16 tasks at once, as 16 connections of cpu.py do: CPU per call
(all threads). To see what the server sees, run it pinned to one core, on uvloop:
`taskset -c 0 python bench/store_calls.py --uvloop`.

Run: python bench/store_calls.py [--n 3000] [--dir /path/on/the/disk/to/test] [--uvloop]
     python bench/store_calls.py --database-url postgresql://postgres@127.0.0.1:5432/scratch
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, select

from keyplane.apikeys.backends.sql import SqlApiKeyRepository
from keyplane.apikeys.core import ApiKey, Creator
from keyplane.store import schema
from keyplane.store.database import Database
from keyplane.store.migrations import migrate
from keyplane.store.prepared import Prepared

t = schema.api_keys


def _key(i: int) -> ApiKey:
    creator = Creator("elastic", None, None, {}, "reserved", "reserved")
    return ApiKey(f"key-{i}", "bench", "rest", 1, None, False, None, "hash", creator, metadata={})


async def _timed(label: str, n: int, call: Callable[[int], Awaitable[Any]]) -> float:
    for i in range(min(n, 200)):  # warm caches
        await call(i)
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        await call(i)
    per = (time.perf_counter() - start) / n * 1e6
    # CPU of every thread of the process (the reader and writer threads included).
    print(f"{label:<58} {per:8.1f} µs  (CPU {(time.process_time() - cpu) / n * 1e6:6.1f} µs)")
    return per


async def _concurrent(label: str, n: int, call: Callable[[int], Awaitable[Any]], tasks: int = 16) -> None:
    """``n`` calls from ``tasks`` tasks at once: CPU per call (every thread) and calls per second."""
    per_task = max(1, n // tasks)

    async def run() -> None:
        async def one(offset: int) -> None:
            for i in range(per_task):
                await call((offset + i * tasks) % n)

        await asyncio.gather(*(one(k) for k in range(tasks)))

    await run()  # warm
    start, cpu = time.perf_counter(), time.process_time()
    await run()
    calls = per_task * tasks
    wall = time.perf_counter() - start
    print(f"{label:<58} {calls / wall:8.0f} /s  (CPU {(time.process_time() - cpu) / calls * 1e6:6.1f} µs)")


async def postgres(n: int, url: str) -> None:
    """The calls on PostgreSQL, and raw asyncpg on a pool of its own doing the same round trips."""
    import asyncpg

    db = Database(url)
    await db.open()
    try:
        await migrate(db)
        async with db.transaction() as conn:
            await conn.execute(t.delete())
        repo = SqlApiKeyRepository(db)
        for i in range(100):
            await repo.insert(_key(i))
        ids = [f"key-{i % 100}" for i in range(n)]
        by_id = Prepared(select(t).where(t.c.id == bindparam("id")))
        bump = Prepared(
            t.update()
            .where(t.c.id == bindparam("k_id"), t.c.seq_no == bindparam("k_seq_no"))
            .values(seq_no=t.c.seq_no + 1)
        )
        seq = {f"key-{i}": 1 for i in range(100)}

        async def repo_get(i: int) -> Any:
            return await repo.get(ids[i])

        async def update_one(i: int) -> Any:
            # As an update of one key by id: a compare-and-set and its notice, COMMIT with it.
            key_id = ids[i]
            async with db.transaction() as conn:
                changed = (await conn.execute(bump, {"k_id": key_id, "k_seq_no": seq[key_id]})).rowcount
                if changed:
                    conn.notify("api_key:" + key_id)
            seq[key_id] += changed

        async def update_alone(i: int) -> Any:
            # The same as one statement carrying its notice (Database.execute_alone with notices).
            key_id = ids[i]
            params = {"k_id": key_id, "k_seq_no": seq[key_id]}
            seq[key_id] += (await db.execute_alone(bump, params, ["api_key:" + key_id])).rowcount

        async def read_then_update(i: int) -> Any:
            # As a connector's configuration: a read outside the block's writes, then the write.
            key_id = ids[i]
            async with db.transaction() as conn:
                row = (await conn.execute(by_id, {"id": key_id})).first()
                assert row is not None
                await conn.execute(bump, {"k_id": key_id, "k_seq_no": row["seq_no"]})
                conn.notify("api_key:" + key_id)
            seq[key_id] = row["seq_no"] + 1

        counter = iter(range(1_000_000, 10_000_000))

        async def insert_one(_i: int) -> Any:
            await repo.insert(_key(next(counter)))

        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        engine = db._aio_engine  # noqa: SLF001 - the statements' compiled forms, as the store runs them
        assert engine is not None
        get_sql, bump_sql = by_id.compiled(engine.dialect), bump.compiled(engine.dialect)

        async def raw_get(i: int) -> Any:
            async with pool.acquire() as driver:
                return await driver.fetchrow(get_sql.sql, ids[i])

        async def raw_update(i: int) -> Any:
            key_id = ids[i]
            async with pool.acquire() as driver:
                row = await driver.fetchrow(get_sql.sql, key_id)
                await driver.execute("BEGIN")
                await driver.execute(bump_sql.sql, *bump_sql.args({"k_id": key_id, "k_seq_no": row["seq_no"]}))
                await driver.execute(f"SELECT pg_notify('keyplane_changes', 'api_key:{key_id}'); COMMIT")
            seq[key_id] = row["seq_no"] + 1

        print(f"PostgreSQL, {n} calls each")
        await _timed("repo.get (prepared read on the pool)", n, repo_get)
        await _timed("raw asyncpg: pool + fetchrow (floor)", n, raw_get)
        writes = max(200, n // 3)
        await _timed("update one key: compare-and-set + notice in a block", writes, update_one)
        await _timed("update one key: the same alone, the notice in the statement", writes, update_alone)
        await _timed("read, then compare-and-set + notice in a block", writes, read_then_update)
        await _timed("raw asyncpg: read, BEGIN, update, notice+COMMIT (floor)", writes, raw_update)
        await _timed("repo.insert (one statement alone)", writes, insert_one)
        await pool.close()
    finally:
        await db.close()


async def main(n: int, parent: str | None, synchronous: str) -> None:
    with tempfile.TemporaryDirectory(dir=parent) as tmp:
        db = Database.for_data_dir(Path(tmp), synchronous=synchronous)
        await db.open()
        try:
            await migrate(db)
            repo = SqlApiKeyRepository(db)
            for i in range(100):
                await repo.insert(_key(i))
            ids = [f"key-{i % 100}" for i in range(n)]
            built = select(t).where(t.c.id == bindparam("id"))
            prepared = Prepared(built)

            async def repo_get(i: int) -> Any:
                return await repo.get(ids[i])

            async def tx_fresh(i: int) -> Any:
                async with db.transaction() as conn:
                    return (await conn.execute(select(t).where(t.c.id == ids[i]))).first()

            async def tx_built(i: int) -> Any:
                async with db.transaction() as conn:
                    return (await conn.execute(built, {"id": ids[i]})).first()

            async def tx_prepared(i: int) -> Any:
                async with db.transaction() as conn:
                    return (await conn.execute(prepared, {"id": ids[i]})).first()

            print(f"SQLite, synchronous={synchronous}, {n} calls each")
            await _timed("repo.get (statement built per call)", n, repo_get)
            await _timed("transaction + select built per call", n, tx_fresh)
            await _timed("transaction + select built once", n, tx_built)
            await _timed("transaction + prepared statement (on sqlite3)", n, tx_prepared)

            raw = sqlite3.connect(str(Path(tmp) / "keyplane.db"), isolation_level=None)

            async def raw_sqlite(i: int) -> Any:
                return raw.execute("SELECT * FROM api_keys WHERE id = ?", (ids[i],)).fetchone()

            await _timed("raw sqlite3 on the loop (floor)", n, raw_sqlite)
            raw.close()
            await _concurrent("repo.get, 16 tasks", n, repo_get)
            await _concurrent("transaction + prepared statement, 16 tasks", n, tx_prepared)
            bump = Prepared(t.update().where(t.c.id == bindparam("k_id")).values(seq_no=t.c.seq_no + 1))

            async def update_alone(i: int) -> Any:
                # As an update of one key's metadata: its write alone, with its change notice.
                return await db.execute_alone(bump, {"k_id": ids[i]}, ["api_key:" + ids[i]])

            async def read_then_update(i: int) -> Any:
                # As a connector's configuration: a read, then its write alone.
                async with db.transaction() as conn:
                    await conn.execute(prepared, {"id": ids[i]})
                    conn.notify("api_key:" + ids[i])
                    return await conn.execute_alone(bump, {"k_id": ids[i]})

            writes = max(200, n // 5)
            await _timed("update alone + notice, 1 task", writes, update_alone)
            await _concurrent("update alone + notice, 16 tasks", writes, update_alone)
            await _concurrent("read, then update alone, 16 tasks", writes, read_then_update)

            counter = iter(range(1_000_000, 10_000_000))

            async def insert_one(_i: int) -> Any:
                await repo.insert(_key(next(counter)))

            await _timed("repo.insert, 1 task (one durable commit each)", writes, insert_one)
            for tasks in (8, 32):
                per_task = max(20, writes // tasks)
                start = time.perf_counter()

                async def worker(per_task: int = per_task) -> None:
                    for _ in range(per_task):
                        await repo.insert(_key(next(counter)))

                await asyncio.gather(*(worker() for _ in range(tasks)))
                rate = tasks * per_task / (time.perf_counter() - start)
                print(f"{'repo.insert, ' + str(tasks) + ' tasks':<58} {rate:8.0f} /s")
        finally:
            await db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--dir", default=None)
    parser.add_argument("--synchronous", default="full", choices=["full", "normal"])
    parser.add_argument("--database-url", default=None, help="a scratch PostgreSQL database (it is emptied)")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop, as the server does")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.install()
    if args.database_url:
        sys.exit(asyncio.run(postgres(args.n, args.database_url)))
    sys.exit(asyncio.run(main(args.n, args.dir, args.synchronous)))
