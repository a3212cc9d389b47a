"""Does one kind of work stall the others? Three measures against one server (SQLite, pinned to
CPU 0; the load runs on CPU 1, 32 keep-alive connections unless said):

1. mixed load: cached ApiKey `_authenticate` alone, then with 10% API key creations;
2. a write lock held by another process (as the `sqlite3` shell or a backup would): cached
   authentication, a read (`GET /_security/user/ann`) and creations, before and while the lock is held;
3. 24 connections sending unauthenticated gzip bombs (~100 KB that inflate to 100 MB) beside one
   authenticated client.
4. (``--store-work``, SQLite or ``--database-url`` PostgreSQL) the worst latency of cheap requests
   (cached ApiKey `_authenticate`, a point read `GET /_security/user/ann`, a key creation; 4
   connections) while the store does big work for someone else: a terms aggregation over
   ``--keys`` keys, a bulk update of 10,000 keys, the retention sweep of ``--keys`` expired keys.
   The keys are seeded straight into the store (as bench/scale.py does).
5. (``--writer-trace``, SQLite, in process) where a write waits beside the same sweep and bulk
   updates: the time of every COMMIT on the writer thread, of every batch, of every WAL checkpoint
   and its result, the WAL's size, and the latency of creations and point reads made meanwhile; with
   the checkpoints on their own thread (as served), inside the writer's COMMITs (SQLite's automatic
   checkpoint, as before) and none at all (fsyncs alone).

Run: python bench/stalls.py [--seconds 8]
     python bench/stalls.py --store-work [--keys 243000] [--database-url postgresql://...]
     python bench/stalls.py --writer-trace [--keys 243000] [--checkpoints thread,writer,none]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import itertools
import random
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).parent))
from common import PASSWORD, free_port, start_keyplane  # noqa: E402
from load import Result, pct, pin, request, run  # noqa: E402

from keyplane import ids  # noqa: E402
from keyplane.apikeys import core, hashing  # noqa: E402
from keyplane.apikeys.backends import sql as key_sql  # noqa: E402
from keyplane.apikeys.backends.base import KeyFilter  # noqa: E402
from keyplane.apikeys.backends.sql import SqlApiKeyRepository, _row  # noqa: E402
from keyplane.apikeys.core import ApiKey, Creator  # noqa: E402
from keyplane.security import roles  # noqa: E402
from keyplane.store import checkpoint as checkpoints  # noqa: E402
from keyplane.store import schema  # noqa: E402
from keyplane.store.database import Database  # noqa: E402
from keyplane.store.migrations import migrate  # noqa: E402

BASIC = "Basic " + base64.b64encode(f"elastic:{PASSWORD}".encode()).decode()


def latency(res: Result, kind: str) -> str:
    lat = res.latencies.get(kind, [])
    if not lat:
        return "none answered"
    return (
        f"{res.rate(kind):,.0f}/s, p50 {pct(lat, 50) * 1000:.1f} ms, p99 {pct(lat, 99) * 1000:.1f} ms, "
        f"max {max(lat) * 1000:.0f} ms, statuses {res.statuses[kind]}"
    )


DAY = 86_400_000
BULK_KEYS = 10_000  # keys owned by elastic, for the bulk update
SWEEP_WARMUP = 3.0  # seconds after the server answers before the sweep's window opens
TERMS = b'{"size":0,"aggs":{"users":{"terms":{"field":"username"}},"types":{"terms":{"field":"type"}}}}'


def _database(data_dir: Path, url: str | None) -> Database:
    return Database(url) if url else Database.for_data_dir(data_dir)


async def seed_keys(data_dir: Path, url: str | None, count: int) -> None:
    """``count`` live keys (the first BULK_KEYS owned by elastic), written straight to the store."""
    db = _database(data_dir, url)
    await db.open()
    await migrate(db)
    async with db.transaction() as conn:
        await conn.execute(schema.api_keys.delete())
    now = int(time.time() * 1000)
    rng = random.Random(11)
    stored_hash = hashing.hash_secret(ids.new_secret())
    templates = {}
    for elastic in (True, False):
        creator = Creator(
            "elastic" if elastic else "user",
            None,
            None,
            {},
            "reserved" if elastic else "default_native",
            "reserved" if elastic else "native",
        )
        key = ApiKey(
            id="",
            name="",
            type=core.REST,
            creation=now,
            expiration=None,
            invalidated=False,
            invalidation=None,
            hash=stored_hash,
            creator=creator,
            limited_by=[roles.RESERVED_ROLES["superuser"]] if elastic else [],
        )
        templates[elastic] = _row(key)
    batch: list[dict[str, Any]] = []
    for i in range(count):
        elastic = i < BULK_KEYS
        row = dict(templates[elastic])
        row.update(id=f"s{i:08d}", name=f"seed-{i}", creation=now - rng.randrange(365 * DAY))
        if not elastic:
            row.update(username=f"user{rng.randrange(1000):03d}", type="cross_cluster" if i % 10 == 0 else "rest")
        batch.append(row)
        if len(batch) == 20_000 or i == count - 1:
            async with db.transaction() as conn:
                await conn.execute(schema.api_keys.insert(), batch)
            batch = []
    await db.close()


async def expire_seeded(data_dir: Path, url: str | None) -> None:
    """Make every seeded key expired long before the retention period (7 days), for the next sweep."""
    db = _database(data_dir, url)
    await db.open()
    old = int(time.time() * 1000) - 30 * DAY
    async with db.transaction() as conn:
        t = schema.api_keys
        await conn.execute(t.update().where(t.c.name.like("seed-%")).values(expiration=old))
    await db.close()


def checkpoint(data_dir: Path, url: str | None) -> None:
    """Fold the seeding's WAL into the SQLite file, so the server does not do it during a measure."""
    if url is None:
        conn = sqlite3.connect(data_dir / "keyplane.db")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()


