"""Instructions per `_bulk` document, in process, counted by callgrind (or profiled with cProfile).

Runs Keyplane's ASGI app in this process (bench/inprocess.py), creates an index, sends ``--warmup``
documents in `_bulk` requests of 1,000 (bulk_search.py's documents), then ``--docs`` more. Run under
`valgrind --tool=callgrind --separate-threads=yes` twice, with ``--docs N`` and ``--docs 0``: the
difference of the totals divided by N is the instructions per document of each thread (1 = the event
loop), with start-up and warm-up cancelled. ``PYTHONHASHSEED=0`` for both.

Run: python bench/bulk_instructions.py [--docs 10000] [--database-url postgresql://postgres@127.0.0.1:5432/scratch]
     (the database is dropped and created for each run)
     python bench/bulk_instructions.py --profile [--database-url ...]  (cProfile of the measured part, no valgrind)
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bulk_search import BATCH, batch_body  # noqa: E402
from common import PASSWORD, callgrind_totals, fresh_database  # noqa: E402


async def child(warmup: int, docs: int, profile: bool) -> None:
    from inprocess import App

    app = App()
    await app.start()
    status, body = await app.call("PUT", "/bench")
    assert status == 200, body

    async def load(start: int, count: int) -> None:
        for first in range(start, start + count, BATCH):
            status, body = await app.call(
                "POST", "/_bulk", batch_body("bench", first, min(BATCH, start + count - first))
            )
            if status != 200 or b'"errors":false' not in body:
                raise SystemExit(f"bulk failed: {status} {body[:300]!r}")

    await load(0, warmup)
    if profile:
        prof = cProfile.Profile()
        prof.enable()
        await load(warmup, docs)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(40)
    elif docs:
        await load(warmup, docs)
    os._exit(0)


def measure(docs: int, warmup: int, database_url: str | None, keep: str | None) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as data_dir, tempfile.TemporaryDirectory() as out_dir:
        env = {**os.environ, "ELASTIC_PASSWORD": PASSWORD, "KEYPLANE_DATA_DIR": data_dir, "PYTHONHASHSEED": "0"}
        env.pop("KEYPLANE_TEST_MODE", None)
        if database_url:
            env["KEYPLANE_DATABASE_URL"] = database_url
            fresh_database(database_url)
        directory = Path(keep) if keep else Path(out_dir)
        directory.mkdir(parents=True, exist_ok=True)
        command = ["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={directory}/cg.out"]
        command += [sys.executable, __file__, "--child", "--warmup", str(warmup), "--docs", str(docs)]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(done.stderr[-3000:])
        return callgrind_totals(f"{directory}/cg.out")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=3_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--keep", default=None, help="keep the measured run's callgrind files in this directory")
    parser.add_argument("--profile", action="store_true", help="cProfile the measured part instead of callgrind")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child or args.profile:
        if args.profile and args.database_url:
            os.environ["KEYPLANE_DATABASE_URL"] = args.database_url
        if args.profile:
            os.environ.setdefault("ELASTIC_PASSWORD", PASSWORD)
            os.environ.setdefault("KEYPLANE_DATA_DIR", tempfile.mkdtemp(prefix="kp-bulk-prof-"))
        asyncio.run(child(args.warmup, args.docs, args.profile))
        return
    full = measure(args.docs, args.warmup, args.database_url, args.keep)
    none = measure(0, args.warmup, args.database_url, None)
    store = "PostgreSQL" if args.database_url else "SQLite"
    print(f"{store}: instructions per document over {args.docs:,} documents (after {args.warmup:,}), by thread")
    for key in sorted(set(full) | set(none)):
        print(f"  thread {key}: {(full.get(key, 0) - none.get(key, 0)) / args.docs / 1000:,.1f}k")
    print(f"  process: {(sum(full.values()) - sum(none.values())) / args.docs / 1000:,.1f}k")


if __name__ == "__main__":
    main()
