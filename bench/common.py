"""Helpers shared by the benchmarks: start servers, free ports, timing."""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

PASSWORD = "bench-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cpu: int) -> list[str]:
    """Prefix a command with taskset when there is more than one core, so load and server don't compete."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu)]
    return []


def same_layout() -> tuple[list[str], dict[str, str]]:
    """A command prefix and environment that give every server process the same memory layout.

    Without address-space randomisation and with one hash seed, two servers of the same code differ
    by under 3 % in CPU per request; with them, by up to 9 % (measured with three identical servers),
    which drowned the few per cent the side-by-side benchmarks look for."""
    prefix = ["setarch", os.uname().machine, "-R"] if shutil.which("setarch") else []
    return prefix, {"PYTHONHASHSEED": "0"}


def wait_ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not start")


def start_keyplane(
    data_dir: Path, port: int, cpu: int = 0, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    layout, layout_env = same_layout()
    env = {**os.environ, **layout_env, "ELASTIC_PASSWORD": PASSWORD, **(extra_env or {})}
    env.pop("KEYPLANE_TEST_MODE", None)
    proc = subprocess.Popen(
        layout
        + pinned(cpu)
        + [
            sys.executable,
            "-m",
            "keyplane.cli",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_ready(f"http://127.0.0.1:{port}")
    return proc


def start_floor(body_file: Path, port: int, cpu: int = 0, read_body: bool = False) -> subprocess.Popen[bytes]:
    """The raw ASGI floor (floor_app.py) on the server settings Keyplane uses: uvicorn, uvloop, httptools."""
    layout, layout_env = same_layout()
    env = {**os.environ, **layout_env, "FLOOR_BODY_FILE": str(body_file), "FLOOR_READ_BODY": "1" if read_body else "0"}
    proc = subprocess.Popen(
        layout
        + pinned(cpu)
        + [sys.executable, "-m", "uvicorn", "floor_app:app", "--port", str(port), "--loop", "uvloop"]
        + ["--http", "httptools", "--no-access-log", "--log-level", "warning"],
        cwd=Path(__file__).parent,
        env=env,
    )
    wait_ready(f"http://127.0.0.1:{port}")
    return proc


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads included (/proc/<pid>/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state), so field 14 is fields[11]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def fresh_database(database_url: str) -> None:
    """Drop and create the PostgreSQL database of ``database_url``, so a run starts from an empty store."""
    base, name = database_url.rsplit("/", 1)
    for sql in (f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"):
        subprocess.run(["psql", f"{base}/postgres", "-qc", sql], check=True, capture_output=True)


def callgrind_totals(out_prefix: str) -> dict[str, int]:
    """Instructions by callgrind thread number (1 is the main thread) from the files callgrind wrote
    with ``--separate-threads=yes --callgrind-out-file=<out_prefix>``."""
    totals: dict[str, int] = {}
    for path in sorted(Path(out_prefix).parent.glob(Path(out_prefix).name + "*")):
        total = re.search(r"^(?:totals|summary):\s+(\d+)", path.read_text(errors="replace"), re.M)
        if total is None:
            continue
        thread = re.search(r"-(\d+)$", path.name)
        number = str(int(thread.group(1))) if thread else "1"
        totals[number] = totals.get(number, 0) + int(total.group(1))
    return totals
