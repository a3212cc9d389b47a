"""Scale: a million API keys in SQLite or PostgreSQL, measured through the HTTP API of a real server.

- the key-management list (match_all, newest first, exact total, 25 a page, then search_after)
- a terms aggregation by username (and one by username and type together)
- a prefix query on name
- the list a key-management UI sends (live keys of a type, newest first, 25 a page, then search_after)
- bulk update of 10,000 keys and creation with 8 concurrent clients (--writes)

Run: python bench/scale.py [--keys 1000000] [--data-dir DIR] [--database-url postgresql://...] [--writes]
The seeded store is kept in --data-dir (default: a temporary folder) or the PostgreSQL database and
reused when it already holds keys. PostgreSQL is vacuumed and analyzed after seeding, as autovacuum
would; pass --analyze to do it on a reused database too. The server keeps expired and invalidated
keys (a long retention), so the sweep does not delete seeded keys while queries are timed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import PASSWORD, cpu_seconds, free_port, percentile, start_keyplane  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from keyplane import ids  # noqa: E402
from keyplane.apikeys import core, hashing  # noqa: E402
from keyplane.apikeys.backends.sql import _row  # noqa: E402
from keyplane.apikeys.core import ApiKey, Creator  # noqa: E402
from keyplane.security import roles  # noqa: E402
from keyplane.store import schema  # noqa: E402
from keyplane.store.database import Database  # noqa: E402
from keyplane.store.migrations import migrate  # noqa: E402

DAY = 86_400_000
ADMIN = ("elastic", PASSWORD)
UI_QUERY = {
    "query": {
        "bool": {
            "filter": [{"term": {"invalidated": False}}, {"term": {"type": "rest"}}],
            "should": [
                {"range": {"expiration": {"gt": "now"}}},
                {"bool": {"must_not": {"exists": {"field": "expiration"}}}},
            ],
            "minimum_should_match": 1,
        }
    },
    "sort": [{"creation": {"order": "desc"}}],
    "size": 25,
}
AGGS = {"size": 0, "aggs": {"users": {"terms": {"field": "username"}}, "types": {"terms": {"field": "type"}}}}
USER_AGG = {"size": 0, "aggs": {"users": {"terms": {"field": "username"}}}}
MANAGEMENT = {"query": {"match_all": {}}, "sort": [{"creation": {"order": "desc"}}], "size": 25}
PREFIX = {"query": {"prefix": {"name": "key-12345"}}, "size": 25}


def database(data_dir: Path, url: str | None) -> Database:
    return Database(url) if url else Database.for_data_dir(data_dir)


async def stored_keys(data_dir: Path, url: str | None) -> int:
    db = database(data_dir, url)
    await db.open()
    try:
        await migrate(db)
        async with db.transaction() as conn:
            return int((await conn.execute(select(func.count()).select_from(schema.api_keys))).scalar() or 0)
    finally:
        await db.close()


async def analyze(url: str) -> None:
    """VACUUM ANALYZE, as autovacuum would after seeding (it may be off): plans depend on statistics,
    and index-only scans on the visibility map."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def seed(data_dir: Path, count: int, owned_by_elastic: int, url: str | None = None) -> None:
    db = database(data_dir, url)
    await db.open()
    await migrate(db)
    now = int(time.time() * 1000)
    rng = random.Random(7)
    stored_hash = hashing.hash_secret(ids.new_secret())
    snapshot = [roles.RESERVED_ROLES["superuser"]]
    batch: list[dict] = []
    for i in range(count):
        elastic = i < owned_by_elastic
        user = "elastic" if elastic else f"user{rng.randrange(1000):03d}"
        created = now - rng.randrange(365 * DAY)
        kind = core.CROSS_CLUSTER if rng.random() < 0.1 and not elastic else core.REST
        expiration = created + rng.choice([30, 90, 365]) * DAY if rng.random() < 0.3 else None
        invalidated = rng.random() < 0.1 and not elastic
        key = ApiKey(
            id=f"{i:08d}-{rng.getrandbits(40):010x}"[:20],
            name=f"key-{i}",
            type=kind,
            creation=created,
            expiration=expiration if not elastic else None,
            invalidated=invalidated,
            invalidation=created + DAY if invalidated else None,
            hash=stored_hash,
            creator=Creator(
                user, None, None, {}, "reserved" if elastic else "default_native", "reserved" if elastic else "native"
            ),
            limited_by=snapshot if elastic else [],
            metadata={"team": f"t{i % 50}"},
        )
        batch.append(_row(key))
        if len(batch) == 20_000:
            async with db.transaction() as conn:
                await conn.execute(schema.api_keys.insert(), batch)
            batch = []
    if batch:
        async with db.transaction() as conn:
            await conn.execute(schema.api_keys.insert(), batch)
    async with db.transaction() as conn:
        await conn.execute(schema.api_keys.select().limit(1))
    await db.close()


def timed(client: httpx.Client, body: dict, runs: int) -> tuple[list[float], dict]:
    samples, last = [], {}
    for _ in range(runs):
        start = time.perf_counter()
        res = client.post("/_security/_query/api_key", json=body)
        samples.append((time.perf_counter() - start) * 1000)
        res.raise_for_status()
        last = res.json()
    return samples, last