def seeded_left(data_dir: Path, url: str | None) -> Callable[[], int]:
    """A counter of seeded keys still stored, read from outside the server (a second SQLite reader)."""
    if url is None:
        conn = sqlite3.connect(f"file:{data_dir / 'keyplane.db'}?mode=ro", uri=True, check_same_thread=False)
        return lambda: int(conn.execute("SELECT count(*) FROM api_keys WHERE name LIKE 'seed-%'").fetchone()[0])
    import asyncpg

    loop = asyncio.new_event_loop()
    pg = loop.run_until_complete(asyncpg.connect(url))
    return lambda: int(loop.run_until_complete(pg.fetchval("SELECT count(*) FROM api_keys WHERE name LIKE 'seed-%'")))


class Background(threading.Thread):
    """Repeats ``work`` (after ``delay`` seconds) until stopped; records how long each run took."""

    def __init__(self, work: Callable[[int], None], delay: float = 1.0, once: bool = False) -> None:
        super().__init__(daemon=True)
        self.work, self.delay, self.once = work, delay, once
        self.took: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        if self.stop.wait(self.delay):
            return
        n = 0
        while not self.stop.is_set():
            t0 = time.perf_counter()
            self.work(n)
            self.took.append(time.perf_counter() - t0)
            n += 1
            if self.once:
                return


def cheap_requests(base: str, name: str) -> tuple[bytes, bytes, bytes]:
    """A key and the user ann on the server at ``base``, and three cheap requests as raw bytes:
    cached authentication with that key, a creation of a key named ``name``, a read of ann."""
    elastic = ("elastic", PASSWORD)
    key = httpx.post(base + "/_security/api_key", json={"name": "bench"}, auth=elastic).json()
    httpx.put(base + "/_security/user/ann", json={"password": "ann-password", "roles": []}, auth=elastic)
    auth = request("GET", "/_security/_authenticate", {"Authorization": f"ApiKey {key['encoded']}"})
    json_basic = {"Authorization": BASIC, "Content-Type": "application/json"}
    create = request("POST", "/_security/api_key", json_basic, b'{"name":"%s"}' % name.encode())
    read = request("GET", "/_security/user/ann", {"Authorization": BASIC})
    return auth, create, read


def cheap_worst(res: Result) -> str:
    parts = []
    for kind in ("auth", "read", "create"):
        lat = res.latencies.get(kind, [])
        if lat:
            parts.append(
                f"{kind} p50 {pct(lat, 50) * 1000:.1f} / p99 {pct(lat, 99) * 1000:.1f} / "
                f"max {max(lat) * 1000:.0f} ms {dict(sorted(res.statuses[kind].items()))}"
            )
    return "; ".join(parts)


