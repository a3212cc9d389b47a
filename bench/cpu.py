"""Server CPU per request against the floor (issue 11), every endpoint on one store.

For each endpoint below, `wrk -t1 -c16` (pinned to CPU 1) sends the same requests, from a Lua script
(method, headers, body), to a real `keyplane serve` (pinned to CPU 0), then to the floor (bench/floor_app.py:
a raw ASGI app on the same uvicorn settings, reading the body and answering the bytes Keyplane answered
to that request), then to Keyplane again; `--rounds` rounds. Server CPU per request = the server process's
utime + stime delta over the run (all threads: /proc/<pid>/stat fields 14 and 15) divided by the requests
wrk completed; answers other than 2xx are counted and reported separately. The table gives medians
(Keyplane: 2 runs a round) and the ratio of the medians against the issue's goal.

With --database-url (PostgreSQL) the CPU of the database backends serving the scratch database is measured
too (their /proc/<pid>/stat, same machine) and shown apart: it is not in the ratio.

Writes stay valid when repeated: creations create new keys; updates set a key's metadata or a connector's
configuration value to a counter, so every request is a real write. Updates run twice: spread over 16 keys
(connectors), one per connection, which is what the goal is about, and all on one record, which measures the
optimistic-concurrency retries of 16 writers racing on it (their 409s are counted apart, as every non-2xx).

Needs wrk: `apt-get install -y wrk` (checked at start).
Run: python bench/cpu.py [--seconds 10] [--rounds 3] [--database-url postgresql://127.0.0.1:5432/bench_cpu]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import PASSWORD, cpu_seconds, free_port, median, pinned, start_floor, start_keyplane  # noqa: E402

ADMIN = ("elastic", PASSWORD)
USER, USER_PASSWORD = "bench_user", "bench-user-password"
CONNECTIONS = 16
CONNECTORS = 25
# Writes spread over this many records (one per connection): 16 connections updating one record
# measure the optimistic-concurrency retries instead (the "one record" rows).
SPREAD = CONNECTIONS


@dataclass
class Endpoint:
    name: str
    goal: float
    method: str
    path: str
    auth: str  # Authorization header value
    body: str | None = None  # may hold one %d: a counter, so repeated writes differ
    paths: tuple[str, ...] = ()  # when set, requests take these paths in turn (writes spread over records)


@dataclass
class Run:
    requests: int
    non_2xx: int
    errors: int
    seconds: float
    server_cpu: float
    db_cpu: float
    wrk_cpu: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def us(self) -> float:
        return 1e6 * self.server_cpu / max(1, self.requests)


def check_wrk() -> None:
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install -y wrk")
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    print((out.stdout + out.stderr).strip().splitlines()[0])


# Tallies the answers that are not 2xx by status, with the first such body, printed by wrk at the end.
STATUS_TALLY = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
statuses = {}
first_bad = nil
function response(status, headers, body)
  if status > 299 then
    statuses[status] = (statuses[status] or 0) + 1
    if first_bad == nil then first_bad = body:sub(1, 300) end
  end
end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    for status, count in pairs(t:get("statuses")) do io.write(string.format("status %d: %d\\n", status, count)) end
    local bad = t:get("first_bad")
    if bad then io.write("first bad answer: " .. bad .. "\\n") end
  end
end
"""


def lua(endpoint: Endpoint, start: int) -> str:
    return lua_requests(endpoint, start) + STATUS_TALLY


def lua_requests(endpoint: Endpoint, start: int) -> str:
    lines = [
        f"wrk.method = {json.dumps(endpoint.method)}",
        f"wrk.headers['Authorization'] = {json.dumps(endpoint.auth)}",
    ]
    if endpoint.body is None:
        return "\n".join(lines) + "\n"
    lines.append("wrk.headers['Content-Type'] = 'application/json'")
    if "%d" not in endpoint.body and not endpoint.paths:
        return "\n".join(lines + [f"wrk.body = {json.dumps(endpoint.body)}"]) + "\n"
    # one counter per run, started at a value no earlier run used
    lines += [
        f"local n = {start}",
        f"local template = {json.dumps(endpoint.body)}",
        f"local paths = {{{', '.join(json.dumps(p) for p in endpoint.paths)}}}",
        "request = function()",
        "  n = n + 1",
        "  local path = nil",
        "  if #paths > 0 then path = paths[n % #paths + 1] end",
        "  return wrk.format(nil, path, nil, string.format(template, n))",
        "end",
    ]
    return "\n".join(lines) + "\n"


