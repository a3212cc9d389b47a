"""Run a real ``keyplane serve`` process on a free port for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import pg
from tests.conftest import STORE

PASSWORD = "e2e-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(
        self,
        data_dir: Path,
        database_url: str | None = None,
        test_mode: bool = True,
        password: str | None = PASSWORD,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        # With a certificate the listener speaks TLS only (tests/e2e/test_tls.py).
        self.tls = bool((extra_env or {}).get("KEYPLANE_TLS_CERTIFICATE"))
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.database_url = database_url
        self.log_path = data_dir / f"server-{self.port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYPLANE_", "ELASTIC_PASSWORD"))}
        if password is not None:
            env["ELASTIC_PASSWORD"] = password
        if test_mode:
            env["KEYPLANE_TEST_MODE"] = "1"
        self.env = {**env, **(extra_env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> Server:
        args = [
            sys.executable,
            "-m",
            "keyplane.cli",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]
        if self.database_url and not self.database_url.startswith("sqlite"):
            args += ["--database-url", self.database_url]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()}")
            try:
                self._probe()
                return self
            except (httpx.HTTPError, OSError):
                time.sleep(0.05)
        self.stop()  # not left running behind the failed test
        raise RuntimeError(f"server did not start: {self.log_path.read_text()}")

    def _probe(self) -> None:
        if self.tls:
            # uvicorn listens once the application has started; a handshake may need a client certificate.
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
        else:
            httpx.get(self.url + "/", timeout=0.5)

    def output(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.proc is not None:
            self.log.close()


@contextmanager
def store_database() -> Iterator[str | None]:
    """A fresh PostgreSQL database's URL when that is the store under test (dropped afterwards), else None."""
    if STORE != "postgres":
        yield None
        return
    reason = pg.available()
    if reason:
        pytest.skip(reason)
    url = pg.create_database()
    try:
        yield url
    finally:
        pg.drop_database(url)


@contextmanager
def on_store(data_dir: Path, timeout: float = 60.0, **options: Any) -> Iterator[Server]:
    """A started server on the store under test (a fresh PostgreSQL database when that is the store)."""
    with store_database() as url:
        srv = Server(data_dir, url, **options)
        try:
            yield srv.start(timeout=timeout)
        finally:
            srv.stop()
        if url:
            pg.drop_database(url)
