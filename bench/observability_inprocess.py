"""The audit log's and the metrics' own cost per cached authentication, in process (no HTTP server).

Runs Keyplane's ASGI app directly (one child process per server setting, pinned to CPU 0): 2,000
warm-up requests, then `--requests` cached `GET /_security/_authenticate` calls by ApiKey and by
Basic, then waits for the audit writer to empty its buffer; reports the process CPU time per request
(time.process_time: every thread, the audit writer included). Without uvicorn and httptools in the
figure the denominator is smaller than a served request's, so the ratio overstates the share of a
real request; it is steadier than bench/observability.py on a loaded machine (no sockets, no wrk).
Settings as in bench/observability.py; rounds interleaved, medians.

Run: python bench/observability_inprocess.py [--requests 20000] [--rounds 5] [--servers off,metrics,on,es-default]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from common import pinned  # noqa: E402
from observability import SETTINGS  # noqa: E402

PASSWORD = "bench-password"


async def _measure(scheme: str, requests: int) -> float:
    from keyplane.app import create_app
    from keyplane.config import Settings

    app = create_app(Settings.from_env())
    ready = asyncio.Event()
    startup = [{"type": "lifespan.startup"}]

    async def lifespan_receive() -> Any:
        if startup:
            return startup.pop()
        await asyncio.sleep(3600)

    async def lifespan_send(message: Any) -> None:
        if message["type"] != "lifespan.startup.complete":
            raise SystemExit(f"start-up failed: {message}")
        ready.set()

    asyncio.create_task(app({"type": "lifespan"}, lifespan_receive, lifespan_send))
    await ready.wait()
    basic = b"Basic " + base64.b64encode(f"elastic:{PASSWORD}".encode())

    async def call(method: str, path: str, authorization: bytes, body: bytes = b"") -> list[Any]:
        sent: list[Any] = []

        async def receive() -> Any:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Any) -> None:
            sent.append(message)

        headers = [(b"host", b"bench"), (b"authorization", authorization)]
        if body:
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
        }
        await app(scope, receive, send)
        return sent

    authorization = basic
    if scheme == "apikey":
        created = await call("POST", "/_security/api_key", basic, b'{"name":"bench"}')
        authorization = b"ApiKey " + json.loads(created[1]["body"])["encoded"].encode()
    for _ in range(2_000):
        await call("GET", "/_security/_authenticate", authorization)
    started = time.process_time()
    for _ in range(requests):
        await call("GET", "/_security/_authenticate", authorization)
    audit = app.services.audit
    while audit is not None and audit.figures()[0]:  # rendering and the writer's work count too
        await asyncio.sleep(0.01)
    return 1e6 * (time.process_time() - started) / requests


def child(scheme: str, requests: int) -> None:
    print(json.dumps(asyncio.run(_measure(scheme, requests))), flush=True)
    os._exit(0)  # the app's background tasks and threads are not stopped one by one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--servers", default="off,metrics,on,es-default")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.requests)
        return
    names = args.servers.split(",")
    results: dict[tuple[str, str], list[float]] = {}
    for round_ in range(args.rounds):
        for scheme in ("apikey", "basic"):
            for name in names if round_ % 2 == 0 else names[::-1]:
                with tempfile.TemporaryDirectory() as data_dir:
                    env = {**os.environ, **SETTINGS[name], "ELASTIC_PASSWORD": PASSWORD, "KEYPLANE_DATA_DIR": data_dir}
                    command = [sys.executable, __file__, "--child", scheme, "--requests", str(args.requests)]
                    out = subprocess.run(pinned(0) + command, env=env, capture_output=True, text=True, check=True)
                us = float(out.stdout.strip().splitlines()[-1])
                results.setdefault((scheme, name), []).append(us)
                print(f"  round {round_ + 1} {scheme:6} {name:10} {us:6.2f} µs CPU/req", flush=True)
    print()
    print("| request | server | µs CPU/req (median) | vs off |")
    print("|---|---|---|---|")
    for scheme in ("apikey", "basic"):
        off = statistics.median(results[(scheme, "off")])
        for name in names:
            us = statistics.median(results[(scheme, name)])
            print(f"| cached auth {scheme} | {name} | {us:.2f} | {us / off - 1:+.1%} |")


if __name__ == "__main__":
    main()
