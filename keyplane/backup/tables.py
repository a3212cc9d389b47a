"""The tables a backup holds, and a synchronous connection to either store for backup and restore.

Every table of ``keyplane.store.schema`` is backed up (tables added there later are included
without a change here) except those a restore rebuilds: the schema version, which the header
carries, and the API-key count tables, which the triggers on ``api_keys`` fill again as its rows
go in (their layout differs between the stores, so copying them across would be wrong).

Both stores are worked through one synchronous SQLAlchemy ``Connection``: a plain one on SQLite,
and on PostgreSQL the asyncpg dialect's, driven by ``AsyncConnection.run_sync`` (the project's only
PostgreSQL driver). Streaming reads (``yield_per``) use a server-side cursor on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

import orjson
from sqlalchemy import Engine, Table, create_engine, event, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from keyplane.backup.fileformat import BackupError
from keyplane.store import schema

T = TypeVar("T")

DERIVED = frozenset({schema.schema_version.name, schema.api_key_counts.name, schema.api_key_expiry_counts.name})


def backed_up() -> list[Table]:
    return [t for t in schema.metadata.sorted_tables if t.name not in DERIVED]


def table_named(name: str) -> Table | None:
    table = schema.metadata.tables.get(name)
    return table if table is not None and name not in DERIVED else None


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql", "postgres"))


def store_url(data_dir: Path, database_url: str | None) -> str:
    """The store the server would use with these settings."""
    return database_url or f"sqlite:///{data_dir / 'keyplane.db'}"


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def schema_version(conn: Connection) -> int:
    """The schema version of the store (0 when it has none yet)."""
    if schema.schema_version.name not in inspect(conn).get_table_names():
        return 0
    return int(conn.execute(select(schema.schema_version.c.version)).scalar() or 0)


def _sqlite_engine(path: Path, *, write: bool) -> Engine:
    engine = create_engine(
        f"sqlite:///{path}",
        poolclass=NullPool,
        hide_parameters=True,
        connect_args={"timeout": 5},
        json_deserializer=orjson.loads,  # JSON columns parsed at C speed (the stdlib's is several times slower)
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        # Transactions are begun below, not by pysqlite (which begins none before a SELECT or DDL).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if write:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
        else:
            cur.execute("PRAGMA query_only=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # A read transaction holds one WAL snapshot from its first read until it ends; a write one
        # takes the write lock at once.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def run(url: str, fn: Callable[[Connection], T], *, write: bool) -> T:
    """Run ``fn`` in one transaction on the store: committed if it returns, rolled back if it raises.

    A read (``write=False``) is one snapshot of the whole store: a read transaction over the WAL on
    SQLite, a REPEATABLE READ READ ONLY transaction on PostgreSQL.
    """
    if is_postgres(url):
        return asyncio.run(_run_pg(url, fn, write=write))
    engine = _sqlite_engine(sqlite_path(url), write=write)
    try:
        with engine.connect() as conn, conn.begin():
            return fn(conn)
    finally:
        engine.dispose()


async def _run_pg(url: str, fn: Callable[[Connection], T], *, write: bool) -> T:
    # Imported here: SQLAlchemy's asyncio extension (and its ORM) is PostgreSQL's alone (keyplane.store.postgres).
    from sqlalchemy.ext.asyncio import create_async_engine

    driver_url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    driver_url = driver_url.replace("postgres://", "postgresql+asyncpg://", 1)
    engine = create_async_engine(driver_url, poolclass=NullPool, hide_parameters=True, json_deserializer=orjson.loads)
    try:
        async with engine.connect() as aconn:
            if not write:
                aconn = await aconn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            async with aconn.begin():
                return await aconn.run_sync(fn)
    finally:
        await engine.dispose()


@contextmanager
def sqlite_server_stopped(path: Path) -> Iterator[None]:
    """Hold the lock a server takes on its SQLite file (``keyplane.db.lock``), or say it runs."""
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    handle: IO[str] = os.fdopen(fd, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise BackupError(
                f"a Keyplane server is running on {path}: stop it before restoring (its caches would be stale)"
            ) from None
        yield
    finally:
        handle.close()
