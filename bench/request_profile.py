"""CPU per request of cpu.py's store endpoints, in process (no HTTP server), with an optional profile.

Runs Keyplane's ASGI app directly in a child process (pinned to CPU 0) on a fresh data directory (or
`--database-url`, a PostgreSQL database the child empties first by its own migrations on a fresh name),
seeds what bench/cpu.py seeds, then for each endpoint: a warm-up, then `--requests` requests from
16 concurrent tasks (as cpu.py's `wrk -c16`), and reports the process CPU time per request
(time.process_time: every thread, the reader and writer threads included). No uvicorn, httptools or
socket work is in the figure, so it is lower than cpu.py's by about the floor (~30 µs); it is steadier
on a shared machine. `--profile` prints cProfile's top functions (cumulative and own time) of one run.

Run: python bench/request_profile.py [--only "query keys"] [--requests 3000] [--rounds 3] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from common import PASSWORD, pinned  # noqa: E402
from inprocess import App  # noqa: E402

CONCURRENCY = 16
CONNECTORS = 25
SPREAD = 16
SCHEMA = {"value_1": {"label": "Value", "order": 0, "required": True, "type": "str", "display": "text"}}

Call = Callable[[str, str, bytes], Any]


async def seed(app: App) -> dict[str, Callable[[int], tuple[str, str, bytes]]]:
    """cpu.py's seed; returns each endpoint as a request maker (counter -> method, path, body)."""

    async def ok(method: str, path: str, body: Any = None) -> Any:
        status, answer = await app.call(method, path, json.dumps(body).encode() if body is not None else b"")
        if not 200 <= status < 300:
            raise SystemExit(f"{method} {path}: {status} {answer[:300]!r}")
        return json.loads(answer)

    keys = [await ok("POST", "/_security/api_key", {"name": f"seed-{i}"}) for i in range(SPREAD + 4)]
    for i in range(CONNECTORS):
        body = {"index_name": f"search-{i:03}", "name": f"C {i}", "service_type": "jira"}
        await ok("PUT", f"/_connector/c{i:03}", body)
    for i in range(SPREAD):
        await ok("PUT", f"/_connector/c{i:03}/_configuration", {"configuration": SCHEMA})
    key_id = keys[1]["id"]
    spread = [k["id"] for k in keys[1 : SPREAD + 1]]
    return {
        "auth Basic (cached)": lambda n: ("GET", "/_security/_authenticate", b""),
        "get key by id": lambda n: ("GET", f"/_security/api_key?id={key_id}", b""),
        "query keys, size 10": lambda n: ("POST", "/_security/_query/api_key", b'{"size": 10}'),
        "list connectors, size 20": lambda n: ("GET", "/_connector?size=20", b""),
        "update key metadata, 16 keys": lambda n: (
            "PUT",
            f"/_security/api_key/{spread[n % SPREAD]}",
            b'{"metadata": {"n": %d}}' % n,
        ),
        "connector configuration values, 16 connectors": lambda n: (
            "PUT",
            f"/_connector/c{n % SPREAD:03}/_configuration",
            b'{"values": {"value_1": "v%d"}}' % n,
        ),
        "create key": lambda n: ("POST", "/_security/api_key", b'{"name": "bench-%d"}' % n),
    }


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each thread of this process by name (threads of one name summed), from /proc."""
    import threading

    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(tid), "other").rstrip("0123456789-")
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


async def run(app: App, make: Callable[[int], tuple[str, str, bytes]], start: int, requests: int) -> None:
    per_task = requests // CONCURRENCY

    async def worker(w: int) -> None:
        for i in range(per_task):
            method, path, body = make(start + w * per_task + i)
            status, answer = await app.call(method, path, body)
            if not 200 <= status < 300:
                raise SystemExit(f"{method} {path}: {status} {answer[:300]!r}")

    await asyncio.gather(*(worker(w) for w in range(CONCURRENCY)))


async def measure(names: list[str], requests: int, profile: bool, sample: bool) -> dict[str, float]:
    app = App()
    await app.start()
    endpoints = await seed(app)
    out: dict[str, float] = {}
    counter = 1_000_000
    for name in names:
        make = endpoints[name]
        if sample:
            method, path, body = make(0)
            print(json.dumps({"sample": name, "answer": (await app.call(method, path, body))[1].decode()[:600]}))
        await run(app, make, counter, 500)  # warm-up
        counter += 1_000_000
        # the main thread's own CPU as the timer: waits for the GIL and the threads' work are not in it
        profiler = cProfile.Profile(time.thread_time) if profile else None
        threads0 = thread_cpu()
        started = time.process_time()
        if profiler:
            profiler.enable()
        await run(app, make, counter, requests)
        if profiler:
            profiler.disable()
        done = requests // CONCURRENCY * CONCURRENCY
        out[name] = 1e6 * (time.process_time() - started) / done
        threads1 = thread_cpu()
        split = {n: 1e6 * (cpu - threads0.get(n, 0.0)) / done for n, cpu in threads1.items()}
        print(json.dumps({"threads": name, "us": {n: round(us, 1) for n, us in split.items() if us >= 0.5}}))
        counter += 1_000_000
        if profiler:
            if os.environ.get("PROFILE_FILE"):
                profiler.dump_stats(os.environ["PROFILE_FILE"])
            for order in ("cumulative", "tottime"):
                text = io.StringIO()
                pstats.Stats(profiler, stream=text).sort_stats(order).print_stats(45)
                print(f"--- {name}: by {order}\n{text.getvalue()}", file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=None, help="the endpoints whose name contains this text")
    parser.add_argument("--requests", type=int, default=3_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="one run under cProfile, its top functions")
    parser.add_argument("--sample", action="store_true", help="print one answer of each endpoint")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = asyncio.run(measure(json.loads(args.child), args.requests, args.profile, args.sample))
        print(json.dumps(result), flush=True)
        os._exit(0)  # the app's background tasks and threads are not stopped one by one
    names = [
        "auth Basic (cached)",
        "get key by id",
        "query keys, size 10",
        "list connectors, size 20",
        "update key metadata, 16 keys",
        "connector configuration values, 16 connectors",
        "create key",
    ]
    names = [n for n in names if not args.only or args.only in n]
    results: dict[str, list[float]] = {}
    for round_ in range(1 if args.profile else args.rounds):
        with tempfile.TemporaryDirectory() as data_dir:
            env = {**os.environ, "ELASTIC_PASSWORD": PASSWORD, "KEYPLANE_DATA_DIR": data_dir}
            env.pop("KEYPLANE_TEST_MODE", None)
            if args.database_url:
                env["KEYPLANE_DATABASE_URL"] = args.database_url
            command = [sys.executable, __file__, "--child", json.dumps(names), "--requests", str(args.requests)]
            command += ["--profile"] if args.profile else []
            command += ["--sample"] if args.sample else []
            done = subprocess.run(pinned(0) + command, env=env, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(done.stderr[-3000:] + done.stdout[-3000:])
            if args.profile:
                print(done.stderr)
            lines = done.stdout.strip().splitlines()
            for line in lines[:-1]:
                print(line)
            for name, us in json.loads(lines[-1]).items():
                results.setdefault(name, []).append(us)
                print(f"  round {round_ + 1} {name:48} {us:7.1f} µs CPU/req", flush=True)
    print()
    print("| endpoint | µs CPU/req (median) | runs |")
    print("|---|---:|---|")
    for name, values in results.items():
        runs = ", ".join(f"{v:.0f}" for v in values)
        print(f"| {name} | {statistics.median(values):.1f} | {runs} |")


if __name__ == "__main__":
    main()