class Backends:
    """CPU of the PostgreSQL backends serving one database, read from /proc (the server runs here)."""

    def __init__(self, database: str | None) -> None:
        self.database = database

    def snapshot(self) -> dict[int, float]:
        if not self.database:
            return {}
        out: dict[int, float] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                title = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                if title.startswith("postgres: ") and f" {self.database} " in title:
                    out[int(entry)] = cpu_seconds(int(entry))
            except (OSError, ValueError):
                continue
        return out

    @staticmethod
    def delta(before: dict[int, float], after: dict[int, float]) -> float:
        # a backend that ended during the run is lost; the pool keeps its connections, so they don't
        return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def run_wrk(url: str, script: Path, seconds: int, pid: int, backends: Backends) -> Run:
    command = pinned(1) + [
        "wrk",
        "-t1",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    db0, cpu0, kids0 = backends.snapshot(), cpu_seconds(pid), resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    elapsed = time.perf_counter() - t0
    cpu1, kids1, db1 = cpu_seconds(pid), resource.getrusage(resource.RUSAGE_CHILDREN), backends.snapshot()
    done = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    assert done, out
    duration = float(done.group(2)) / (1000 if done.group(3) == "ms" else 1)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    bad = re.findall(r"^(status \d+: \d+|first bad answer: .*)$", out, re.M)
    if bad:
        print("    " + "; ".join(bad), flush=True)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    wrk_cpu = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    return Run(
        requests=int(done.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(g) for g in errors.groups()) if errors else 0,
        seconds=duration or elapsed,
        server_cpu=cpu1 - cpu0,
        db_cpu=Backends.delta(db0, db1),
        wrk_cpu=wrk_cpu / elapsed,
    )


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def seed(base: str) -> tuple[list[Endpoint], str]:
    """Users, keys, a token and connectors; returns the endpoints and a description of what was seeded."""
    with httpx.Client(base_url=base, auth=ADMIN, timeout=60) as c:
        c.put(f"/_security/user/{USER}", json={"password": USER_PASSWORD, "roles": ["superuser"]}).raise_for_status()
        keys = [c.post("/_security/api_key", json={"name": f"seed-{i}"}).json() for i in range(SPREAD + 4)]
        token = c.post(
            "/_security/oauth2/token", json={"grant_type": "password", "username": USER, "password": USER_PASSWORD}
        )
        token.raise_for_status()
        schema = {"value_1": {"label": "Value", "order": 0, "required": True, "type": "str", "display": "text"}}
        for i in range(CONNECTORS):
            c.put(
                f"/_connector/c{i:03}", json={"index_name": f"search-{i:03}", "name": f"C {i}", "service_type": "jira"}
            ).raise_for_status()
        for i in range(SPREAD):
            c.put(f"/_connector/c{i:03}/_configuration", json={"configuration": schema}).raise_for_status()
    basic, admin = basic_header(USER, USER_PASSWORD), basic_header(*ADMIN)
    key, key_id, bearer = keys[0]["encoded"], keys[1]["id"], token.json()["access_token"]
    endpoints = [
        Endpoint("auth Basic (cached)", 1.4, "GET", "/_security/_authenticate", basic),
        Endpoint("auth ApiKey (cached)", 1.4, "GET", "/_security/_authenticate", f"ApiKey {key}"),
        Endpoint("auth Bearer (cached)", 1.4, "GET", "/_security/_authenticate", f"Bearer {bearer}"),
        Endpoint("get key by id", 4, "GET", f"/_security/api_key?id={key_id}", admin),
        Endpoint("query keys, size 10", 4, "POST", "/_security/_query/api_key", admin, '{"size": 10}'),
        Endpoint("list connectors, size 20", 4, "GET", "/_connector?size=20", admin),
        Endpoint(
            f"update key metadata, {SPREAD} keys",
            6,
            "PUT",
            f"/_security/api_key/{key_id}",
            admin,
            '{"metadata": {"n": %d}}',
            tuple(f"/_security/api_key/{k['id']}" for k in keys[1 : SPREAD + 1]),
        ),
        Endpoint(
            f"connector configuration values, {SPREAD} connectors",
            6,
            "PUT",
            "/_connector/c000/_configuration",
            admin,
            '{"values": {"value_1": "v%d"}}',
            tuple(f"/_connector/c{i:03}/_configuration" for i in range(SPREAD)),
        ),
        Endpoint(
            "update key metadata, one key", 6, "PUT", f"/_security/api_key/{key_id}", admin, '{"metadata": {"n": %d}}'
        ),
        Endpoint(
            "connector configuration values, one connector",
            6,
            "PUT",
            "/_connector/c000/_configuration",
            admin,
            '{"values": {"value_1": "v%d"}}',
        ),
        # last: the keys it creates would make the key queries above read more
        Endpoint("create key", 6, "POST", "/_security/api_key", admin, '{"name": "bench-%d"}'),
    ]
    return endpoints, f"1 user, {len(keys)} API keys, 1 token, {CONNECTORS} connectors"


def sample(base: str, endpoint: Endpoint) -> httpx.Response:
    body = endpoint.body.replace("%d", "0") if endpoint.body else None
    headers = {"Authorization": endpoint.auth, "Content-Type": "application/json"}
    reply = httpx.request(endpoint.method, base + endpoint.path, headers=headers, content=body, timeout=30)
    if reply.status_code != 200:
        raise RuntimeError(f"{endpoint.name}: {reply.status_code} {reply.text[:300]}")
    return reply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--only", default=None, help="run the endpoints whose name contains this text")
    args = parser.parse_args()
    check_wrk()
    env = {"KEYPLANE_DATABASE_URL": args.database_url} if args.database_url else {}
    database = args.database_url.rsplit("/", 1)[1].split("?")[0] if args.database_url else None
    backends = Backends(database)
    store = "PostgreSQL" if database else "SQLite"
    rows = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        port = free_port()
        server = start_keyplane(tmp / "data", port, extra_env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            endpoints, seeded = seed(base)
            print(f"store: {store}; seeded {seeded}; wrk -t1 -c{CONNECTIONS} -d{args.seconds}s, {args.rounds} rounds")
            counter = 0
            for endpoint in endpoints:
                if args.only and args.only not in endpoint.name:
                    continue
                body_file = tmp / "floor-body.json"
                body_file.write_bytes(sample(base, endpoint).content)
                floor_port = free_port()
                floor = start_floor(body_file, floor_port, read_body=True)
                ours: list[Run] = []
                floors: list[Run] = []
                try:
                    for _ in range(args.rounds):
                        for target in ("keyplane", "floor", "keyplane"):
                            counter += 1
                            script = tmp / f"run-{counter}.lua"
                            script.write_text(lua(endpoint, counter * 10_000_000))
                            if target == "floor":
                                url, pid = f"http://127.0.0.1:{floor_port}{endpoint.path}", floor.pid
                                floors.append(run_wrk(url, script, args.seconds, pid, Backends(None)))
                            else:
                                url = base + endpoint.path
                                ours.append(run_wrk(url, script, args.seconds, server.pid, backends))
                finally:
                    floor.terminate()
                    floor.wait()
                rows.append((endpoint, ours, floors))
                report_row(endpoint, ours, floors, database is not None)
        finally:
            server.terminate()
            server.wait()
    print()
    print_table(rows, store, database is not None)


def report_row(endpoint: Endpoint, ours: list[Run], floors: list[Run], with_db: bool) -> None:
    def runs(values: list[Run]) -> str:
        return ", ".join(f"{r.rate:,.0f}/s {r.us:.0f}µs" for r in values)

    print(f"  {endpoint.name}: keyplane [{runs(ours)}] floor [{runs(floors)}]", flush=True)
    bad = sum(r.non_2xx for r in ours)
    if bad or any(r.errors for r in ours + floors):
        print(f"    non-2xx: {bad}; socket errors: {sum(r.errors for r in ours)} / {sum(r.errors for r in floors)}")


def print_table(rows: list[tuple[Endpoint, list[Run], list[Run]]], store: str, with_db: bool) -> None:
    head = ["endpoint", "req/s", "CPU µs/req", "floor req/s", "floor µs/req", "ratio", "goal", "verdict", "non-2xx"]
    head += ["server CPU", "wrk CPU"] + (["db µs/req"] if with_db else [])
    print(f"| {' | '.join(head)} |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|")
    for endpoint, all_ours, all_floors in rows:
        # a run that completed nothing (the machine stalled) has no CPU per request: left out, and said
        ours, floors = [r for r in all_ours if r.requests], [r for r in all_floors if r.requests]
        if len(ours) < len(all_ours) or len(floors) < len(all_floors):
            print(f"{endpoint.name}: {len(all_ours) + len(all_floors) - len(ours) - len(floors)} empty runs left out")
        us, floor_us = median([r.us for r in ours]), median([r.us for r in floors])
        ratio = us / floor_us
        cells = [
            endpoint.name,
            f"{median([r.rate for r in ours]):,.0f}",
            f"{us:.0f}",
            f"{median([r.rate for r in floors]):,.0f}",
            f"{floor_us:.0f}",
            f"{ratio:.2f}×",
            f"≤ {endpoint.goal:g}×",
            "pass" if ratio <= endpoint.goal else "**fail**",
            str(sum(r.non_2xx for r in ours)),
            f"{median([r.server_cpu / r.seconds for r in ours]):.0%}",
            f"{median([r.wrk_cpu for r in ours]):.0%}",
        ]
        if with_db:
            cells.append(f"{median([1e6 * r.db_cpu / max(1, r.requests) for r in ours]):.0f}")
        print(f"| {' | '.join(cells)} |")
    print(f"({store}; medians over the runs; ratio = Keyplane µs/req ÷ floor µs/req; CPU = share of one core)")


if __name__ == "__main__":
    main()
