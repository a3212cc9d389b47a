"""The audit log's and the metrics' own cost per cached authentication, in process (no HTTP server).

One process (pinned to CPU 0) runs Keyplane's ASGI app directly with the audit log and the metrics on,
and switches them per block of requests by swapping the services the dispatcher reads on each
request: `off` (neither), `metrics` (metrics only), `es-default` (metrics and the audit log with its
default event types, Elasticsearch's selection without `authentication_success`) and `on` (metrics
and every event type, `_all`, to a second file). Each round runs one block of `--block` cached
`GET /_security/_authenticate` calls per setting, in an order that turns every round, and waits for
the audit writer to empty its buffer, so its thread's work counts too. A block's figure is process
CPU time per request (time.process_time: every thread); the report gives medians over the rounds and
the median of each round's difference with `off` taken in the same round, which drifting machine
load affects least. Without uvicorn and httptools the denominator is smaller than a served
request's, so the share overstates what a served request pays; the µs difference is the cost itself.

Run: python bench/observability_inprocess.py [--block 1000] [--rounds 40] [--scheme apikey,basic]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import PASSWORD, pinned  # noqa: E402
from inprocess import App  # noqa: E402

SETTINGS = ("off", "metrics", "es-default", "on")


async def _measure(scheme: str, block: int, rounds: int) -> dict[str, list[float]]:
    from keyplane.audit.events import EVENT_TYPES
    from keyplane.audit.trail import AuditTrail

    harness = App()
    await harness.start()
    services = harness.app.services
    settings = services.settings
    authorization = harness.basic
    if scheme == "apikey":
        _, created = await harness.call("POST", "/_security/api_key", b'{"name":"bench"}')
        authorization = b"ApiKey " + json.loads(created)["encoded"].encode()
    default_trail, metrics = services.audit, services.metrics
    assert default_trail is not None and metrics is not None, "run with the audit log and the metrics on"
    # The same node as the default trail's: the dispatcher keeps a connection's access_granted middle,
    # which names the node, whichever trail it was made by.
    all_trail = AuditTrail(
        settings.data_dir / "audit-all.json", settings.audit_buffer, EVENT_TYPES, settings.node_name, services.node_id
    )
    all_trail.writer.open()
    setups = {"off": (None, None), "metrics": (None, metrics), "es-default": (default_trail, metrics)}
    setups["on"] = (all_trail, metrics)
    for _ in range(2_000):
        await harness.call("GET", "/_security/_authenticate", authorization=authorization)
    results: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for round_ in range(rounds):
        order = SETTINGS[round_ % len(SETTINGS) :] + SETTINGS[: round_ % len(SETTINGS)]
        for name in order if round_ % 2 == 0 else order[::-1]:
            services.audit, services.metrics = setups[name]
            started = time.process_time()
            for _ in range(block):
                await harness.call("GET", "/_security/_authenticate", authorization=authorization)
            trail = services.audit
            if trail is not None:
                trail.flush()  # what is queued is rendered, and the writer's work counts too
                # woken now rather than at its next interval (up to 50 ms of polling counted in the block)
                trail.writer._wake.set()
                while trail.figures()[0]:
                    await asyncio.sleep(0.001)
            results[name].append(1e6 * (time.process_time() - started) / block)
    return results


def child(scheme: str, block: int, rounds: int) -> None:
    print(json.dumps(asyncio.run(_measure(scheme, block, rounds))), flush=True)
    os._exit(0)  # the app's background tasks and threads are not stopped one by one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--block", type=int, default=1_000, help="requests per setting and round")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--scheme", default="apikey,basic")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.block, args.rounds)
        return
    print("| cached auth | setting | µs CPU/req (median) | paired difference with off | share of off |")
    print("|---|---|---:|---:|---:|")
    for scheme in args.scheme.split(","):
        with tempfile.TemporaryDirectory() as data_dir:
            env = {
                **os.environ,
                "KEYPLANE_AUDIT_ENABLED": "true",
                "KEYPLANE_METRICS_ENABLED": "true",
                "ELASTIC_PASSWORD": PASSWORD,
                "KEYPLANE_DATA_DIR": data_dir,
            }
            command = [sys.executable, __file__, "--child", scheme, "--block", str(args.block)]
            command += ["--rounds", str(args.rounds)]
            out = subprocess.run(pinned(0) + command, env=env, capture_output=True, text=True, check=True)
        results: dict[str, list[float]] = json.loads(out.stdout.strip().splitlines()[-1])
        off = statistics.median(results["off"])
        for name in SETTINGS:
            us = statistics.median(results[name])
            paired = statistics.median(a - b for a, b in zip(results[name], results["off"], strict=True))
            print(f"| {scheme} | {name} | {us:.2f} | {paired:+.2f} µs | {paired / off:+.1%} |", flush=True)


if __name__ == "__main__":
    main()
