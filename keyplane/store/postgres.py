"""PostgreSQL transactions on the node's pool of asyncpg connections (see :mod:`keyplane.store.database`).

Imported by ``Database`` only for a PostgreSQL URL: asyncpg, SQLAlchemy's asyncio extension (with
its ORM) and the asyncpg dialect add about 10 MiB to a node's resident memory, which a node on the
embedded SQLite store never uses.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, cast

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection, PGDialect_asyncpg
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keyplane.store import prepared
from keyplane.store.database import CHANNEL, Conn, Rows, Statement, T, _rows
from keyplane.store.prepared import Compiled, Prepared


class _PgConn(Conn):
    """A transaction on PostgreSQL, on one connection of the node's pool (``_PgPool``) held until it ends.

    Statements run on asyncpg itself: prepared ones (keyplane.store.prepared) and plain selects in
    their compiled form. Reads that come before anything else run outside a transaction block: under
    READ COMMITTED every statement of a transaction takes its own snapshot anyway, so a read-only
    request needs no BEGIN and COMMIT round trips. The first write (or locking read) sends BEGIN; the
    end sends the change notices and COMMIT as one simple query, or ROLLBACK. SQLAlchemy's own
    execution serves only what needs it (statements it rewrites at each call, ``run_sync``), on the
    same connection through its asyncpg adapter kept in autocommit (``_LendingDialect``): it sends
    no transaction control of its own, so the block begun here holds every statement, and a request
    pays for SQLAlchemy's connection and transaction handling only when it uses it.
    """

    def __init__(self, engine: AsyncEngine, pool: _PgPool) -> None:
        super().__init__()
        self._engine = engine
        self._dialect = engine.dialect
        self._pool = pool
        self._driver: Any = None  # the pool's connection (a _PoolConnection), held until the end
        self._begun = False  # BEGIN sent: statements from here on are in the transaction block
        self._aio: AsyncConnection | None = None  # SQLAlchemy on the same connection, once needed
        self._notified = 0  # notices already sent (with a statement alone, ``execute_alone``)
        # Whether notices may have been committed, whatever this transaction's end: sent and not
        # refused by the server (a statement alone, or a COMMIT, cancelled while under way included).
        self.maybe_notified = False

    async def _held(self) -> Any:
        if self._driver is None:
            # An idle connection without a coroutine of the pool's; else wait for one.
            self._driver = self._pool.take_idle()
            if self._driver is None:
                try:
                    self._driver = await self._pool.acquire()
                except Exception as exc:
                    raise _pg_error(self._dialect, "", exc) from exc
        return self._driver

    async def execute(self, stmt: Statement, params: Any = None) -> Rows:
        if isinstance(stmt, Prepared):
            return await self._direct(stmt.compiled(self._dialect), params, begin=not stmt.is_read)
        found = prepared.dynamic(stmt, self._dialect, params)
        if found is not None:  # a plain select: its SQL compiled once per shape, run on asyncpg
            return await self._direct(*found, begin=False)
        aio = await self._sqlalchemy()
        result = await (aio.execute(stmt, params) if params is not None else aio.execute(stmt))
        return _rows(result)

    async def execute_alone(self, stmt: Statement, params: Any = None) -> Rows:
        if isinstance(stmt, Prepared) and not self._begun:
            compiled = stmt.compiled(self._dialect)
            if not self.notices:
                # Its own transaction (autocommit): no BEGIN and COMMIT round trips.
                return await self._direct(compiled, params, begin=False)
            sql = _notifying_sql(compiled, len(self.notices)) if not self._notified else None
            if sql is not None:
                # The write and its notices in one statement, so in one transaction: one round trip.
                args = (*compiled.args(params), *self.notices)
                driver = await self._held()
                self.maybe_notified = True
                try:
                    found = await driver.fetchval(sql, *args)
                except Exception as exc:
                    self.maybe_notified = False  # refused: its transaction (its notices) did not commit
                    raise self._failed(sql, exc) from exc
                self._notified = len(self.notices)
                return Rows([], int(found))
        return await self.execute(stmt, params)

    async def run_sync(self, fn: Callable[[Connection], T]) -> T:
        return await (await self._sqlalchemy()).run_sync(fn)

    async def _direct(self, compiled: Compiled, params: Any, *, begin: bool) -> Rows:
        args = compiled.args(params)
        driver = await self._held()
        try:
            if begin and not self._begun:
                await driver.execute("BEGIN")
                self._begun = True
            if compiled.returns_rows:
                records = await driver.fetch(compiled.sql, *args)
            else:
                status = await driver.execute(compiled.sql, *args)
        except Exception as exc:
            raise self._failed(compiled.sql, exc) from exc
        if compiled.returns_rows:
            rows = compiled.rows(records)
            return Rows(rows, len(rows))
        count = str(status).rsplit(" ", 1)[-1]
        return Rows([], int(count) if count.isdigit() else -1)

    async def _sqlalchemy(self) -> AsyncConnection:
        """SQLAlchemy's connection on this transaction's own connection, inside its transaction block."""
        if self._aio is None:
            driver = await self._held()
            try:
                if not self._begun:
                    await driver.execute("BEGIN")
                    self._begun = True
            except Exception as exc:
                raise self._failed("BEGIN", exc) from exc
            self._aio = await driver.sqlalchemy(self._engine)
        return self._aio

    def _failed(self, sql: str, exc: Exception) -> BaseException:
        """The exception SQLAlchemy would raise for ``exc``; a connection it broke is not reused."""
        error = _pg_error(self._dialect, sql, exc)
        driver = self._driver
        if driver is not None and isinstance(error, sa_exc.DBAPIError):
            if _closed(driver) or self._dialect.is_disconnect(cast(Any, error.orig), None, None):
                error.connection_invalidated = True
                _drop(driver)
        return error

    async def finish(self, ok: bool) -> None:
        """Commit (with the change notices) or roll back, and give the connection back."""
        aio, self._aio = self._aio, None
        try:
            if aio is not None:
                try:
                    if aio.in_transaction():
                        # SQLAlchemy's own transaction ends with the block's; its adapter is in
                        # autocommit and sends nothing.
                        await aio.rollback()
                    if _closed(self._driver):
                        await aio.close()  # the connection is gone (see _PoolConnection._close_sqlalchemy)
                except Exception:  # noqa: BLE001 - its connection is unusable: nothing commits on it
                    _drop(self._driver)
            if self._begun:
                await (self._commit() if ok else _roll_back(self._driver))
            elif ok and self.notices[self._notified :]:
                # Nothing else to commit: the notices go as one statement, its own transaction.
                sql, args = _notify_sql(self.notices[self._notified :])
                driver = await self._held()
                self.maybe_notified = True
                try:
                    await driver.execute(sql, *args)
                except Exception as exc:
                    self.maybe_notified = False
                    raise self._failed(sql, exc) from exc
        finally:
            driver, self._driver = self._driver, None
            self._begun = False
            if driver is not None and not self._pool.put_back(driver):
                await self._pool.release(driver)

    async def _commit(self) -> None:
        """COMMIT, in the same round trip as the notices when they can be written as literals."""
        driver = self._driver
        sql, args = _notify_sql(self.notices) if self.notices else ("", ())
        self.maybe_notified = bool(self.notices)
        try:
            if args:
                await driver.execute(sql, *args)
                sql = ""
            await driver.execute(sql + "COMMIT")  # no arguments: one simple query, both in one round trip
        except Exception as exc:
            # Refused, so nothing committed; or the connection is gone, and the notices (if the
            # COMMIT did go through) come back through LISTEN (``_PgPool.sent_here``).
            self.maybe_notified = self._notified > 0
            error = self._failed(sql + "COMMIT", exc)
            await _roll_back(driver)  # a notice failed, so the COMMIT after it did not run
            raise error from exc
        except BaseException:
            # Cancelled during the COMMIT: whether it committed is unknown; the connection is not reused.
            _drop(driver)
            raise


async def _roll_back(driver: Any) -> None:
    """End a transaction block that is not to be committed; drop the connection if that fails."""
    try:
        if _closed(driver) or not driver.is_in_transaction():
            return
        await driver.execute("ROLLBACK")
    except Exception:  # noqa: BLE001 - the error that ended the transaction is the one to raise
        _drop(driver)  # the transaction ends with the connection
    except BaseException:
        _drop(driver)
        raise


def _closed(driver: Any) -> bool:
    """Whether the transaction's connection is gone: closed, or terminated (by SQLAlchemy after a
    disconnect or a cancelled statement). The pool frees its place when the transaction gives it
    back (``_PgPool.release``); the transaction holds the connection itself until then, so this
    never meets one already given back."""
    return bool(driver.is_closed())


def _drop(driver: Any) -> None:
    """Close the connection at once: the pool opens a new one in its place."""
    if not _closed(driver):
        driver.terminate()


# The adapter SQLAlchemy is lent while it connects to a pool connection (``_PoolConnection.sqlalchemy``).
_LENT: ContextVar[Any] = ContextVar("keyplane_lent_adapter", default=None)
ACQUIRE_SECONDS = 30.0  # as long as SQLAlchemy's pool waited for a connection: then 503
RELEASE_SECONDS = 10.0  # at most for a connection given back to end a cancelled statement or roll back
CLOSE_SECONDS = 10.0  # at most for the node's connections to be given back and closed: then terminated
# Connections of a node: as many as SQLAlchemy's pool opened for transactions (10, and 10 more under
# load) beside the 10 of the node's own pool for reads, before both became this one.
POOL_SIZE = 20


class _LendingDialect(PGDialect_asyncpg):
    """SQLAlchemy's asyncpg dialect, connected to the pool connection a transaction already holds.

    Its engine (a NullPool) never opens connections: a pool connection's SQLAlchemy connection, made
    once (``_PoolConnection.sqlalchemy``), gets an adapter of that connection in autocommit, so that
    only ``_PgConn`` begins and ends transactions; closing it closes nothing (the node's pool owns the
    connection). The pool sets the JSON codecs this dialect's ``on_connect`` would (``_pg_pool``).
    """

    supports_statement_cache = True

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        adapter = _LENT.get()
        if adapter is None:
            raise RuntimeError("SQLAlchemy connections are only taken inside a transaction (Database.transaction)")
        return adapter

    def on_connect(self) -> None:
        return None

    def do_close(self, dbapi_connection: Any) -> None:
        pass


registry.register("postgresql.keyplane", __name__, "_LendingDialect")


class _PoolConnection(asyncpg.Connection):  # type: ignore[misc]
    """A connection of the node's pool, with SQLAlchemy's connection on it: made at its first use and
    kept while it lives, as taking one per transaction costs more than a statement."""

    _sqlalchemy: AsyncConnection | None = None
    server_pid = 0  # its server process, which change notices name (``_PgPool.sent_here``)

    async def sqlalchemy(self, engine: AsyncEngine) -> AsyncConnection:
        aio = self._sqlalchemy
        if aio is None or aio.closed or aio.invalidated:
            # The adapter keeps no prepared statements of its own: it prepares each time, from the
            # connection's statement cache (``prepare`` below), which would otherwise be kept twice.
            adapter = AsyncAdapt_asyncpg_connection(  # type: ignore[no-untyped-call]
                engine.dialect.loaded_dbapi, self, prepared_statement_cache_size=0
            )
            adapter.autocommit = True  # transactions are _PgConn's
            lent = _LENT.set(adapter)
            try:
                aio = engine.connect()
                await aio.start()
            finally:
                _LENT.reset(lent)
            if self._sqlalchemy is None:
                self.add_termination_listener(self._close_sqlalchemy)
            self._sqlalchemy = aio
        return aio

    async def _close_sqlalchemy(self, _connection: Any) -> None:
        # The connection is gone (the pool closed, the server lost): SQLAlchemy's too,
        # returned as it expects rather than left to the garbage collector; unless a transaction is
        # using it, which answers its next statement with the disconnect and closes it (_PgConn.finish).
        aio = self._sqlalchemy
        if aio is not None and not aio.in_transaction():
            self._sqlalchemy = None
            await aio.close()

    async def prepare(
        self, query: str, *, name: str | None = None, timeout: float | None = None, record_class: Any = None
    ) -> Any:
        """SQLAlchemy's adapter prepares every statement it runs: from the connection's statement cache,
        as ``fetch`` and ``execute`` do, so a statement is parsed once per connection, not per call."""
        return await self._prepare(  # noqa: SLF001 - asyncpg's cached variant of this very method
            query, name=name, timeout=timeout, use_cache=name is None, record_class=record_class
        )


# Statements that can carry notices (``_notifying_sql``), by their SQL and number of notices.
_NOTIFYING: dict[tuple[str, int], str | None] = {}
_DML = re.compile(r"\s*(INSERT|UPDATE|DELETE)\s", re.IGNORECASE)


def _notifying_sql(compiled: Compiled, notices: int) -> str | None:
    """A write (without RETURNING) that also sends ``notices`` notices, given as arguments after its
    own, and answers its row count: None if it cannot. The notices go whether or not rows changed
    (a notice only drops caches); they are delivered when the statement's transaction commits."""
    key = (compiled.sql, notices)
    if key not in _NOTIFYING:
        sql = None
        if not compiled.returns_rows and _DML.match(compiled.sql):
            first = len(compiled.names) + 1
            calls = ", ".join(f"pg_notify('{CHANNEL}', ${first + i}::text)" for i in range(notices))
            sql = f"WITH written AS ({compiled.sql} RETURNING 1) SELECT count(*) AS n, {calls} FROM written"
        _NOTIFYING[key] = sql
    return _NOTIFYING[key]


