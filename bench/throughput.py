"""Authenticated throughput: GET /_security/_authenticate with an ApiKey header, one worker,
beside a raw ASGI app on the same server (uvicorn, uvloop, httptools) returning the same bytes.

Run: python bench/throughput.py [--seconds 10] [--rounds 3]   (needs wrk: apt-get install wrk)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import PASSWORD, free_port, median, pinned, start_keyplane, wait_ready  # noqa: E402


def wrk(url: str, header: str, seconds: int, connections: int) -> float:
    out = subprocess.run(
        pinned(1) + ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-H", header, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = start_keyplane(Path(tmp), port)
        base = f"http://127.0.0.1:{port}"
        try:
            key = httpx.post(base + "/_security/api_key", json={"name": "bench"}, auth=("elastic", PASSWORD)).json()
            header = f"Authorization: ApiKey {key['encoded']}"
            body = httpx.get(base + "/_security/_authenticate", headers={"Authorization": f"ApiKey {key['encoded']}"})
            body_file = Path(tmp) / "body.json"
            body_file.write_bytes(body.content)
            floor_port = free_port()
            floor = subprocess.Popen(
                pinned(0)
                + [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "floor_app:app",
                    "--port",
                    str(floor_port),
                    "--loop",
                    "uvloop",
                    "--http",
                    "httptools",
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                cwd=Path(__file__).parent,
                env={**os.environ, "FLOOR_BODY_FILE": str(body_file)},
            )
            wait_ready(f"http://127.0.0.1:{floor_port}")
            ours, floors = [], []
            for _ in range(args.rounds):
                ours.append(wrk(base + "/_security/_authenticate", header, args.seconds, args.connections))
                floors.append(wrk(f"http://127.0.0.1:{floor_port}/", header, args.seconds, args.connections))
            floor.terminate()
        finally:
            server.terminate()
    print(
        f"keyplane _authenticate (ApiKey): {median(ours):,.0f} req/s (rounds: {', '.join(f'{v:,.0f}' for v in ours)})"
    )
    rounds = ", ".join(f"{v:,.0f}" for v in floors)
    print(f"raw ASGI floor, same bytes:      {median(floors):,.0f} req/s (rounds: {rounds})")
    print(f"ratio: {100 * median(ours) / median(floors):.0f}% of the floor (target: at least 40%)")


if __name__ == "__main__":
    main()
