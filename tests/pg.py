"""PostgreSQL for tests: a fresh database per use, or a clear reason to skip."""

from __future__ import annotations

import os
import secrets
import socket
from urllib.parse import urlsplit, urlunsplit

ADMIN_URL = os.environ.get("KEYPLANE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    parts = urlsplit(ADMIN_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), timeout=1):
            return None
    except OSError as exc:
        return f"PostgreSQL is not reachable at {ADMIN_URL} ({exc})"


def _run(sql: str) -> None:
    import asyncio

    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


def create_database() -> str:
    """Create an empty database and return its URL."""
    name = "keyplane_test_" + secrets.token_hex(6)
    _run(f'CREATE DATABASE "{name}"')
    parts = urlsplit(ADMIN_URL)
    return urlunsplit(parts._replace(path="/" + name))


def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    _run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def set_accepting(url: str, accepting: bool) -> None:
    """Let a database take connections, or refuse new ones and cut the open ones (an outage, as nodes see it)."""
    name = urlsplit(url).path.lstrip("/")
    _run(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(accepting).lower()}')
    if not accepting:
        _run(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