# Kinds written as SQL literals (Keyplane's own names, key ids); any other is sent as a parameter.
_LITERAL_KIND = re.compile(r"[A-Za-z0-9_.:*-]{1,200}")


def _notify_sql(kinds: list[str]) -> tuple[str, tuple[str, ...]]:
    """One SELECT sending every notice (delivered when its transaction commits), and its arguments.

    Tells every node what changed (LISTEN in ``Database._listen_forever``).
    """
    if all(_LITERAL_KIND.fullmatch(kind) for kind in kinds):
        return "SELECT " + ", ".join(f"pg_notify('{CHANNEL}', '{kind}')" for kind in kinds) + ";", ()
    calls = ", ".join(f"pg_notify('{CHANNEL}', ${i}::text)" for i in range(1, len(kinds) + 1))
    return f"SELECT {calls};", tuple(kinds)


class _PgPool:
    """The node's connections to PostgreSQL: at most ``POOL_SIZE``, opened when first needed and kept
    open while idle (no idle timer), the most recently used taken first.

    Keyplane's own rather than asyncpg's Pool, whose acquire and release cost ~27 µs of CPU a
    transaction (a shielded task per release, holder futures, a proxy per acquire, the reset); here a
    connection comes and goes with a list pop and append. A transaction that finds every connection
    held waits at most ``ACQUIRE_SECONDS`` for one (then 503: the wait's TimeoutError is an outage),
    in arrival order; the others take one without a timer.
    """

    def __init__(self, url: str, init: Callable[[Any], Awaitable[None]]) -> None:
        self._url = url
        self._init = init  # run on each new connection (the JSON codecs)
        self._idle: list[_PoolConnection] = []
        self._waiters: deque[asyncio.Future[_PoolConnection | None]] = deque()
        self._size = 0  # places taken: connections open, being opened, or promised to a waiter
        self._open: set[_PoolConnection] = set()  # the open ones, idle or held: each one holds a place
        self._by_pid: dict[int, _PoolConnection] = {}  # the open ones by their server process id
        self._closing = False
        self._emptied: asyncio.Future[None] | None = None  # close() waiting for the last place

    def take_idle(self) -> _PoolConnection | None:
        """An idle connection at once, or None (then ``acquire``, which also reports a closed pool)."""
        idle = self._idle
        while idle and not self._closing:
            conn = idle.pop()
            if not conn.is_closed():
                return conn
            self._lost(conn)  # closed while idle (the server went away or restarted)
        return None

    async def acquire(self) -> _PoolConnection:
        if self._closing:
            raise asyncpg.InterfaceError("the node's connection pool is closed")
        conn = self.take_idle()
        if conn is not None:
            return conn
        if self._size < POOL_SIZE:
            self._size += 1
            return await self._connect()
        return await self._wait()

    async def _connect(self) -> _PoolConnection:
        """A new connection, in a place already taken (given back if the connection fails)."""
        try:
            conn = await asyncpg.connect(self._url, connection_class=_PoolConnection)
        except BaseException:
            self._free_place()
            raise
        self._open.add(conn)
        conn.server_pid = conn.get_server_pid()  # kept: asyncpg answers it only while open
        self._by_pid[conn.server_pid] = conn
        try:
            await self._init(conn)
            if self._closing:
                raise asyncpg.InterfaceError("the node's connection pool is closed")
        except BaseException:
            conn.terminate()
            self._lost(conn)
            raise
        return cast(_PoolConnection, conn)

    async def _wait(self) -> _PoolConnection:
        """The next connection given back, or the next free place to open one in."""
        waiter: asyncio.Future[_PoolConnection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(ACQUIRE_SECONDS):
                conn = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                # Given a connection (or a place) just as the wait ended: it goes to the next one.
                given = waiter.result()
                self._free_place() if given is None else self._put(given)
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise
        if conn is None:
            return await self._connect()
        return conn

    async def release(self, conn: _PoolConnection) -> None:
        """Take a connection back: to the first waiter, else idle. No reset query: transactions
        change no session state (SET LOCAL, transaction-level advisory locks); one left in a
        transaction block is rolled back, and one closed or failing is dropped, its place freed."""
        if not self.put_back(conn):
            await self._settle(conn)

    def put_back(self, conn: _PoolConnection) -> bool:
        """``release`` when it need not wait (the usual case): False when the caller must ``release``."""
        if conn.is_closed():
            self._lost(conn)
            return True
        protocol = conn._protocol  # noqa: SLF001 - asyncpg's pool reads the same state
        if self._closing or protocol.is_in_transaction() or protocol._is_cancelling():  # noqa: SLF001
            return False
        self._put(conn)
        return True

    async def _settle(self, conn: _PoolConnection) -> None:
        """The rare release that waits: for a cancelled statement to end (a BEGIN it interrupted may
        still open a block), for its ROLLBACK, or to close it (the pool closing). Dropped if that
        fails or the releasing task is cancelled meanwhile, so that its place is never lost."""
        try:
            async with asyncio.timeout(RELEASE_SECONDS):
                await conn._protocol._wait_for_cancellation()  # noqa: SLF001 - as asyncpg's pool does
                if not conn.is_closed() and conn.is_in_transaction():
                    await conn.execute("ROLLBACK")
                if self._closing and not conn.is_closed():
                    await conn.close()
        except Exception:  # noqa: BLE001 - the transaction's outcome is already known: only the connection goes
            conn.terminate()
        except BaseException:
            conn.terminate()
            self._lost(conn)
            raise
        if conn.is_closed():
            self._lost(conn)
        else:
            self._put(conn)

    def _put(self, conn: _PoolConnection) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():  # not one that timed out or was cancelled
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    def _lost(self, conn: _PoolConnection) -> None:
        """A connection is closed: its place is freed, once."""
        if conn in self._open:
            self._open.discard(conn)
            if self._by_pid.get(conn.server_pid) is conn:
                del self._by_pid[conn.server_pid]
            self._free_place()

    def sent_here(self, pid: int) -> bool:
        """Whether server process ``pid`` serves an open connection of this pool: a notice it sent
        came from one of this node's transactions, whose end dropped the node's caches already
        (``Database._end``). One closed (dropped during a COMMIT of unknown outcome) no longer counts."""
        conn = self._by_pid.get(pid)
        return conn is not None and not conn.is_closed()

    def _free_place(self) -> None:
        """A place is free: for the first waiter to open a connection in, else for anyone."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._size -= 1
        if self._size == 0 and self._emptied is not None and not self._emptied.done():
            self._emptied.set_result(None)

    async def close(self) -> None:
        """Close every connection: idle ones at once, held ones when given back. Whatever is still
        open after ``CLOSE_SECONDS`` (a transaction that does not end, a server that does not answer)
        is terminated. Transactions that wait for a connection, or ask for one, fail (503)."""
        if self._closing:
            return
        self._closing = True
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(asyncpg.InterfaceError("the node's connection pool is closed"))
        idle, self._idle = self._idle, []
        self._emptied = asyncio.get_running_loop().create_future()
        if self._size == 0:
            self._emptied.set_result(None)
        try:
            async with asyncio.timeout(CLOSE_SECONDS):
                await asyncio.gather(*(self._settle(conn) for conn in idle))
                await asyncio.shield(self._emptied)
        except TimeoutError:
            pass  # what is still open is terminated
        finally:
            for conn in list(self._open):
                conn.terminate()
                self._lost(conn)


async def _pg_pool(url: str, dialect: Any) -> _PgPool:
    """The node's pool: every transaction's connection, JSON decoded as SQLAlchemy's dialect does."""
    loads = dialect._json_deserializer or json.loads  # noqa: SLF001

    async def codecs(conn: Any) -> None:
        await conn.set_type_codec(
            "json", encoder=str.encode, decoder=lambda b: loads(b.decode()), schema="pg_catalog", format="binary"
        )
        await conn.set_type_codec(
            "jsonb",
            encoder=lambda v: b"\x01" + v.encode(),
            decoder=lambda b: loads(b[1:].decode()),
            schema="pg_catalog",
            format="binary",
        )

    return _PgPool(url, codecs)


def _pg_error(dialect: Any, sql: str, exc: Exception) -> BaseException:
    """The SQLAlchemy exception a statement run through SQLAlchemy would have raised for ``exc``."""
    if isinstance(exc, (sa_exc.SQLAlchemyError, OSError)):
        return exc
    dbapi_error: type[Exception] = dialect.loaded_dbapi.Error
    if not isinstance(exc, dbapi_error):
        try:
            # Raises the adapter's DBAPI-level error for a driver error, and anything else as it is.
            AsyncAdapt_asyncpg_connection._handle_exception_no_connection(dialect.loaded_dbapi, exc)  # noqa: SLF001
        except Exception as dbapi_exc:  # noqa: BLE001
            if dbapi_exc is exc:  # not the driver's: a bug, raised as it is
                return exc
            exc = dbapi_exc
    return sa_exc.DBAPIError.instance(sql, None, exc, dbapi_error, hide_parameters=True, dialect=dialect)
