"""Instructions per connector request under callgrind, in process (no HTTP server).

Runs request_profile.py's seed in a child under ``valgrind --tool=callgrind`` (``PYTHONHASHSEED=0``),
a warm-up of 160 requests, then ``--requests`` requests from 16 tasks; and the same child again with
no measured requests. The difference of the two runs' instruction counts (every thread of the
process) divided by the requests is the figure: start-up, seed and warm-up cancel out. Best on a
quiet machine; the counts do not depend on the machine's speed.

Run: python bench/connector_instructions.py [--only list] [--requests 320] [--database-url URL]
(with ``PYTHONPATH=<worktree>`` from another directory to measure another checkout).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).parent))
from common import PASSWORD  # noqa: E402

WARM_UP = 160


async def child(name: str, requests: int) -> None:
    from inprocess import App
    from request_profile import run, seed

    app = App()
    await app.start()
    make = (await seed(app))[name]
    await run(app, make, 0, WARM_UP)
    if requests:
        await run(app, make, 1_000_000, requests)


def fresh(database_url: str) -> None:
    """Drop and create the scratch database, so both runs start from the same empty store."""
    url = urlparse(database_url)
    where = ["-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres"]
    name = url.path.lstrip("/")
    subprocess.run(["dropdb", *where, "--if-exists", name], check=True)
    subprocess.run(["createdb", *where, name], check=True)


def instructions(name: str, requests: int, database_url: str | None) -> int:
    with tempfile.TemporaryDirectory() as data_dir:
        out = Path(data_dir) / "callgrind.out"
        env = {**os.environ, "ELASTIC_PASSWORD": PASSWORD, "KEYPLANE_DATA_DIR": data_dir, "PYTHONHASHSEED": "0"}
        env.pop("KEYPLANE_TEST_MODE", None)
        if database_url:
            env["KEYPLANE_DATABASE_URL"] = database_url
            fresh(database_url)
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        command += [sys.executable, __file__, "--child", name, "--requests", str(requests)]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(done.stderr[-3000:] + done.stdout[-3000:])
        found = re.search(r"^(?:summary|totals): (\d+)", out.read_text(errors="replace"), re.M)
        assert found is not None
        return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="list connectors", help="the endpoint whose name contains this text")
    parser.add_argument("--requests", type=int, default=320)
    parser.add_argument("--pairs", type=int, default=1)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args.child, args.requests))
        os._exit(0)  # the app's background tasks and threads are not stopped one by one
    names = [
        "list connectors, size 20",
        "connector configuration values, 16 connectors",
    ]
    name = next(n for n in names if args.only in n)
    for _ in range(args.pairs):
        base = instructions(name, 0, args.database_url)
        full = instructions(name, args.requests, args.database_url)
        print(json.dumps({"endpoint": name, "per_request": round((full - base) / args.requests)}), flush=True)


if __name__ == "__main__":
    main()