class ServerCpu:
    """The server's CPU time per request (from /proc), which moves far less with the machine's load
    than latency does; with PostgreSQL, its backends serving the server's connections are added
    (the database's own work)."""

    def __init__(self, pid: int, url: str | None) -> None:
        self.pid = pid
        self.url = url

    def _backends(self) -> list[int]:
        if not self.url:
            return []

        async def pids() -> list[int]:
            conn = await asyncpg.connect(self.url)
            try:
                rows = await conn.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                return [int(r["pid"]) for r in rows]
            finally:
                await conn.close()

        return asyncio.run(pids())

    def _cpu(self, pids: list[int]) -> dict[int, float]:
        out = {}
        for pid in [self.pid, *pids]:
            try:
                out[pid] = cpu_seconds(pid)
            except OSError:
                pass  # ended meanwhile
        return out

    def per_request(self, client: httpx.Client, body: dict, runs: int) -> tuple[list[float], dict, float]:
        before = self._cpu(self._backends())
        samples, last = timed(client, body, runs)
        after = self._cpu(self._backends())
        spent = sum(value - before.get(pid, 0.0) for pid, value in after.items())
        return samples, last, spent * 1000 / runs


async def create_concurrently(url: str, total: int, workers: int) -> float:
    async with httpx.AsyncClient(base_url=url, auth=ADMIN, timeout=30) as client:
        counter = iter(range(total))

        async def worker() -> None:
            for i in counter:
                (await client.post("/_security/api_key", json={"name": f"new-{i}"})).raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(workers)])
        return total / (time.perf_counter() - start)


def report(name: str, samples: list[float], cpu_ms: float, note: str = "") -> None:
    print(
        f"{name}: p50 {percentile(samples, 50):.1f} ms, p95 {percentile(samples, 95):.1f} ms, "
        f"CPU {cpu_ms:.1f} ms/request{note}"
    )


def measure(client: httpx.Client, cpu: ServerCpu, runs: int) -> None:
    """The 1,000,000-key goals of issue 11, each warmed then timed ``runs`` times (client-side latency)."""
    for name, body, target in (("key-management list", MANAGEMENT, 10), ("UI list", UI_QUERY, 10)):
        timed(client, body, 3)
        first, page, first_cpu = cpu.per_request(client, body, runs)
        after_body = {**body, "search_after": page["api_keys"][-1]["_sort"]}
        timed(client, after_body, 3)
        after, _, after_cpu = cpu.per_request(client, after_body, runs)
        report(f"{name}, first page", first, first_cpu, f" (total {page['total']:,}; target p50 <= {target} ms)")
        report(f"{name}, search_after", after, after_cpu)
    timed(client, USER_AGG, 3)
    users, agg_page, users_cpu = cpu.per_request(client, USER_AGG, runs)
    buckets = len(agg_page["aggregations"]["users"]["buckets"])
    report("terms aggregation by username", users, users_cpu, f" ({buckets} buckets; target p50 <= 50 ms)")
    timed(client, AGGS, 1)
    both, _, both_cpu = cpu.per_request(client, AGGS, max(5, runs // 3))
    report("terms aggregations by username and type", both, both_cpu)
    timed(client, PREFIX, 3)
    prefix, prefix_page, prefix_cpu = cpu.per_request(client, PREFIX, runs)
    report("prefix on name", prefix, prefix_cpu, f" (total {prefix_page['total']:,}; target p50 <= 5 ms)")


def writes(client: httpx.Client, url: str) -> None:
    ids = [k["id"] for k in client.get("/_security/api_key", params={"username": "elastic"}).json()["api_keys"]]
    ids = ids[:10_000]
    start = time.perf_counter()
    res = client.post("/_security/api_key/_bulk_update", json={"ids": ids, "metadata": {"bulk": time.time()}})
    elapsed = time.perf_counter() - start
    res.raise_for_status()
    print(f"bulk update of {len(res.json()['updated']):,} keys: {elapsed:.2f} s (target < 5 s)")
    rate = asyncio.run(create_concurrently(url, 2000, 8))
    print(f"creation with 8 concurrent clients: {rate:,.0f} keys/s (target >= 500)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL database (default: SQLite in --data-dir)")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--analyze", action="store_true", help="VACUUM ANALYZE a reused PostgreSQL database first")
    parser.add_argument("--writes", action="store_true", help="also bulk-update 10,000 keys and create 2,000")
    args = parser.parse_args()
    url = args.database_url
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="keyplane-scale-"))
    if not asyncio.run(stored_keys(data_dir, url)):
        start = time.perf_counter()
        asyncio.run(seed(data_dir, args.keys, 10_000, url))
        print(f"seeded {args.keys:,} keys in {time.perf_counter() - start:.1f} s ({url or data_dir})")
        if url:
            asyncio.run(analyze(url))
    elif url and args.analyze:
        asyncio.run(analyze(url))
    port = free_port()
    # The sweep would delete the seeded expired and invalidated keys while the queries are timed.
    env = {"KEYPLANE_API_KEY_RETENTION": "36500d", **({"KEYPLANE_DATABASE_URL": url} if url else {})}
    server = start_keyplane(data_dir, port, extra_env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, auth=ADMIN, timeout=120) as client:
            measure(client, ServerCpu(server.pid, url), args.runs)
            if args.writes:
                writes(client, base)
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
