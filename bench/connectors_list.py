"""List latency with 100,000 connectors in SQLite, through the HTTP API of a real server.

Run: python bench/connectors_list.py [--connectors 100000] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import PASSWORD, free_port, percentile, start_keyplane  # noqa: E402

from keyplane.connectors import core  # noqa: E402
from keyplane.connectors.backends.sql import _columns  # noqa: E402
from keyplane.store import schema  # noqa: E402
from keyplane.store.database import Database  # noqa: E402
from keyplane.store.migrations import migrate  # noqa: E402

SERVICES = ["google_drive", "sharepoint_online", "jira", "confluence", "github", "slack", "mysql", "postgresql"]
QUERIES = {
    "first page (size 100)": {"size": "100"},
    "page 100 (from 9,900)": {"from": "9900", "size": "100"},
    "service_type filter": {"service_type": "jira,github", "size": "100"},
    "index_name filter (2 names)": {"index_name": "search-00042,search-99999"},
    "query substring": {"query": "0042", "size": "100"},
}


async def seed(data_dir: Path, count: int) -> None:
    db = Database.for_data_dir(data_dir)
    await db.open()
    await migrate(db)
    batch = []
    for i in range(count):
        doc = core.new_connector(
            {
                "index_name": f"search-{i:05d}",
                "name": f"Connector {i}",
                "service_type": SERVICES[i % len(SERVICES)],
                "description": f"about {i}",
            }
        )
        batch.append({"id": f"conn-{i:05d}", "seq_no": 1, **_columns(doc)})
        if len(batch) == 10_000:
            async with db.transaction() as conn:
                await conn.execute(schema.connectors.insert(), batch)
            batch = []
    if batch:
        async with db.transaction() as conn:
            await conn.execute(schema.connectors.insert(), batch)
    await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connectors", type=int, default=100_000)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="keyplane-connectors-"))
    if not (data_dir / "keyplane.db").exists():
        start = time.perf_counter()
        asyncio.run(seed(data_dir, args.connectors))
        print(f"seeded {args.connectors:,} connectors in {time.perf_counter() - start:.1f} s ({data_dir})")
    port = free_port()
    server = start_keyplane(data_dir, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=("elastic", PASSWORD), timeout=60) as client:
            for label, params in QUERIES.items():
                client.get("/_connector", params=params).raise_for_status()
                samples = []
                for _ in range(args.runs):
                    start = time.perf_counter()
                    res = client.get("/_connector", params=params)
                    samples.append((time.perf_counter() - start) * 1000)
                res.raise_for_status()
                body = res.json()
                print(
                    f"{label:30s} p50 {percentile(samples, 50):6.1f} ms  p95 {percentile(samples, 95):6.1f} ms"
                    f"  (count {body['count']:,}, {len(body['results'])} returned)"
                )
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
