"""Content indices: `_bulk` of small documents, then term searches over them, through a real server.

- bulk: 100,000 documents of ~100 bytes in `_bulk` requests of 1,000 (the connectors service's batch
  size order), one client, then the same with 4 concurrent clients into a second index;
  docs/s and the p50/p95 latency of one bulk request;
- search: a `term` query on a keyword-like field matching 1 % of the documents, size 10, and the same
  as `_count`; p50/p95 over 30 runs each.

Each bulk line also gives the server process's CPU per document (user + system time of all its
threads, from /proc): on a machine shared with other work, compare that rather than docs/s.

Run: python bench/bulk_search.py [--docs 100000] [--database-url postgresql://127.0.0.1:5432/bench [--analyze]]
Without --database-url the store is SQLite in a temporary data dir; --port P sets the server's port.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from common import PASSWORD, free_port, percentile, start_keyplane  # noqa: E402

ADMIN = ("elastic", PASSWORD)
BATCH = 1000
NDJSON = {"content-type": "application/x-ndjson"}


def batch_body(index: str, start: int, count: int) -> bytes:
    lines = []
    for n in range(start, start + count):
        lines.append(orjson.dumps({"index": {"_index": index, "_id": f"doc-{n}"}}))
        doc = {"title": f"document number {n}", "tag": f"t{n % 100}", "size": n % 1000, "ok": n % 2 == 0}
        lines.append(orjson.dumps(doc))
    return b"\n".join(lines) + b"\n"


def process_cpu(pid: int) -> float:
    """Seconds of CPU (user + system, every thread) the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bulk_load(url: str, index: str, docs: int, clients: int) -> tuple[float, list[float]]:
    starts = list(range(0, docs, BATCH))
    latencies: list[float] = []

    async def worker(client: httpx.AsyncClient) -> None:
        while starts:
            start = starts.pop(0)
            body = batch_body(index, start, min(BATCH, docs - start))
            t0 = time.perf_counter()
            reply = await client.post("/_bulk", content=body, headers=NDJSON)
            latencies.append(time.perf_counter() - t0)
            result = reply.json()
            if reply.status_code != 200 or result["errors"]:
                raise RuntimeError(f"bulk failed: {reply.status_code} {reply.text[:300]}")

    async with httpx.AsyncClient(base_url=url, auth=ADMIN, timeout=600) as client:
        await client.put(f"/{index}")
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    return docs / elapsed, latencies


def timed(client: httpx.Client, path: str, body: dict[str, object], runs: int) -> tuple[list[float], object]:
    out: list[float] = []
    answer: object = None
    for _ in range(runs):
        t0 = time.perf_counter()
        reply = client.post(path, json=body)
        out.append(time.perf_counter() - t0)
        reply.raise_for_status()
        answer = reply.json()
    return out, answer


async def vacuum_analyze(database_url: str) -> None:
    import asyncpg  # only for PostgreSQL runs

    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def spread(latencies: list[float]) -> str:
    return f"p50 {ms(percentile(latencies, 50))}, p95 {ms(percentile(latencies, 95))}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--port", type=int, default=None, help="the server's port (default: a free one)")
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="PostgreSQL: VACUUM ANALYZE once loaded (statistics and visibility map, for servers without autovacuum)",
    )
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="kp-bulk-"))
    port = args.port or free_port()
    env = {"KEYPLANE_DATABASE_URL": args.database_url} if args.database_url else {}
    store = "PostgreSQL" if args.database_url else "SQLite"
    proc = start_keyplane(data_dir, port, extra_env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        print(f"store: {store}, {args.docs:,} documents, bulk requests of {BATCH:,}")
        for index, clients in (("bench-1", 1), ("bench-4", 4)):
            cpu = process_cpu(proc.pid)
            rate, lat = asyncio.run(bulk_load(url, index, args.docs, clients))
            # The server's CPU per document: the figure to compare on a machine shared with other work.
            per_doc = (process_cpu(proc.pid) - cpu) / args.docs * 1e6
            rates = f"{rate:,.0f} docs/s; one request {spread(lat)}; server CPU {per_doc:.1f} us/doc"
            print(f"_bulk, {clients} client(s): {rates}")
        if args.database_url and args.analyze:
            asyncio.run(vacuum_analyze(args.database_url))
            print("PostgreSQL: VACUUM ANALYZE after loading (this server runs no autovacuum)")
        with httpx.Client(base_url=url, auth=ADMIN, timeout=600) as client:
            client.post("/bench-1/_refresh").raise_for_status()

            def searched(path: str, body: dict[str, object]) -> tuple[str, object]:
                cpu = process_cpu(proc.pid)
                lat, answer = timed(client, path, body, args.runs)
                per_request = (process_cpu(proc.pid) - cpu) / args.runs * 1e3
                return f"{spread(lat)}; server CPU {per_request:.2f} ms/request", answer

            term = {"query": {"term": {"tag": "t42"}}, "size": 10}
            shown, answer = searched("/bench-1/_search", term)
            total = answer["hits"]["total"]["value"]  # type: ignore[index]
            print(f"term search ({total:,} matches, size 10): {shown}")
            shown, answer = searched("/bench-1/_count", {"query": {"term": {"tag": "t42"}}})
            print(f"term _count ({answer['count']:,}): {shown}")  # type: ignore[index]
            shown, _ = searched("/bench-1/_search", {"query": {"term": {"_id": "doc-4242"}}})
            print(f"_id term search: {shown}")
        rss = Path(f"/proc/{proc.pid}/status").read_text()
        rss_kb = next(int(line.split()[1]) for line in rss.splitlines() if line.startswith("VmRSS"))
        print(f"server RSS after the run: {rss_kb / 1024:.0f} MB")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
