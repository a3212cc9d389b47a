"""GC pauses while the verified-key cache fills, and memory after it (issue 11).

Starts a real server (SQLite, pinned to CPU 0; the load runs on CPU 1) under a small wrapper that
records every garbage collection's duration through ``gc.callbacks`` (the hook lives here, not in
the server). Then a few owners with a few role sets create and authenticate ``--keys`` distinct
API keys, so the cache fills as in real use. Reports:

- GC pauses inside the server: count, p99 and max, by generation;
- latency of key creation and of cached ``_authenticate`` during the fill (p50/p99/max);
- RSS of the server before and after the load (``VmRSS`` of /proc/<pid>/status), with its anonymous
  part (/proc/<pid>/smaps_rollup: the heap and Python's objects; the rest is mapped files);
- how long the server took to answer its first request after it was started;
- objects per cached key and bytes per cached key, measured in this process on the cache itself.

Run: python bench/gc_pauses.py [--keys 25000] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import PASSWORD, free_port, percentile, pinned, wait_ready  # noqa: E402

# Runs the server with a gc.callbacks hook appending "generation wall-seconds cpu-seconds" lines to
# a file: the CPU time of the collecting thread is the collection's own work, which the wall time
# exceeds when the machine is busy and the server is descheduled mid-collection.
WRAPPER = """
import gc, sys, time, runpy
out = open(sys.argv[1], "a", buffering=1)
started = [0.0, 0.0]
def hook(phase, info):
    if phase == "start":
        started[:] = time.perf_counter(), time.thread_time()
    else:
        wall, cpu = time.perf_counter() - started[0], time.thread_time() - started[1]
        out.write(f"{info['generation']} {wall:.6f} {cpu:.6f}\\n")
gc.callbacks.append(hook)
sys.argv = ["keyplane"] + sys.argv[2:]
runpy.run_module("keyplane.cli", run_name="__main__")
"""

OWNERS = ["ann", "bob", "cid", "dee"]
ROLE_SETS: list[dict[str, object]] = [
    {},  # the owner's roles
    {"reader": {"indices": [{"names": ["logs-*"], "privileges": ["read"]}]}},
    {
        "writer": {
            "cluster": ["monitor"],
            "indices": [{"names": ["logs-*", "metrics-*"], "privileges": ["read", "write", "view_index_metadata"]}],
        }
    },
]


def start(data_dir: Path, port: int, pauses: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ELASTIC_PASSWORD": PASSWORD}
    env.pop("KEYPLANE_TEST_MODE", None)
    cmd = [sys.executable, "-c", WRAPPER, str(pauses), "serve", "--port", str(port), "--data-dir", str(data_dir)]
    proc = subprocess.Popen(
        pinned(0) + cmd + ["--log-level", "warning"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_ready(f"http://127.0.0.1:{port}")
    return proc


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def anonymous_mib(pid: int) -> float:
    """The anonymous part of the RSS; the rest is pages of mapped files (code of the libraries loaded)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Anonymous:"):
            return int(line.split()[1]) / 1024
    return 0.0


def read_pauses(path: Path) -> list[tuple[int, float, float]]:
    out = []
    for line in path.read_text().splitlines():
        gen, wall, cpu = line.split()
        out.append((int(gen), float(wall), float(cpu)))
    return out


def summary(label: str, values: list[float]) -> str:
    if not values:
        return f"{label}: none"
    ms = [v * 1000 for v in values]
    return (
        f"{label}: n={len(ms)}, p50 {percentile(ms, 50):.1f} ms, p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms"
    )


def fill(base: str, keys: int, concurrency: int) -> tuple[list[float], list[float]]:
    """Create and authenticate ``keys`` keys from ``concurrency`` threads; the latencies of each."""
    creates: list[float] = []
    auths: list[float] = []
    lock = threading.Lock()
    counter = iter(range(keys))

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                owner = OWNERS[n % len(OWNERS)]
                body: dict[str, object] = {"name": f"k{n}"}
                roles = ROLE_SETS[n % len(ROLE_SETS)]
                if roles:
                    body["role_descriptors"] = roles
                t0 = time.perf_counter()
                r = client.post("/_security/api_key", json=body, auth=(owner, f"{owner}-password"))
                t1 = time.perf_counter()
                r.raise_for_status()
                header = {"Authorization": "ApiKey " + r.json()["encoded"]}
                r = client.get("/_security/_authenticate", headers=header)
                t2 = time.perf_counter()
                r.raise_for_status()
                with lock:
                    creates.append(t1 - t0)
                    auths.append(t2 - t1)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return creates, auths