def cheap_beside_requests(
    args: argparse.Namespace, port: int, cheap: Callable[[int, int], tuple[str, bytes]], works: set[str]
) -> None:
    """Cheap requests alone, beside terms aggregations and beside bulk updates (those in ``works``)."""
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=("elastic", PASSWORD), timeout=120)
    try:
        if "alone" in works:
            res = uvloop.run(run("127.0.0.1", port, 4, args.seconds, cheap))
            print(f"- alone: {cheap_worst(res)}")

        def aggregate(_n: int) -> None:
            headers = {"Content-Type": "application/json"}
            client.post("/_security/_query/api_key", content=TERMS, headers=headers).raise_for_status()

        if "terms" in works:
            bg = Background(aggregate, delay=0.5)
            bg.start()
            res = uvloop.run(run("127.0.0.1", port, 4, args.seconds, cheap))
            bg.stop.set()
            bg.join()
            print(f"- terms aggregations over {args.keys:,} keys back to back (each {pct(bg.took, 50) * 1000:.0f} ms):")
            print(f"  {cheap_worst(res)}")

        elastic_ids = [f"s{i:08d}" for i in range(BULK_KEYS)]

        def bulk_update(n: int) -> None:
            body = {"ids": elastic_ids, "metadata": {"round": n}}
            answer = client.post("/_security/api_key/_bulk_update", json=body)
            answer.raise_for_status()
            assert len(answer.json()["updated"]) == BULK_KEYS, answer.text[:200]

        if "bulk" in works:
            bg = Background(bulk_update, delay=1.0)
            bg.start()
            res = uvloop.run(run("127.0.0.1", port, 4, args.seconds, cheap))
            bg.stop.set()
            bg.join()
            took = ", ".join(f"{t:.1f}" for t in bg.took)
            print(f"- bulk updates of {BULK_KEYS:,} keys back to back (each {took} s):\n  {cheap_worst(res)}")
    finally:
        client.close()


def store_work(args: argparse.Namespace) -> None:
    url = args.database_url
    store = "PostgreSQL" if url else "SQLite"
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        t0 = time.perf_counter()
        asyncio.run(seed_keys(data_dir, url, args.keys))
        checkpoint(data_dir, url)
        print(
            f"## 4. cheap requests beside big store work ({store}, {args.keys:,} keys seeded in "
            f"{time.perf_counter() - t0:.0f} s; 4 connections: 1 creates keys, 1 reads a user, 2 authenticate)"
        )
        env = {"KEYPLANE_DATABASE_URL": url} if url else {}

        def start() -> tuple[Any, int, Callable[[int, int], tuple[str, bytes]]]:
            port = free_port()
            server = start_keyplane(data_dir, port, extra_env=env)
            auth, create, read = cheap_requests(f"http://127.0.0.1:{port}", "cheap")

            def cheap(c: int, _n: int) -> tuple[str, bytes]:
                return ("create", create) if c == 0 else ("read", read) if c == 1 else ("auth", auth)

            return server, port, cheap

        works = set(args.works.split(","))
        if works & {"alone", "terms", "bulk"}:
            server, port, cheap = start()
            time.sleep(6)  # past the start-up retention sweep (nothing to remove yet)
            try:
                cheap_beside_requests(args, port, cheap, works)
            finally:
                server.terminate()
                server.wait()
        if "sweep" not in works:
            return

        asyncio.run(expire_seeded(data_dir, url))
        checkpoint(data_dir, url)
        left = seeded_left(data_dir, url)
        server, port, cheap = start()  # the sweep starts 5 s after the server
        began = [time.perf_counter()]
        ended: list[float] = []

        def watch(_n: int) -> None:
            if left() == 0:
                ended.append(time.perf_counter())
                watcher.stop.set()
            time.sleep(0.05)

        watcher = Background(watch, delay=0.0)
        watcher.start()
        try:
            # The window opens 3 s after the server answers, before the sweep begins (5 s after it
            # starts): a new server's first requests (lazy imports, first statements) are not the sweep's.
            res = uvloop.run(run("127.0.0.1", port, 4, args.sweep_seconds, cheap, warmup=SWEEP_WARMUP))
        finally:
            watcher.stop.set()
            watcher.join()
            server.terminate()
            server.wait()
        swept = f"done {ended[0] - began[0]:.1f} s after start" if ended else "NOT finished in the window"
        window = f"window {args.sweep_seconds:.0f} s from {SWEEP_WARMUP:.0f} s after the server answered"
        print(f"- retention sweep of {args.keys:,} expired keys (starts ~5 s after the server; {swept}; {window}):")
        print(f"  {cheap_worst(res)}")
        print(f"  slowest creations (s after the window opened: ms): {slowest(res.latencies.get('create', []))}")


