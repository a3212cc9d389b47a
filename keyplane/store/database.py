"""One async interface over SQLite (embedded default) and PostgreSQL (several nodes).

SQLite runs on SQLAlchemy's sync engine and is called inline: a point query costs ~10-50 us, far
less than a hop to a thread (stack-bench.md). Write transactions are serialised with an asyncio lock
so a transaction that awaits never blocks the event loop on SQLite's file lock. PostgreSQL runs on
SQLAlchemy's asyncpg dialect, and changes are broadcast to every node with LISTEN/NOTIFY.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import Executable

from keyplane.errors import StoreUnavailable

log = logging.getLogger("keyplane.store")

CHANNEL = "keyplane_changes"


@dataclass
class Rows:
    """A fully read result: rows as dicts and the affected row count."""

    rows: list[dict[str, Any]]
    rowcount: int

    def first(self) -> dict[str, Any] | None:
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any:
        return next(iter(self.rows[0].values())) if self.rows else None


class Conn:
    """A connection inside a transaction; every statement is awaited the same way on both stores."""

    def __init__(self, sync: Connection | None = None, aio: AsyncConnection | None = None) -> None:
        self._sync = sync
        self._aio = aio
        self.notices: list[str] = []

    async def execute(self, stmt: Executable, params: Any = None) -> Rows:
        if self._sync is not None:
            result = self._sync.execute(stmt, params) if params is not None else self._sync.execute(stmt)
        else:
            assert self._aio is not None
            result = await (self._aio.execute(stmt, params) if params is not None else self._aio.execute(stmt))
        rows = [dict(r) for r in result.mappings().all()] if result.returns_rows else []
        return Rows(rows, result.rowcount if not result.returns_rows else len(rows))

    def notify(self, kind: str) -> None:
        """Ask every node to drop caches of ``kind`` once this transaction commits."""
        if kind not in self.notices:
            self.notices.append(kind)

    async def run_sync(self, fn: Callable[[Connection], Any]) -> Any:
        if self._sync is not None:
            return fn(self._sync)
        assert self._aio is not None
        return await self._aio.run_sync(fn)


_SQLITE_OUTAGES = ("database is locked", "unable to open database", "disk I/O error", "database or disk is full")
# SQLSTATEs of a PostgreSQL server that is going away, starting up, or refusing this database.
_OUTAGE_STATES = ("08", "57P01", "57P02", "57P03", "55000", "3D000", "53300")


def _is_outage(exc: BaseException) -> bool:
    """Whether an error means the database cannot be used right now (rather than a bad statement)."""
    if isinstance(exc, (OSError, asyncio.TimeoutError, sa_exc.TimeoutError)):
        return True
    if isinstance(exc, sa_exc.InterfaceError):
        return True
    if isinstance(exc, sa_exc.OperationalError):
        # SQLite reports bad statements as OperationalError too; only these mean the file is unusable.
        message = str(exc.orig)
        return not isinstance(exc.orig, sqlite3.Error) or message.startswith(_SQLITE_OUTAGES)
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        cause: BaseException | None = exc.orig
        while cause is not None:
            state = getattr(cause, "sqlstate", None)
            if isinstance(state, str) and state.startswith(_OUTAGE_STATES):
                return True
            cause = cause.__cause__
    return False


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_postgres = url.startswith(("postgresql", "postgres"))
        self._sync_engine: Engine | None = None
        self._aio_engine: AsyncEngine | None = None
        self._write_lock = asyncio.Lock()
        self._listeners: list[Callable[[str], None]] = []
        self._listen_task: asyncio.Task[None] | None = None
        self._lock: Any = None

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> Database:
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{data_dir / 'keyplane.db'}")

    async def open(self) -> None:
        if self.is_postgres:
            url = self.url.replace("postgresql://", "postgresql+asyncpg://", 1).replace(
                "postgres://", "postgresql+asyncpg://", 1
            )
            self._aio_engine = create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
            self._listen_task = asyncio.create_task(self._listen_forever())
        else:
            self._lock_file()
            engine = create_engine(self.url, connect_args={"check_same_thread": False, "timeout": 30})

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA foreign_keys=ON")
                # LIKE is case-sensitive in PostgreSQL; make SQLite agree.
                cur.execute("PRAGMA case_sensitive_like=ON")
                cur.close()
                # Let SQLAlchemy, not pysqlite, decide where transactions begin.
                dbapi_conn.isolation_level = None

            @event.listens_for(engine, "begin")
            def _begin(conn: Connection) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

            self._sync_engine = engine

    def _lock_file(self) -> None:
        """One process per SQLite file: a second one would serve from caches nobody invalidates."""
        path = self.url.removeprefix("sqlite:///")
        if not path or path == ":memory:":
            return
        handle = open(f"{path}.lock", "a+")  # noqa: SIM115 - held open for the life of the process
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise RuntimeError(
                f"{path} is in use by another Keyplane process; several nodes need a shared PostgreSQL "
                "database (--database-url)"
            ) from None
        self._lock = handle

    async def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        if self._listen_task is not None:
            self._listen_task.cancel()
            try:
                await self._listen_task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        if self._aio_engine is not None:
            await self._aio_engine.dispose()
        if self._sync_engine is not None:
            self._sync_engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        """A transaction: committed when the block ends, rolled back when it raises.

        Losing the database (down, unreachable, refusing connections, locked too long) raises
        ``StoreUnavailable``, which clients see as a 503 and retry.
        """
        try:
            async with self._transaction() as conn:
                yield conn
        except Exception as exc:
            if not _is_outage(exc):
                raise
            log.warning("the store is unavailable: %s", exc)
            raise StoreUnavailable(f"the store is unavailable ({type(exc).__name__}); retry later") from exc

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Conn]:
        if self._sync_engine is not None:
            async with self._write_lock:
                with self._sync_engine.begin() as sync:
                    conn = Conn(sync=sync)
                    yield conn
                self._broadcast_local(conn.notices)
            return
        assert self._aio_engine is not None
        async with self._aio_engine.begin() as aio:
            conn = Conn(aio=aio)
            yield conn
            for kind in conn.notices:
                await aio.execute(text("SELECT pg_notify(:c, :k)"), {"c": CHANNEL, "k": kind})
        # Our own NOTIFY comes back through LISTEN too; drop local caches now so this node
        # never serves a stale answer to the caller's next request.
        self._broadcast_local(conn.notices)

    def on_change(self, listener: Callable[[str], None]) -> None:
        self._listeners.append(listener)

    def _broadcast_local(self, kinds: list[str]) -> None:
        for kind in kinds:
            for listener in self._listeners:
                listener(kind)

    async def _listen_forever(self) -> None:
        """Hold a LISTEN connection open; reconnect after a failure and then drop every cache."""
        import asyncpg

        dsn = self.url.replace("postgresql+asyncpg://", "postgresql://", 1)
        while True:
            try:
                conn = await asyncpg.connect(dsn)
                try:
                    await conn.add_listener(CHANNEL, lambda *args: self._broadcast_local([args[3]]))
                    self._broadcast_local(["*"])  # changes may have been missed while disconnected
                    while not conn.is_closed():
                        await asyncio.sleep(1)
                finally:
                    await conn.close()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep listening whatever went wrong
                log.warning("change listener lost its connection (%s); retrying", exc)
                await asyncio.sleep(0.5)
