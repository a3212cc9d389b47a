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

--interleave: the timed measure without the difference between processes. Two servers of the same
code and settings differ by a few per cent however they are started, and this machine's speed moves
by up to 2x within seconds (the same server: 40 to 90 µs a request in neighbouring half-seconds),
so runs of seconds per server cannot resolve 5 %. Here one server (audit log and metrics on) serves
one continuous `wrk` load per scheme while it switches, every --slice seconds (default 0.1), what
its dispatcher reads on each request between the settings of --servers, as
observability_inprocess.py does in process; each slice's CPU per request is process CPU time (every
thread) over the requests it served, and "paired" is the median over the cycles of each setting's
difference with the first one in the same cycle (~0.3 s apart). Add a control such as `off#2` (the
same setting again): its difference shows the method's spread (within ±1.5 % here). E.g.
python bench/observability.py --interleave --servers off,off#2,metrics,audit,es-default,on --rounds 100

--instructions: the same question answered in instructions instead of time, which this shared
machine cannot resolve (the same server moves ±25 % between timed runs). Each server of --servers
(default off,metrics,audit,es-default; all at once) runs under `valgrind --tool=callgrind
--separate-threads=yes`, every thread counted (the event loop, the audit writer, the rest). A client
in this process sends cached `GET /_security/_authenticate` over real HTTP, by ApiKey then by Basic,
on --connections keep-alive connections (one request outstanding on each, as wrk's), after a
warm-up. For each scheme two phases of the same length (--phase-seconds) follow each other, one with
--requests requests and one with three times as many, spread evenly over the phase and then a
few idle seconds; `callgrind_control --dump` ends each phase. Instructions per served request =
(large phase - small phase) ÷ (the difference in requests), the median of --pairs such pairs:
start-up, warm-up, connections, and what runs per unit of time (timers, idle wake-ups: valgrind
runs everything ~100x slower, so those would weigh ~100x more per request than at full speed)
cancel out. For the same reason what
depends on elapsed time is set as at full speed (~20k requests/s): the audit trail's hand-off timer
and the writer's wake-up interval (10 and 50 ms) are stretched --stretch times (default 100), so that a
hand-off and a write carry as many lines; so are the maintenance jobs' ticks (last-use flushes,
file-realm reads: once a second) and the latency histograms' bounds, so that requests
fall in the bucket they would; and the audit trail's millisecond is held, so that events share their
formatted millisecond (as ~20 do at full speed) instead of each formatting its own. Instructions
stand in for CPU per request; on one core throughput is its inverse, so the share of `off` is the
share of cached-authentication throughput the setting costs. The share counts the event loop's thread
and the audit writer's (the thread that calls os.write); the other threads (the store's, the
connection pool's) only run jobs timed by the clock (last-use flushes, sweeps), the same in every
setting, so they are shown apart (within a few hundred instructions of 0 a request). The pairs of a
run agree within ~1.5 % (the same server, ApiKey: 179,548 and 179,558); the settings' differences
within a few hundred instructions. Run it e.g. as:
python bench/observability.py --instructions [--requests 192] [--phase-seconds 24] [--pairs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
    "audit": {"KEYPLANE_AUDIT_ENABLED": "true", "KEYPLANE_METRICS_ENABLED": "false"},
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


def seed(base: str, timeout: float = 60) -> list[Endpoint]:
    with httpx.Client(base_url=base, auth=ADMIN, timeout=timeout) as c:
        c.put(f"/_security/user/{USER}", json={"password": USER_PASSWORD, "roles": ["superuser"]}).raise_for_status()
        key = c.post("/_security/api_key", json={"name": "bench"}).json()["encoded"]
    return [
        Endpoint("auth ApiKey (cached)", 0, "GET", "/_security/_authenticate", f"ApiKey {key}"),
        Endpoint("auth Basic (cached)", 0, "GET", "/_security/_authenticate", basic_header(USER, USER_PASSWORD)),
    ]


# -- --instructions: instructions per served request under callgrind ---------------------------------

CALLGRIND = ["valgrind", "--tool=callgrind", "--separate-threads=yes", "--dump-instr=no"]
IDLE_TAIL = 3.0  # seconds without requests at the end of a phase: stretched hand-offs and writes finish in it
# Runs `keyplane serve` (as the command line gives it) with what depends on elapsed time set as it
# would be at full speed, though valgrind runs ~100x slower (see --stretch): the audit trail's hand-off
# timer and the writer's interval stretched, so that each hand-off and write carries as many lines
# (and the maintenance jobs' ticks, once a second, so that they weigh on a request as little);
# the latency histograms' bounds stretched, so that requests fall in the bucket they would; the audit
# trail's millisecond held, so that events share a formatted millisecond as ~20 do at full speed (the
# first event's line start stays valid for every later time: each event still makes its comparison).
BOOT = """
import math, runpy
import keyplane.metrics.exposition
import keyplane.metrics.recorder as r
import keyplane.audit.trail as t, keyplane.audit.writer as w
import keyplane.services as s
t.HAND_OFF_INTERVAL_SECONDS *= {0}
w.FLUSH_INTERVAL_SECONDS *= {0}
begin = w.Stamps.begin
def held(self, when):
    head = begin(self, when)
    self.since, self.until = -math.inf, math.inf
    return head
w.Stamps.begin = held
r.LATENCY_BUCKETS = tuple(b * {0} for b in r.LATENCY_BUCKETS)
r._FIRST_BOUND = r.LATENCY_BUCKETS[0]
every = s.Services._every
s.Services._every = staticmethod(lambda t, job, first=None: every(t * {0}, job, first and first * {0}))
runpy.run_module("keyplane.cli", run_name="__main__", alter_sys=True)
"""


# -- --interleave: one server, the settings switched every --slice seconds under load -------------

# Runs `keyplane serve` (audit log and metrics on) so that SIGUSR1 starts, and a second SIGUSR1
# stops, a rotation of what the dispatcher reads on each request through the settings named in the
# data dir's `settings.json`, one --slice each (as observability_inprocess.py swaps them in process),
# recording each slice's process CPU time (every thread) and requests served (the dispatcher's
# request-id counter) to `slices.json`. At a slice's end the trail is handed off and the loop waits
# (idle) for the writer to write it, so that a slice's lines are encoded and written within it. "on"
# writes every event type to a second file of the same node; a name with a suffix (`off#2`) is the
# same setting again, a control that shows the method's own spread. Each cycle turns the order (and
# reverses it every other one) so that no setting always follows the same one.
INTERLEAVE_BOOT = """
import asyncio, json, runpy, signal, time
import keyplane.app as a
from keyplane.audit.events import EVENT_TYPES
from keyplane.audit.trail import AuditTrail
create = a.create_app
def created(settings=None):
    app = create(settings)
    services = app.services
    settings = services.settings
    trail, metrics = services.audit, services.metrics
    path = settings.data_dir / "audit-all.json"
    every = AuditTrail(path, settings.audit_buffer, EVENT_TYPES, settings.node_name, services.node_id)
    setups = dict(off=(None, None), metrics=(None, metrics), audit=(trail, None))
    setups.update({"es-default": (trail, metrics), "on": (every, metrics)})
    plan = json.loads((settings.data_dir / "settings.json").read_text())
    names, slice_seconds = plan["names"], plan["slice"]
    state = dict(handle=None, slices=[], step=0)
    def served():
        return int(repr(app._ids)[6:-1])  # itertools.count(N): the requests given an id so far
    def begin():
        cycle, index = divmod(state["step"], len(names))
        turned = names[cycle % len(names):] + names[:cycle % len(names)]
        name = (turned if cycle % 2 == 0 else turned[::-1])[index]
        if name == "on" and every.writer._fd is None:
            every.writer.open()
        services.audit, services.metrics = setups[name.partition("#")[0]]  # off#2: off again, a control
        state.update(name=name, cycle=cycle, cpu=time.process_time(), wall=time.perf_counter(), count=served())
    def end():
        audit = services.audit
        if audit is not None:  # this slice's lines written within it (the loop waits, idle)
            audit.flush()
            audit.writer._wake.set()  # the writer's own wake-up, as a half-full buffer sets it
            while audit.writer.buffered():
                time.sleep(0.0002)
        cpu, wall, count = time.process_time(), time.perf_counter(), served()
        state["slices"].append(dict(name=state["name"], cycle=state["cycle"], cpu=cpu - state["cpu"],
                                    wall=wall - state["wall"], requests=count - state["count"]))
        state["step"] += 1
    def tick():
        end()
        begin()
        state["handle"] = asyncio.get_running_loop().call_later(slice_seconds, tick)
    def toggle():
        if state["handle"] is None:
            state.update(slices=[], step=0)
            begin()
            state["handle"] = asyncio.get_running_loop().call_later(slice_seconds, tick)
            return
        state["handle"].cancel()
        state["handle"] = None
        end()
        services.audit, services.metrics = trail, metrics
        (settings.data_dir / "slices.json").write_text(json.dumps(state["slices"]))
    inner = app.lifespan
    async def lifespan(scope, receive, send):
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, toggle)
        await inner(scope, receive, send)
    app.lifespan = lifespan
    return app
a.create_app = created
runpy.run_module("keyplane.cli", run_name="__main__", alter_sys=True)
"""


WARM_UP_SECONDS = 1.0  # wrk's connections open and the caches fill before the first slice


def interleaved(names: list[str], tmp: Path, args: argparse.Namespace) -> None:
    """--interleave: one server, every setting measured in turn under one continuous load."""
    data_dir = tmp / "server"
    data_dir.mkdir()
    (data_dir / "settings.json").write_text(json.dumps({"names": names, "slice": args.slice}))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-c", INTERLEAVE_BOOT]
    command += ["serve", "--port", str(port), "--data-dir", str(data_dir), "--log-level", "warning"]
    layout, layout_env = same_layout()
    env = {**os.environ, **layout_env, "ELASTIC_PASSWORD": PASSWORD, **SETTINGS["es-default"]}
    if args.database_url:
        env["KEYPLANE_DATABASE_URL"] = args.database_url
    env.pop("KEYPLANE_TEST_MODE", None)
    proc = subprocess.Popen(layout + pinned(0) + command, env=env, stdout=subprocess.DEVNULL)
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        wait_ready(url, timeout=180)
        endpoints = seed(url)
        measured = args.rounds * len(names) * args.slice
        for counter, endpoint in enumerate(endpoints):
            script = tmp / f"interleave-{counter}.lua"
            script.write_text(lua(endpoint, counter))
            seconds = int(WARM_UP_SECONDS + measured + 2)
            load = subprocess.Popen(
                pinned(1) + ["wrk", "-t1", "-c16", f"-d{seconds}s", "-s", str(script), url + endpoint.path],
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(WARM_UP_SECONDS)
            (data_dir / "slices.json").unlink(missing_ok=True)
            proc.send_signal(signal.SIGUSR1)
            time.sleep(measured)
            proc.send_signal(signal.SIGUSR1)
            out, _ = load.communicate()
            if "Non-2xx" in out or "Socket errors" in out:
                print(out, flush=True)
            slices = json.loads((data_dir / "slices.json").read_text())
            results[endpoint.name] = slices
            print(f"  {endpoint.name}: {len(slices)} slices of {args.slice} s", flush=True)
    finally:
        proc.terminate()
        proc.wait()
    print(json.dumps(results), flush=True)  # the raw figures, before any formatting
    base = names[0]
    print(f"\n| request | setting | req/s (median) | µs CPU/req (median) | CPU/req vs {base} | paired |")
    print("|---|---|---:|---:|---:|---:|")
    for name_of_endpoint, slices in results.items():
        by_cycle: dict[int, dict[str, float]] = {}
        figures: dict[str, list[tuple[float, float]]] = {}
        for one in slices:
            if one["requests"] == 0:
                continue
            us = 1e6 * one["cpu"] / one["requests"]
            figures.setdefault(one["name"], []).append((one["requests"] / one["wall"], us))
            by_cycle.setdefault(one["cycle"], {})[one["name"]] = us
        base_us = median([us for _, us in figures[base]])
        for name in names:
            rate, us = median([r for r, _ in figures[name]]), median([u for _, u in figures[name]])
            # each cycle's difference with the first setting in the same cycle: slow phases cancel
            paired = median([c[name] - c[base] for c in by_cycle.values() if name in c and base in c]) / base_us
            print(f"| {name_of_endpoint} | {name} | {rate:,.0f} | {us:.1f} | {us / base_us - 1:+.1%} | {paired:+.1%} |")


def start_counted(data_dir: Path, port: int, env: dict[str, str], out: Path, stretch: float) -> subprocess.Popen[bytes]:
    """A `keyplane serve` under callgrind, every thread in its own file (``out.<dump>-<thread>``)."""
    command = [*CALLGRIND, f"--callgrind-out-file={out}", sys.executable, "-c", BOOT.format(stretch)]
    command += ["serve", "--port", str(port), "--data-dir", str(data_dir), "--log-level", "warning"]
    full_env = {**os.environ, "PYTHONHASHSEED": "0", "ELASTIC_PASSWORD": PASSWORD, **env}
    full_env.pop("KEYPLANE_TEST_MODE", None)
    return subprocess.Popen(command, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def send(port: int, auth: str, count: int, connections: int, seconds: float) -> float:
    """``count`` requests on ``connections`` keep-alive connections, one outstanding on each, spread
    evenly over ``seconds`` minus the idle tail (as fast as possible when 0); then idle until
    ``seconds`` have passed. Returns how late the last request finished against its schedule."""
    request = f"GET /_security/_authenticate HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {auth}\r\n\r\n"
    loop = asyncio.get_running_loop()
    start = loop.time()
    spread = max(0.0, seconds - IDLE_TAIL)
    each = count // connections

    async def one(index: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for k in range(each):
                delay = start + spread * (k * connections + index) / (each * connections) - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(request.encode())
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"unexpected answer: {head[:80]!r}")
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                await reader.readexactly(int(length[1]) if length else 0)
        finally:
            writer.close()

    await asyncio.gather(*(one(i) for i in range(connections)))
    late = loop.time() - start - spread
    await asyncio.sleep(max(0.0, start + seconds - loop.time()))
    return late


async def callgrind_control(option: str, pid: int) -> None:
    proc = await asyncio.create_subprocess_exec(
        "callgrind_control", option, str(pid), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    if await proc.wait() != 0:
        raise RuntimeError(f"callgrind_control {option} {pid} failed")


def dumped(out: Path, part: int) -> tuple[int, int, int]:
    """Instructions in one dump: the event loop's thread (the first), the audit writer's (the one that
    calls os.write) and the others' together."""
    loop_thread = writer = others = 0
    files = list(out.parent.glob(f"{out.name}.{part}-*"))
    if not files:
        raise RuntimeError(f"no dump {part} of {out}")
    for file in files:
        text = file.read_text(errors="replace")
        found = re.search(r"^(?:summary|totals): *(\d+)", text, re.MULTILINE)
        instructions = int(found[1]) if found else 0
        if file.name.endswith("-01"):
            loop_thread += instructions
        elif re.search(r"\bos_write\b", text):
            writer += instructions
        else:
            others += instructions
    return loop_thread, writer, others


async def count(
    pid: int, port: int, endpoints: list[Endpoint], out: Path, args: argparse.Namespace
) -> dict[str, tuple[Any, ...]]:
    """Per endpoint: instructions per served request on the loop's thread, the writer's, the others'."""
    for endpoint in endpoints:  # warm-up: caches filled, code paths run once
        await send(port, endpoint.auth, 4 * args.connections, args.connections, 0)
    await callgrind_control("--zero", pid)
    part = 0
    result = {}
    served = 2 * (args.requests // args.connections) * args.connections
    for endpoint in endpoints:
        pairs = []
        for _ in range(args.pairs):
            phases = []
            for requests in (args.requests, 3 * args.requests):
                late = await send(port, endpoint.auth, requests, args.connections, args.phase_seconds)
                if late > 1.0:
                    print(f"  warning: {endpoint.name} ran {late:.1f} s late; use a longer --phase-seconds", flush=True)
                await callgrind_control("--dump", pid)
                part += 1
                phases.append(dumped(out, part))
            small, large = phases
            pairs.append([(b - a) / served for a, b in zip(small, large, strict=True)])
        # the median pair by its loop + writer figure: a clock-timed job landing in one phase moves one pair
        pairs.sort(key=lambda figures: figures[0] + figures[1])
        result[endpoint.name] = (*pairs[len(pairs) // 2], [f[0] + f[1] for f in pairs])
    return result


async def instructions(names: list[str], tmp: Path, args: argparse.Namespace) -> None:
    servers = {}
    try:
        for name in names:
            port = free_port()
            out = tmp / f"callgrind-{name}.out"
            servers[name] = (start_counted(tmp / name, port, SETTINGS[name], out, args.stretch), port, out)
        for _, port, _ in servers.values():
            await asyncio.to_thread(wait_ready, f"http://127.0.0.1:{port}", 900)
        endpoints = await asyncio.gather(
            *(asyncio.to_thread(seed, f"http://127.0.0.1:{p}", 600) for _, p, _ in servers.values())
        )
        counted = await asyncio.gather(
            *(
                count(proc.pid, port, ours, out, args)
                for (proc, port, out), ours in zip(servers.values(), endpoints, strict=True)
            )
        )
    finally:
        for proc, _, _ in servers.values():
            proc.terminate()
            proc.wait()
    results = dict(zip(names, counted, strict=True))
    print(json.dumps(results), flush=True)  # the raw figures, before any formatting
    base = names[0]
    print(f"\ninstructions per served request, ({3 * args.requests} - {args.requests}) requests apart")
    print(f"| cached auth | server | loop thread | audit writer | loop + writer | vs {base} | other threads | pairs |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for endpoint in endpoints[0]:
        first = results[base][endpoint.name][0] + results[base][endpoint.name][1]
        for name in names:
            loop_thread, writer, others, spread = results[name][endpoint.name]
            figures = f"{loop_thread:,.0f} | {writer:,.0f} | {loop_thread + writer:,.0f}"
            pairs = ", ".join(f"{v:,.0f}" for v in spread)
            versus = f"{(loop_thread + writer) / first - 1:+.1%}"
            print(f"| {endpoint.name} | {name} | {figures} | {versus} | {others:,.0f} | {pairs} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--database-url", default=None, help="PostgreSQL URL <base>: each server uses its own database <base>_<name>"
    )
    parser.add_argument(
        "--servers",
        default=None,
        help=f"which of {', '.join(SETTINGS)}, comma-separated "
        "(default off,on; off,metrics,audit,es-default with --instructions)",
    )
    parser.add_argument(
        "--interleave", action="store_true", help="one server, the settings switched every --slice seconds (see above)"
    )
    parser.add_argument("--slice", type=float, default=0.1, help="--interleave: seconds per setting in turn")
    parser.add_argument("--instructions", action="store_true", help="count instructions under callgrind (see above)")
    parser.add_argument("--requests", type=int, default=192, help="--instructions: the small phase's requests")
    parser.add_argument("--phase-seconds", type=float, default=24.0, help="--instructions: each phase's length")
    parser.add_argument("--pairs", type=int, default=3, help="--instructions: pairs of phases per scheme (median)")
    parser.add_argument("--connections", type=int, default=16, help="--instructions: keep-alive connections")
    parser.add_argument("--stretch", type=float, default=100.0, help="--instructions: the audit timers' factor")
    args = parser.parse_args()
    if args.instructions:
        with tempfile.TemporaryDirectory() as tmp_dir:
            asyncio.run(instructions((args.servers or "off,metrics,audit,es-default").split(","), Path(tmp_dir), args))
        return
    check_wrk()
    names = (args.servers or "off,on").split(",")
    if args.interleave:
        with tempfile.TemporaryDirectory() as tmp_dir:
            interleaved(names, Path(tmp_dir), args)
        return
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