def slowest(latencies: list[float], count: int = 6) -> str:
    """The slowest of one connection's requests, each with when it ended (its connection sends one
    request after another, so the latencies before it add up to when it began)."""
    ends = list(itertools.accumulate(latencies))
    worst = sorted(range(len(latencies)), key=latencies.__getitem__)[-count:]
    return ", ".join(f"{ends[i]:.1f}: {latencies[i] * 1000:.0f}" for i in sorted(worst))


def ms(values: list[float], over: float | None = None) -> str:
    if not values:
        return "none"
    # How many took longer than ``over`` seconds: a single maximum on a shared machine may be its noise.
    many = f" ({sum(v > over for v in values)} over {over * 1000:.0f} ms)" if over is not None else ""
    return (
        f"{len(values):,}: p50 {pct(values, 50) * 1000:.1f} / p99 {pct(values, 99) * 1000:.1f} / "
        f"max {max(values) * 1000:.0f} ms{many}"
    )


class Trace:
    """What the writer thread, the checkpointer and the cheap requests did during one piece of work."""

    def __init__(self) -> None:
        self.commits: list[float] = []
        self.batches: list[float] = []
        self.checkpoints: list[checkpoints.Run] = []
        self.creates: list[float] = []
        self.reads: list[float] = []
        self.lag = 0.0
        self.lags = 0  # the event loop's ticks late by more than 50 ms (the machine, not the store)
        self.wal_max = 0

    def report(self, what: str, took: float) -> str:
        passive = [r for r in self.checkpoints if r.mode == "PASSIVE" and r.by == "thread"]
        frames = max((r.wal_frames for r in passive), default=0)
        busy = sum(r.busy or r.copied < r.wal_frames for r in passive)
        by_writer = [r.seconds for r in self.checkpoints if r.by == "writer"]
        others = [r.seconds for r in self.checkpoints if r.by == "thread" and r.mode != "PASSIVE"]
        work = [r for r in self.checkpoints if r.by == "work"]
        work_frames = max((r.wal_frames for r in work), default=0)
        wal = f"WAL at most {self.wal_max / 2**20:.1f} MiB"
        return "\n".join(
            [
                f"- {what}: {took:.1f} s; {wal}; loop lag max {self.lag * 1000:.0f} ms ({self.lags} over 50 ms)",
                f"  COMMITs {ms(self.commits, 0.05)} (sum {sum(self.commits):.1f} s)",
                f"  batches (transactions of the work) {ms(self.batches)}",
                f"  checkpointer PASSIVE {ms([r.seconds for r in passive])}, at most {frames} frames in the WAL, "
                f"{busy} not complete; writer RESTART {ms(by_writer)}; thread TRUNCATE {ms(others)}",
                f"  between the work's batches PASSIVE {ms([r.seconds for r in work])}, at most {work_frames} "
                f"frames in the WAL, {sum(r.copied < r.wal_frames for r in work)} not complete",
                f"  creations {ms(self.creates, 0.05)}; point reads {ms(self.reads, 0.05)}",
            ]
        )


def instrument(db: Database, trace: Trace) -> None:
    """Time the writer's COMMITs and the work's transactions, and record the checkpointer's runs."""
    store = db._sqlite
    assert store is not None
    commit = store.commit

    def timed_commit(conn: Any) -> int:
        t0 = time.perf_counter()
        try:
            return commit(conn)
        finally:
            trace.commits.append(time.perf_counter() - t0)

    store.commit = timed_commit  # type: ignore[method-assign]
    if store.checkpointer is not None:
        store.checkpointer.on_run = trace.checkpoints.append
    transaction = db.transaction

    @asynccontextmanager
    async def timed_transaction(background: bool = False) -> AsyncIterator[Any]:
        t0 = time.perf_counter()
        async with transaction(background) as conn:
            yield conn
        task = asyncio.current_task()
        if task is not None and task.get_name() == "work":
            trace.batches.append(time.perf_counter() - t0)

    db.transaction = timed_transaction  # type: ignore[method-assign]


