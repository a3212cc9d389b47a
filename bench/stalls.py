"""Does one kind of work stall the others? Three measures against one server (SQLite, pinned to
CPU 0; the load runs on CPU 1, 32 keep-alive connections unless said):

1. mixed load: cached ApiKey `_authenticate` alone, then with 10% API key creations;
2. a write lock held by another process (as the `sqlite3` shell or a backup would): cached
   authentication, a read (`GET /_security/user/ann`) and creations, before and while the lock is held;
3. 24 connections sending unauthenticated gzip bombs (~100 KB that inflate to 100 MB) beside one
   authenticated client.

Run: python bench/stalls.py [--seconds 8]
"""

from __future__ import annotations

import argparse
import base64
import gzip
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).parent))
from common import PASSWORD, free_port, start_keyplane  # noqa: E402
from load import Result, pct, pin, request, run  # noqa: E402

BASIC = "Basic " + base64.b64encode(f"elastic:{PASSWORD}".encode()).decode()


def latency(res: Result, kind: str) -> str:
    lat = res.latencies.get(kind, [])
    if not lat:
        return "none answered"
    return (
        f"{res.rate(kind):,.0f}/s, p50 {pct(lat, 50) * 1000:.1f} ms, p99 {pct(lat, 99) * 1000:.1f} ms, "
        f"max {max(lat) * 1000:.0f} ms, statuses {res.statuses[kind]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8)
    args = parser.parse_args()
    pin(1)
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = start_keyplane(Path(tmp), port)
        base = f"http://127.0.0.1:{port}"
        try:
            elastic = ("elastic", PASSWORD)
            key = httpx.post(base + "/_security/api_key", json={"name": "bench"}, auth=elastic).json()
            httpx.put(base + "/_security/user/ann", json={"password": "ann-password", "roles": []}, auth=elastic)
            auth = request("GET", "/_security/_authenticate", {"Authorization": f"ApiKey {key['encoded']}"})
            json_basic = {"Authorization": BASIC, "Content-Type": "application/json"}
            create = request("POST", "/_security/api_key", json_basic, b'{"name":"mixed"}')
            read = request("GET", "/_security/user/ann", {"Authorization": BASIC})

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
