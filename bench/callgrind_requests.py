"""Instructions per request of one cpu.py endpoint, in process, counted by callgrind.

Runs Keyplane's ASGI app in a child process under callgrind (as request_profile.py does: its seed,
16 concurrent tasks), a warm-up of ``--warmup`` requests, then zeroes callgrind's counts
(``callgrind_control --zero``) and runs ``--requests`` more: the counts at exit divided by N are the
instructions per request, by thread (callgrind's thread numbers: 1 is the event loop's) and in all.

Run: python bench/callgrind_requests.py --only "query keys" [--requests 320]
     [--database-url postgresql://postgres@127.0.0.1:5432/scratch]  (dropped and created each run)
A base worktree runs with PYTHONPATH=/path/to/worktree from another directory (cwd /tmp).
CALLGRIND_KEEP=/some/dir keeps callgrind's files there (callgrind_annotate them per thread).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import PASSWORD, callgrind_totals, fresh_database  # noqa: E402


async def child(only: str, warmup: int, requests: int) -> None:
    from inprocess import App
    from request_profile import run, seed

    app = App()
    await app.start()
    endpoints = await seed(app)
    (name,) = [n for n in endpoints if only in n]
    make = endpoints[name]
    await run(app, make, 1_000_000, warmup)
    # Counts start here: what ran before (start-up, seed, warm-up) is dropped by callgrind itself.
    zero = await asyncio.create_subprocess_exec(
        "callgrind_control", "--zero", str(os.getpid()), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    if await zero.wait():
        raise SystemExit("callgrind_control --zero failed")
    await run(app, make, 2_000_000, requests)
    os._exit(0)


def _run(only: str, warmup: int, requests: int, database_url: str | None) -> dict[str, int]:
    keep = os.environ.get("CALLGRIND_KEEP")  # a directory to keep callgrind's files in
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "PYTHONHASHSEED": "0", "ELASTIC_PASSWORD": PASSWORD, "KEYPLANE_DATA_DIR": data_dir}
        env.pop("KEYPLANE_TEST_MODE", None)
        if database_url:
            env["KEYPLANE_DATABASE_URL"] = database_url
            fresh_database(database_url)
        prefix = f"{keep or data_dir}/cg.out"
        command = ["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={prefix}"]
        command += [sys.executable, __file__, "--child", only, "--warmup", str(warmup), "--requests", str(requests)]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(done.stderr[-3000:] + done.stdout[-3000:])
        return callgrind_totals(prefix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=None)
    parser.add_argument("--warmup", type=int, default=320)
    parser.add_argument("--requests", type=int, default=320)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args.child, args.warmup, args.requests))
        return
    if not args.only:
        parser.error("--only is required")
    counted = _run(args.only, args.warmup, args.requests, args.database_url)
    per = {t: n / args.requests for t, n in counted.items()}
    print({t: round(v / 1000, 1) for t, v in sorted(per.items(), key=lambda kv: int(kv[0]))}, end=" ")
    print(f"total {sum(per.values()) / 1000:.1f}k instructions per request")


if __name__ == "__main__":
    main()
