"""Scale: a million API keys in SQLite, measured through the HTTP API of a real server.

- the list a key-management UI sends (live keys of a type, newest first, 25 a page, then search_after)
- a terms aggregation by username and by type
- bulk update of 10,000 keys
- creation with 8 concurrent clients

Run: python bench/scale.py [--keys 1000000] [--data-dir DIR]
The seeded store is kept in --data-dir (default: a temporary folder) and reused when present.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import PASSWORD, free_port, percentile, start_keyplane  # noqa: E402

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


async def seed(data_dir: Path, count: int, owned_by_elastic: int) -> None:
    db = Database.for_data_dir(data_dir)
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


async def create_concurrently(url: str, total: int, workers: int) -> float:
    async with httpx.AsyncClient(base_url=url, auth=ADMIN, timeout=30) as client:
        counter = iter(range(total))

        async def worker() -> None:
            for i in counter:
                (await client.post("/_security/api_key", json={"name": f"new-{i}"})).raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(workers)])
        return total / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="keyplane-scale-"))
    if not (data_dir / "keyplane.db").exists():
        start = time.perf_counter()
        asyncio.run(seed(data_dir, args.keys, 10_000))
        print(f"seeded {args.keys:,} keys in {time.perf_counter() - start:.1f} s ({data_dir})")
    port = free_port()
    server = start_keyplane(data_dir, port)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, auth=ADMIN, timeout=120) as client:
            timed(client, UI_QUERY, 3)  # warm the page cache
            first, page = timed(client, UI_QUERY, args.runs)
            after_body = {**UI_QUERY, "search_after": page["api_keys"][-1]["_sort"]}
            after, _ = timed(client, after_body, args.runs)
            timed(client, AGGS, 1)
            aggs, agg_page = timed(client, AGGS, max(5, args.runs // 3))
            print(
                f"UI list, first page: p50 {percentile(first, 50):.1f} ms, p95 {percentile(first, 95):.1f} ms "
                f"(total {page['total']:,}; target p50 < 50 ms)"
            )
            print(f"UI list, search_after: p50 {percentile(after, 50):.1f} ms, p95 {percentile(after, 95):.1f} ms")
            print(
                f"terms aggs by username and type: p50 {percentile(aggs, 50):.1f} ms (target < 250 ms; "
                f"{len(agg_page['aggregations']['users']['buckets'])} user buckets)"
            )
            ids = [k["id"] for k in client.get("/_security/api_key", params={"username": "elastic"}).json()["api_keys"]]
            ids = ids[:10_000]
            start = time.perf_counter()
            res = client.post("/_security/api_key/_bulk_update", json={"ids": ids, "metadata": {"bulk": time.time()}})
            elapsed = time.perf_counter() - start
            res.raise_for_status()
            print(f"bulk update of {len(res.json()['updated']):,} keys: {elapsed:.2f} s (target < 5 s)")
        rate = asyncio.run(create_concurrently(url, 2000, 8))
        print(f"creation with 8 concurrent clients: {rate:,.0f} keys/s (target >= 500)")
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