async def traced(db: Database, data_dir: Path, work: Callable[[], Any]) -> tuple[Trace, float]:
    """Run ``work`` as the task "work", with a creation and a point read looping beside it."""
    trace = Trace()
    instrument(db, trace)
    repo = SqlApiKeyRepository(db)
    template = await repo.get(f"s{BULK_KEYS:08d}")
    assert template is not None
    done = asyncio.Event()
    wal = data_dir / "keyplane.db-wal"

    async def creations() -> None:
        n = 0
        while not done.is_set():
            key = ApiKey(**{**template.__dict__, "id": f"c{n:08d}-{time.time_ns()}", "name": "cheap"})
            t0 = time.perf_counter()
            await repo.insert(key)
            trace.creates.append(time.perf_counter() - t0)
            n += 1
            await asyncio.sleep(0.005)

    async def reads() -> None:
        while not done.is_set():
            t0 = time.perf_counter()
            await repo.get("s00000001")
            trace.reads.append(time.perf_counter() - t0)
            await asyncio.sleep(0.002)

    async def ticks() -> None:
        while not done.is_set():
            t0 = time.perf_counter()
            await asyncio.sleep(0.001)
            late = time.perf_counter() - t0 - 0.001
            trace.lag = max(trace.lag, late)
            trace.lags += late > 0.05
            try:
                trace.wal_max = max(trace.wal_max, wal.stat().st_size)
            except FileNotFoundError:
                pass

    side = [asyncio.create_task(f()) for f in (creations, reads, ticks)]
    await asyncio.sleep(0.5)
    t0 = time.perf_counter()
    await asyncio.create_task(work(), name="work")
    took = time.perf_counter() - t0
    done.set()
    await asyncio.gather(*side)
    return trace, took


def writer_trace(args: argparse.Namespace) -> None:
    for spec in args.checkpoints.split(","):
        mode, _, batches = spec.partition("+")
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp)
            asyncio.run(seed_keys(data_dir, None, args.keys))
            checkpoint(data_dir, None)
            print(f"## 5. writer trace, checkpoints: {mode}, batches: {batches or 'timed'} ({args.keys:,} keys)")
            names = ("LEAST_BATCH", "MOST_BATCH", "SWEEP_REST", "SWEEP_BATCH", "UPDATE_BATCH")
            saved = {name: getattr(key_sql, name) for name in names}
            if batches == "fixed":  # as before: 250 and 200 rows, back to back
                key_sql.LEAST_BATCH, key_sql.MOST_BATCH, key_sql.SWEEP_REST = 10**9, 0, 0.0
                key_sql.SWEEP_BATCH, key_sql.UPDATE_BATCH = 250, 200
            try:
                asyncio.run(trace_one(data_dir, mode, args.keys))
            finally:
                for name, value in saved.items():
                    setattr(key_sql, name, value)


