"""The cost of durable writes on SQLite: KEYPLANE_SQLITE_SYNCHRONOUS=full (the default: the WAL is
fsynced before a write is acknowledged) against normal (no fsync per commit).

Measures API key creations/s with 1 and 32 clients, and the latency of an API key update with one
client, for both settings in interleaved rounds (a fresh server each time, pinned to CPU 0, the
load on CPU 1).

Run: python bench/durability.py [--seconds 8] [--rounds 3] [--dir /path/on/the/disk/to/test]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import tempfile
from pathlib import Path

import httpx
import orjson
import uvloop

sys.path.insert(0, str(Path(__file__).parent))
from common import PASSWORD, free_port, start_keyplane  # noqa: E402
from load import pct, pin, request, run  # noqa: E402

BASIC = "Basic " + base64.b64encode(f"elastic:{PASSWORD}".encode()).decode()
JSON = {"Authorization": BASIC, "Content-Type": "application/json"}


def measure(mode: str, seconds: float, parent: str | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(dir=parent) as tmp:
        port = free_port()
        server = start_keyplane(Path(tmp), port, extra_env={"KEYPLANE_SQLITE_SYNCHRONOUS": mode})
        try:
            base = f"http://127.0.0.1:{port}"
            key = httpx.post(base + "/_security/api_key", json={"name": "u"}, auth=("elastic", PASSWORD)).json()
            create = request("POST", "/_security/api_key", JSON, b'{"name":"bench"}')

            def creations(_c: int, _n: int) -> tuple[str, bytes]:
                return "create", create

            def updates(_c: int, n: int) -> tuple[str, bytes]:
                body = orjson.dumps({"metadata": {"n": n}})
                return "update", request("PUT", f"/_security/api_key/{key['id']}", JSON, body)

            one = uvloop.run(run("127.0.0.1", port, 1, seconds, creations))
            many = uvloop.run(run("127.0.0.1", port, 32, seconds, creations))
            upd = uvloop.run(run("127.0.0.1", port, 1, seconds, updates))
            for res in (one, many, upd):
                assert all(set(s) == {200} for s in res.statuses.values()), res.statuses
            lat = upd.latencies["update"]
            return {
                "create/s, 1 client": one.rate(),
                "create/s, 32 clients": many.rate(),
                "update p50 ms": pct(lat, 50) * 1000,
                "update p95 ms": pct(lat, 95) * 1000,
                "create p50 ms, 1 client": pct(one.latencies["create"], 50) * 1000,
            }
        finally:
            server.terminate()
            server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where the data dirs go (the disk whose fsync is measured)")
    args = parser.parse_args()
    pin(1)
    results: dict[str, list[dict[str, float]]] = {"full": [], "normal": []}
    for rnd in range(args.rounds):
        for mode in ("full", "normal") if rnd % 2 == 0 else ("normal", "full"):
            results[mode].append(measure(mode, args.seconds, args.dir))
            print(f"round {rnd + 1} {mode}: {results[mode][-1]}", file=sys.stderr)
    names = list(results["full"][0])
    print(f"| measure (median of {args.rounds} rounds) | synchronous=full (default) | synchronous=normal |")
    print("|---|---:|---:|")
    for name in names:
        full = statistics.median(r[name] for r in results["full"])
        normal = statistics.median(r[name] for r in results["normal"])
        print(f"| {name} | {full:,.1f} | {normal:,.1f} |")


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
