"""Instructions per request of request_profile.py's endpoints, in process, under callgrind.

Runs the app in process (bench/inprocess.py) under `valgrind --tool=callgrind --separate-threads=yes`
twice per endpoint: seed, warm-up, then 0 requests, and the same with `--requests` requests from 16
concurrent tasks. The difference of the two runs' totals, divided by the requests, is the count per
request of each thread kind (loop, reader, writer, other): start-up, seed and warm-up cancel.
`PYTHONHASHSEED=0` for both. Whole-process counts on write paths vary by a few per cent between
identical runs (group commit timing); the loop thread's count is steadier.

Run: python bench/request_instructions.py --only "query keys" [--requests 320] [--database-url URL]
       [--keep DIR]  (the callgrind files of the measured run stay in DIR for callgrind_annotate)
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

sys.path.insert(0, str(Path(__file__).parent))
from common import PASSWORD  # noqa: E402


async def child(name: str, requests: int, warmup: int) -> None:
    from inprocess import App
    from request_profile import run, seed

    app = App()
    await app.start()
    endpoints = await seed(app)
    make = endpoints[name]
    await run(app, make, 1_000_000, warmup)
    if requests:
        await run(app, make, 2_000_000, requests)


def thread_totals(directory: Path) -> dict[str, int]:
    """Instructions of each callgrind thread file, keyed by thread kind (by file order: 1 = loop)."""
    out: dict[str, int] = {}
    for path in sorted(directory.glob("cg.out*")):
        text = path.read_text(errors="replace")
        total = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.M)
        thread = re.search(r"-(\d+)$", path.name)
        if not total:
            continue
        key = "loop" if thread and thread.group(1) == "01" else f"thread-{thread.group(1) if thread else '?'}"
        out[key] = out.get(key, 0) + int(total.group(1))
    return out


def fresh_database(url: str) -> None:
    """Drop and create the scratch database of ``url``, so both runs start from the same store."""
    import asyncpg

    base, name = url.rsplit("/", 1)

    async def recreate() -> None:
        conn = await asyncpg.connect(base + "/postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(recreate())


def measure(name: str, requests: int, warmup: int, database_url: str | None, keep: str | None) -> dict[str, int]:
    if database_url:
        fresh_database(database_url)
    with tempfile.TemporaryDirectory() as data_dir, tempfile.TemporaryDirectory() as out_dir:
        env = {**os.environ, "ELASTIC_PASSWORD": PASSWORD, "KEYPLANE_DATA_DIR": data_dir, "PYTHONHASHSEED": "0"}
        env.pop("KEYPLANE_TEST_MODE", None)
        if database_url:
            env["KEYPLANE_DATABASE_URL"] = database_url
        command = [
            "valgrind",
            "--tool=callgrind",
            "--separate-threads=yes",
            "--dump-instr=no",
            f"--callgrind-out-file={out_dir}/cg.out",
            sys.executable,
            __file__,
            "--child",
            name,
            "--requests",
            str(requests),
            "--warmup",
            str(warmup),
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(done.stderr[-3000:])
        if keep and requests:
            Path(keep).mkdir(parents=True, exist_ok=True)
            for path in Path(out_dir).glob("cg.out*"):
                (Path(keep) / path.name).write_bytes(path.read_bytes())
        return thread_totals(Path(out_dir))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="the endpoint whose name contains this text")
    parser.add_argument("--requests", type=int, default=320)
    parser.add_argument("--warmup", type=int, default=320)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--keep", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args.child, args.requests, args.warmup))
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
    name = next(n for n in names if args.only in n)
    base = measure(name, 0, args.warmup, args.database_url, None)
    full = measure(name, args.requests, args.warmup, args.database_url, args.keep)
    per = {k: (full.get(k, 0) - base.get(k, 0)) / args.requests for k in sorted(set(base) | set(full))}
    per["process"] = sum(per.values())
    print(json.dumps({"endpoint": name, "instructions_per_request": {k: round(v) for k, v in per.items()}}))


if __name__ == "__main__":
    main()