async def trace_one(data_dir: Path, mode: str, keys: int) -> None:
    for_file = checkpoints.for_file
    if mode != "thread":
        checkpoints.for_file = lambda path, synchronous: None
    try:
        db = Database.for_data_dir(data_dir)
        await db.open()
    finally:
        checkpoints.for_file = for_file
    try:
        store = db._sqlite
        assert store is not None and store.writer is not None
        writer = store.writer
        if mode == "none":
            await writer.call(lambda: writer.conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0"))  # type: ignore[union-attr]
        repo = SqlApiKeyRepository(db)
        now = int(time.time() * 1000)
        elastic = await repo.find(KeyFilter(ids=[f"s{i:08d}" for i in range(BULK_KEYS)]), now)

        async def bulk() -> None:
            for _ in range(2):
                await repo.replace_many(elastic)

        trace, took = await traced(db, data_dir, bulk)
        print(trace.report(f"2 bulk updates of {BULK_KEYS:,} keys", took))
        t = schema.api_keys
        async with db.transaction() as conn:
            await conn.execute(t.update().where(t.c.name.like("seed-%")).values(expiration=now - 30 * DAY))
        # That update's WAL (~100 MiB) is folded into the file first: its copy is not the sweep's work.
        checkpoint(data_dir, None)

        async def sweep() -> None:
            await repo.delete_inactive(now - 7 * DAY)

        trace, took = await traced(db, data_dir, sweep)
        print(trace.report(f"retention sweep of {keys:,} keys", took))
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--store-work", action="store_true", help="only measure 4 (big store work)")
    parser.add_argument("--keys", type=int, default=243_000, help="keys seeded for 4")
    parser.add_argument("--sweep-seconds", type=float, default=90, help="load window around the sweep in 4")
    parser.add_argument(
        "--works",
        default="alone,terms,bulk,sweep",
        help="the measures of 4 to run: alone, terms, bulk, sweep (comma-separated)",
    )
    parser.add_argument("--database-url", default=None, help="a scratch PostgreSQL database for 4 (it is wiped)")
    parser.add_argument("--writer-trace", action="store_true", help="only measure 5 (in process, SQLite)")
    parser.add_argument(
        "--checkpoints",
        default="thread,writer+fixed",
        help="runs of 5: thread, writer (in COMMIT) or none, each +timed (default) or +fixed batches",
    )
    args = parser.parse_args()
    if args.writer_trace:
        writer_trace(args)
        return
    pin(1)
    if args.store_work:
        store_work(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = start_keyplane(Path(tmp), port)
        try:
            auth, create, read = cheap_requests(f"http://127.0.0.1:{port}", "mixed")

            def only_auth(_c: int, _n: int) -> tuple[str, bytes]:
                return "auth", auth

            def tenth_creates(_c: int, n: int) -> tuple[str, bytes]:
                return ("create", create) if n % 10 == 9 else ("auth", auth)

            print("## 1. mixed load (32 connections)")
            res = uvloop.run(run("127.0.0.1", port, 32, args.seconds, only_auth))
            print(f"- auth only: {res.rate():,.0f} req/s; auth {latency(res, 'auth')}")
            res = uvloop.run(run("127.0.0.1", port, 32, args.seconds, tenth_creates))
            print(f"- 10% creations: {res.rate():,.0f} req/s; auth {latency(res, 'auth')}")
            print(f"  create {latency(res, 'create')}")

            # 30 connections authenticate, one reads, one creates keys.
            def lock_mix(c: int, _n: int) -> tuple[str, bytes]:
                return ("create", create) if c == 0 else ("read", read) if c == 1 else ("auth", auth)

            print("\n## 2. a write lock held by another process")
            res = uvloop.run(run("127.0.0.1", port, 32, args.seconds, lock_mix))
            print(f"- no lock: auth {latency(res, 'auth')}\n  read {latency(res, 'read')}")
            print(f"  create {latency(res, 'create')}")
            other = sqlite3.connect(Path(tmp) / "keyplane.db", isolation_level=None, check_same_thread=False)
            other.execute("BEGIN IMMEDIATE")
            try:
                res = uvloop.run(run("127.0.0.1", port, 32, args.seconds, lock_mix, warmup=0.5))
            finally:
                other.execute("ROLLBACK")
                other.close()
            print(f"- lock held: auth {latency(res, 'auth')}\n  read {latency(res, 'read')}")
            print(f"  create {latency(res, 'create')}")

            print("\n## 3. unauthenticated gzip bombs")
            bomb_body = gzip.compress(b" " * (100 * 1024 * 1024))
            gzipped = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
            bomb = request("POST", "/_security/api_key", gzipped, bomb_body)

            def one_auth(_c: int, _n: int) -> tuple[str, bytes]:
                return "auth", auth

            def with_bombs(c: int, _n: int) -> tuple[str, bytes]:
                return ("auth", auth) if c == 0 else ("bomb", bomb)

            res = uvloop.run(run("127.0.0.1", port, 1, args.seconds, one_auth))
            print(f"- 1 authenticated client alone: auth {latency(res, 'auth')}")
            res = uvloop.run(run("127.0.0.1", port, 25, args.seconds, with_bombs))
            print(f"- beside 24 bomb senders ({len(bomb_body) // 1024} KB each): auth {latency(res, 'auth')}")
            print(f"  bombs {latency(res, 'bomb')}")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"\n(took {time.perf_counter() - t0:.0f} s)", file=sys.stderr)
