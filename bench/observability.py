"""The cost of the audit log and the metrics on cached authentication (issue 13: under 5 %).

Two `keyplane serve` processes on one seeded store each (SQLite, or two PostgreSQL databases with
--database-url): "off" with KEYPLANE_AUDIT_ENABLED=false and KEYPLANE_METRICS_ENABLED=false, "on" with
both on (every event type written, to a file in the data dir); "metrics" and "es-default" (the audit
log's default event types) measure the parts. Both pinned to CPU 0 (one at a time
under load), `wrk -t1 -c16` pinned to CPU 1 sends cached `GET /_security/_authenticate` by ApiKey and
by Basic, rounds interleaved (off, on, on, off, ...) so drifting machine load falls on both alike.
Reported per server: requests/s and server CPU per request (utime + stime of the process, all its
threads, the audit writer included, over the run ÷ requests completed; bench/cpu.py's method), medians,
and the on/off ratios, with the median of each round's own difference ("paired"). CPU per request is
the figure to trust on a loaded machine; throughput moves with whatever else runs. Each round turns
the order of the servers, so that none always runs first; every server starts with the same memory
layout (common.same_layout).

Run: python bench/observability.py [--seconds 10] [--rounds 4] [--database-url postgresql://127.0.0.1:5432/x]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import PASSWORD, free_port, median, pinned, same_layout, wait_ready  # noqa: E402
from cpu import ADMIN, Backends, Endpoint, Run, basic_header, check_wrk, lua, run_wrk  # noqa: E402

USER, USER_PASSWORD = "bench_user", "bench-user-password"
SETTINGS = {
    "off": {"KEYPLANE_AUDIT_ENABLED": "false", "KEYPLANE_METRICS_ENABLED": "false"},
    "on": {
        "KEYPLANE_AUDIT_ENABLED": "true",
        "KEYPLANE_METRICS_ENABLED": "true",
        "KEYPLANE_AUDIT_EVENTS_INCLUDE": "_all",
    },
    # the parts apart: metrics alone, and the audit log with its default event types (Elasticsearch's:
    # no authentication_success, so one event per cached authentication instead of two)
    "metrics": {"KEYPLANE_AUDIT_ENABLED": "false", "KEYPLANE_METRICS_ENABLED": "true"},
    "es-default": {"KEYPLANE_AUDIT_ENABLED": "true", "KEYPLANE_METRICS_ENABLED": "true"},
}


def start(data_dir: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """common.start_keyplane with a longer start-up allowance (a loaded machine can take over 30 s)."""
    command = [sys.executable, "-m", "keyplane.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)]
    layout, layout_env = same_layout()
    full_env = {**os.environ, **layout_env, "ELASTIC_PASSWORD": PASSWORD, **env}
    full_env.pop("KEYPLANE_TEST_MODE", None)
    proc = subprocess.Popen(
        layout + pinned(0) + command + ["--log-level", "warning"],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_ready(f"http://127.0.0.1:{port}", timeout=180)
    return proc


def seed(base: str) -> list[Endpoint]:
    with httpx.Client(base_url=base, auth=ADMIN, timeout=60) as c:
        c.put(f"/_security/user/{USER}", json={"password": USER_PASSWORD, "roles": ["superuser"]}).raise_for_status()
        key = c.post("/_security/api_key", json={"name": "bench"}).json()["encoded"]
    return [
        Endpoint("auth ApiKey (cached)", 0, "GET", "/_security/_authenticate", f"ApiKey {key}"),
        Endpoint("auth Basic (cached)", 0, "GET", "/_security/_authenticate", basic_header(USER, USER_PASSWORD)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--database-url", default=None, help="PostgreSQL URL <base>: each server uses its own database <base>_<name>"
    )
    parser.add_argument("--servers", default="off,on", help=f"which of {', '.join(SETTINGS)}, comma-separated")
    args = parser.parse_args()
    check_wrk()
    names = args.servers.split(",")
    base = names[0]  # the others are compared with the first (off, or metrics to see the audit log alone)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        servers = {}
        endpoints: dict[str, list[Endpoint]] = {}
        try:
            for name in names:
                env = dict(SETTINGS[name])
                if args.database_url:
                    env["KEYPLANE_DATABASE_URL"] = f"{args.database_url}_{name.replace('-', '_')}"
                port = free_port()
                servers[name] = (start(tmp / name, port, env), f"http://127.0.0.1:{port}")
                endpoints[name] = seed(servers[name][1])
            runs: dict[tuple[str, str], list[Run]] = {}
            counter = 0
            for index, endpoint in enumerate(endpoints[base]):
                for round_ in range(args.rounds):
                    turned = names[round_ % len(names) :] + names[: round_ % len(names)]
                    order = turned if round_ % 2 == 0 else turned[::-1]
                    for name in order:
                        counter += 1
                        ours = endpoints[name][index]
                        script = tmp / f"run-{counter}.lua"
                        script.write_text(lua(ours, counter))
                        proc, url = servers[name]
                        run = run_wrk(url + ours.path, script, args.seconds, proc.pid, Backends(None))
                        runs.setdefault((endpoint.name, name), []).append(run)
                        print(
                            f"  {endpoint.name:22} {name:3}  {run.rate:8.0f} req/s  {run.us:6.1f} µs CPU/req",
                            flush=True,
                        )
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait()
    print()
    print(f"| request | server | req/s (median) | µs CPU/req (median) | req/s vs {base} | CPU/req vs {base} | paired |")
    print("|---|---|---|---|---|---|---|")
    for endpoint in endpoints[base]:
        first = runs[(endpoint.name, base)]
        rate_first, us_first = median([r.rate for r in first]), median([r.us for r in first])
        for name in names:
            got = runs[(endpoint.name, name)]
            rate, us = median([r.rate for r in got]), median([r.us for r in got])
            # each round's difference with the first server in the same round: slow phases cancel
            paired = median([a.us - b.us for a, b in zip(got, first, strict=True)]) / us_first
            versus = f"{rate / rate_first - 1:+.1%} | {us / us_first - 1:+.1%} | {paired:+.1%}"
            print(f"| {endpoint.name} | {name} | {rate:,.0f} | {us:.1f} | {versus} |")


if __name__ == "__main__":
    main()
