"""In-process cost of one store call on SQLite, without HTTP: where a point read's time goes.

Each line times the same primary-key read of an API key row a different way (wall time, and the
CPU of all the process's threads), from the repository method down to raw sqlite3 on the same
file, and one durable insert (synchronous=full) per transaction; then inserts from many concurrent
tasks, which share the writer.

Run: python bench/store_calls.py [--n 3000] [--dir /path/on/the/disk/to/test]
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

            counter = iter(range(1_000_000, 10_000_000))

            async def insert_one(_i: int) -> Any:
                await repo.insert(_key(next(counter)))

            writes = max(200, n // 5)
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
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.n, args.dir, args.synchronous)))
