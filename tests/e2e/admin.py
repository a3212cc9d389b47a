"""Helpers of the file-realm and admin-command tests: a server on the store under test, the command, waiting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

from tests.e2e.server import Server

# The server polls the files and notices every second; a change must be seen well within this.
WAIT = 5.0
# Generous: a loaded CI machine can take many seconds to import and start a server.
START_TIMEOUT = 90.0


def keyplane(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``keyplane ARGS`` in a process of its own, with none of the test's Keyplane settings in its environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KEYPLANE_", "ELASTIC_PASSWORD"))}
    return subprocess.run(
        [sys.executable, "-m", "keyplane.cli", *args],
        input=stdin,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def store_flags(server: Server) -> list[str]:
    """The flags that point a command at the store ``server`` uses."""
    if server.database_url:
        return ["--database-url", server.database_url]
    return ["--data-dir", str(server.data_dir)]


def eventually(check: Callable[[], bool], wait: float = WAIT) -> float:
    """Seconds until ``check`` held; fails after ``wait``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < wait, "the server did not pick up the change in time"
        time.sleep(0.1)
    return time.monotonic() - start