def cache_footprint(keys: int) -> tuple[float, float]:
    """GC-tracked objects and bytes per key of a full verified-key cache, built in this process."""
    from keyplane.apikeys import cache as cache_mod
    from keyplane.apikeys import core, hashing, realm
    from keyplane.apikeys.cache import VerifiedKeys
    from keyplane.apikeys.core import ApiKey, Creator
    from keyplane.security.roles import parse

    owner_roles = [
        parse("owner", {"cluster": ["manage_own_api_key"], "indices": [{"names": ["*"], "privileges": ["all"]}]})
    ]
    sets = [[parse(n, dict(b)) for n, b in rs.items()] for rs in ROLE_SETS]  # type: ignore[arg-type]
    stored = hashing.hash_secret("s")
    cache = VerifiedKeys(max_entries=keys)
    cache_mod.FREEZE_STEP = 1 << 62  # frozen objects are not listed by gc.get_objects(): none here

    def make(n: int) -> ApiKey:
        owner = OWNERS[n % len(OWNERS)]
        return ApiKey(
            id=f"id-{n:016d}",
            name=f"k{n}",
            type=core.REST,
            creation=n,
            expiration=None,
            invalidated=False,
            invalidation=None,
            hash=stored,
            creator=Creator(owner, None, None, {}, "default_native", "native"),
            role_descriptors=core.owner_snapshot(sets[n % len(sets)]),
            limited_by=core.owner_snapshot(owner_roles),
        )

    # Keys arrive from the store as fresh objects; the cache keeps what it needs of them.
    for n in range(100):
        cache.put(make(n), f"secret-{n}")
    cache.clear()
    gc.collect()
    before = len(gc.get_objects())
    tracemalloc.start()
    snap0 = tracemalloc.take_snapshot()
    for n in range(keys):
        entry = cache.put(make(n), f"secret-{n}")
        if getattr(entry, "authentication", 0) is None:  # the cache of the first version kept it lazily
            entry.authentication = realm.authentication_of(entry.key, entry.permission)  # type: ignore[attr-defined]
    gc.collect()
    snap1 = tracemalloc.take_snapshot()
    tracemalloc.stop()
    after = len(gc.get_objects())
    size = sum(s.size_diff for s in snap1.compare_to(snap0, "filename"))
    return (after - before) / keys, size / keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=25_000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    objects, size = cache_footprint(args.keys)
    print(f"cache footprint: {objects:.1f} GC-tracked objects and {size / 1024:.2f} KiB per cached key")
    if (os.cpu_count() or 1) > 1 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        pauses = Path(tmp) / "pauses"
        started = time.perf_counter()
        server = start(Path(tmp) / "data", port, pauses)
        ready = time.perf_counter() - started
        base = f"http://127.0.0.1:{port}"
        try:
            elastic = ("elastic", PASSWORD)
            for owner in OWNERS:
                r = httpx.put(
                    f"{base}/_security/user/{owner}",
                    json={"password": f"{owner}-password", "roles": ["superuser"]},
                    auth=elastic,
                )
                r.raise_for_status()
            time.sleep(1)
            rss_before, anon_before = rss_mib(server.pid), anonymous_mib(server.pid)
            pauses.write_text("")  # start-up collections are not the load's
            t0 = time.perf_counter()
            creates, auths = fill(base, args.keys, args.concurrency)
            took = time.perf_counter() - t0
            time.sleep(1)
            rss_after, anon_after = rss_mib(server.pid), anonymous_mib(server.pid)
            gcs = read_pauses(pauses)
        finally:
            server.terminate()
            server.wait()
    print(f"filled {args.keys:,} keys in {took:.1f} s ({args.concurrency} clients)")
    print(summary("create latency", creates))
    print(summary("cached _authenticate latency", auths))
    for gen in (0, 1, 2):
        print(summary(f"GC pauses gen {gen}, wall", [w for g, w, _ in gcs if g == gen]))
        print(summary(f"GC pauses gen {gen}, CPU", [c for g, _, c in gcs if g == gen]))
    print(f"start: first answer {ready:.2f} s after the server was started")
    print(
        f"RSS: {rss_before:.0f} MiB before the load ({anon_before:.0f} anonymous), "
        f"{rss_after:.0f} MiB after ({anon_after:.0f} anonymous)"
    )


if __name__ == "__main__":
    main()
