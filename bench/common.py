"""Helpers shared by the benchmarks: start servers, free ports, timing."""

from __future__ import annotations

import os
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
) -> subprocess.Popen:
    env = {**os.environ, "ELASTIC_PASSWORD": PASSWORD, **(extra_env or {})}
    env.pop("KEYPLANE_TEST_MODE", None)
    proc = subprocess.Popen(
        pinned(cpu)
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


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def median(values: list[float]) -> float:
    return statistics.median(values)
