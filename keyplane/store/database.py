"""One async interface over SQLite (embedded default) and PostgreSQL (several nodes).

SQLite never runs on the event loop: a file lock held by another process (a backup, the ``sqlite3``
shell) or a slow disk would otherwise freeze every request. Each SQLite connection is owned by one
thread, so calls on it run in order, and the loop only awaits their results:

- one writer thread and connection: every write transaction, serialised (SQLite has one writer);
- a few reader threads and connections, serving one queue of reads: WAL lets them read while the
  writer waits or writes.

Each hand-off to a thread and back costs thread switches, which pinned to one core are most of a point
read's cost: a woken thread runs every call already queued before it answers, and its answers reach
the loop in one wake-up (``_Inbox``).

Callers do not say whether a transaction writes, so it starts as a read on a reader connection and
moves to the writer at its first write. Each read until then is its own snapshot; its writes, and
reads after them, see the latest data under the write lock. That is PostgreSQL's READ COMMITTED,
which every repository already handles (conditional updates on ``seq_no``, upserts, a retry after a
unique violation), so both stores behave alike. A write waits for the file lock off the loop and
gives up after ``LOCK_WAIT_SECONDS`` (503, which the clients retry).

Commits go through the writer thread, which lets them share an fsync (group commit): a transaction
that ends while other writes wait is kept in an open outer transaction as a released SAVEPOINT, and
one COMMIT makes the whole group durable before any of its callers is answered.

PostgreSQL transactions run on connections of the node's asyncpg pool, with SQLAlchemy's asyncpg
dialect compiling statements and running, on the same connection, only what needs it (``_PgConn``);
changes are broadcast to every node with LISTEN/NOTIFY. Hot statements on both stores are compiled
once and run on the driver itself (keyplane.store.prepared). Statement parameters are never put in
errors (``hide_parameters``) so they cannot reach a log: they include password and API key hashes.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import fcntl
import functools
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import Executable

from keyplane import tracebacks
from keyplane.errors import StoreUnavailable
from keyplane.store import checkpoint, prepared
from keyplane.store.prepared import Compiled, Prepared

# The PostgreSQL store (asyncpg, SQLAlchemy's asyncio extension) is imported when one is opened.
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from keyplane.store.postgres import _PgConn, _PgPool

log = logging.getLogger("keyplane.store")

# sqlite3 binds None only after looking for an adapter: the registry, then ``__adapt__`` and
# ``__conform__``, whose misses raise and clear an AttributeError with its message formatted (~3,000
# instructions for each None a statement binds; a key's insert binds four or five). A registered one
# ends the search at once: ``{}.get`` answers None for None, bound as NULL as before.
sqlite3.register_adapter(type(None), cast(Any, {}.get))
T = TypeVar("T")

CHANNEL = "keyplane_changes"
# How long a write waits for its turn on the writer, and then for the SQLite file lock (held by
# another process), before answering 503: at most twice this in all.
LOCK_WAIT_SECONDS = 5.0
# How long background work (``Database.transaction(background=True)``) lets requests queued for
# SQLite's writer go first, before it takes its turn as any write.
BACKGROUND_YIELD_SECONDS = 1.0
READERS = 3
# The data dir holds password and key hashes and the secrets key: only the owner may read it.
DIR_MODE = 0o700
FILE_MODE = 0o600
# A transaction waiting for its group's commit: its outer transaction's generation, its waiter, and
# what runs once it is durable.
_Pending = tuple[int, "asyncio.Future[None]", Callable[[], None]]
SQLITE_FILES = ("keyplane.db", "keyplane.db-wal", "keyplane.db-shm", "keyplane.db.lock", "secrets.key")


@dataclass
class Rows:
    """A fully read result: rows as dicts and the affected row count."""

    rows: list[dict[str, Any]]
    rowcount: int

    def first(self) -> dict[str, Any] | None:
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any:
        return next(iter(self.rows[0].values())) if self.rows else None


Statement = Executable | Prepared


def _rows(result: Any) -> Rows:
    if not result.returns_rows:
        return Rows([], result.rowcount)
    # Plain tuples zipped with the keys: a third of the cost of going through RowMapping objects.
    keys = list(result.keys())
    rows = [dict(zip(keys, row, strict=True)) for row in result.fetchall()]
    return Rows(rows, len(rows))


class Conn:
    """A connection inside a transaction; every statement is awaited the same way on both stores."""

    def __init__(self) -> None:
        self.notices: list[str] = []
        # SQLite: when (``time.perf_counter``) this transaction took the writer, after any wait for it;
        # 0.0 before, and on PostgreSQL. Background work times its hold on the writer from it.
        self.writer_since = 0.0

    async def execute(self, stmt: Statement, params: Any = None) -> Rows:
        raise NotImplementedError

    async def execute_all(self, *statements: tuple[Statement, Any]) -> list[Rows]:
        """Run several statements in order (on SQLite in one hand-off to the connection's thread)."""
        return [await self.execute(stmt, params) for stmt, params in statements]

    async def execute_alone(self, stmt: Statement, params: Any = None) -> Rows:
        """``execute`` for the transaction's only write, as its last statement (see
        ``Database.execute_alone``): reads may come before it (each is its own snapshot, as in any
        READ COMMITTED transaction), and notices asked for before it go with it."""
        return await self.execute(stmt, params)

    async def run_sync(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` with the transaction's synchronous connection (off the loop on SQLite)."""
        raise NotImplementedError

    def notify(self, kind: str) -> None:
        """Ask every node to drop caches of ``kind`` once this transaction commits."""
        if kind not in self.notices:
            self.notices.append(kind)


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


def _error_kind(exc: BaseException) -> str | None:
    """``error`` for a failure of the database or its driver; None for the caller's own exceptions
    (a version conflict, a refusal) raised inside a transaction."""
    return "error" if type(exc).__module__.split(".")[0] in ("sqlalchemy", "sqlite3", "asyncpg") else None


def describe_error(exc: BaseException) -> str:
    """A database error for a log: its kinds and SQLSTATE, never its text (see keyplane.tracebacks)."""
    parts = [tracebacks.kind(exc)]
    cause: BaseException | None = getattr(exc, "orig", None) or exc.__cause__
    while cause is not None and len(parts) < 4:
        parts.append(tracebacks.kind(cause))
        cause = cause.__cause__
    return " <- ".join(parts)


def prepare_data_dir(data_dir: Path) -> None:
    """Create the data dir owner-only, and take group and other access from what is already there."""
    data_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    for path, mode in [(data_dir, DIR_MODE), *((data_dir / name, FILE_MODE) for name in SQLITE_FILES)]:
        try:
            current = path.stat().st_mode & 0o777
            if current & 0o077:
                path.chmod(current & mode)
                log.warning("%s was readable by other users (mode %o); it is now %o", path, current, current & mode)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("could not make %s private: %s", path, exc)


def _private_file(path: str) -> None:
    """Create ``path`` owner-only if missing; SQLite gives its -wal and -shm files the same mode."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE))


class _Inbox:
    """Results and callbacks that SQLite threads hand back to one event loop, in the order given.

    One wake-up of the loop settles everything that arrived since the last: a thread appends, and
    schedules the loop's drain only if none is pending (``call_soon_threadsafe`` costs a handle, a
    write to the loop's self-pipe, and a switch of threads, which pinned to one core is most of a
    point read's cost).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        # (future, result, exception), or (None, callback, arguments)
        self._items: collections.deque[tuple[Any, Any, Any]] = collections.deque()
        self._scheduled = False

    def settle(self, fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
        """On a thread: settle ``fut`` at the next drain (``wake``)."""
        self._items.append((fut, result, exc))

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """On a thread: run ``fn(*args)`` on the loop at the next drain, in order with results."""
        self._items.append((None, fn, args))

    def wake(self) -> None:
        """On a thread: have the loop drain what was handed back, unless it is about to already.

        The drain clears ``_scheduled`` before it reads the items, and a thread appends before it
        reads ``_scheduled``: an item is either seen by a drain under way or schedules its own.
        """
        if self._scheduled or not self._items:
            return
        self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    def _drain(self) -> None:
        self._scheduled = False
        items = self._items
        while items:
            fut, result, exc = items.popleft()
            if fut is None:
                try:
                    result(*exc)
                except Exception as error:  # noqa: BLE001 - as the loop does with a failed callback
                    self.loop.call_exception_handler({"message": "SQLite callback failed", "exception": error})
            elif not fut.cancelled():
                if exc is not None:
                    fut.set_exception(exc)
                else:
                    fut.set_result(result)


class _Inboxes:
    """The inbox of the running loop, shared by a store's threads (one loop in practice)."""

    def __init__(self) -> None:
        self._inbox: _Inbox | None = None

    def get(self) -> _Inbox:
        loop = asyncio.get_running_loop()
        inbox = self._inbox
        if inbox is None or inbox.loop is not loop:
            inbox = self._inbox = _Inbox(loop)
        return inbox


# What a SQLite thread runs: a call on its connection, the inbox to answer on, and the waiting
# future (None for a call nobody waits for).
_Item = tuple[Callable[[Connection], Any], _Inbox | None, "asyncio.Future[Any] | None"]


class _Worker:
    """A thread that owns one SQLite connection: calls run in the order queued, off the event loop.

    Several workers may share one queue (the readers do): any of them serves any call. A worker that
    wakes runs every call already queued before it hands their results back, in one wake-up of the
    loop (a call that may take long, a COMMIT and its fsync, wakes the loop first: ``_Inbox.wake``).
    """

    def __init__(self, name: str, engine: Engine, calls: queue.SimpleQueue[_Item | None]) -> None:
        self._queue = calls
        self._engine = engine
        self.conn: Connection | None = None
        self._opened: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._closed: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.conn = self._engine.connect()
        except BaseException as exc:  # noqa: BLE001 - handed to ``open``
            self._opened.set_exception(exc)
            return
        self._opened.set_result(None)
        try:
            self._serve()
        finally:
            _drop_cursor(self.conn)
            try:
                self.conn.close()
            except BaseException as exc:  # noqa: BLE001 - closing anyway
                log.warning("closing a SQLite connection failed: %s", describe_error(exc))
            self._closed.set_result(None)

    def _serve(self) -> None:
        get = self._queue.get
        get_nowait = self._queue.get_nowait
        conn = self.conn
        while True:
            item = get()
            inbox: _Inbox | None = None
            while True:
                if item is None:  # this worker stops (each one of a shared queue takes one None)
                    if inbox is not None:
                        inbox.wake()
                    return
                fn, to, fut = item
                if inbox is not to:
                    if inbox is not None:
                        inbox.wake()
                    inbox = to
                try:
                    result = fn(conn)  # type: ignore[arg-type]
                except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
                    if fut is None:
                        log.warning("SQLite call on %s failed: %s", self._thread.name, describe_error(exc))
                    elif to is not None:
                        to.settle(fut, None, exc)
                else:
                    if fut is not None and to is not None:
                        to.settle(fut, result, None)
                try:
                    item = get_nowait()
                except queue.Empty:
                    break
            if inbox is not None:
                inbox.wake()

    async def open(self) -> None:
        await asyncio.wrap_future(self._opened)

    async def stopped(self) -> None:
        """Wait until this worker has stopped (on a None from its queue) and closed its connection."""
        if self._opened.done() and self._opened.exception() is None:
            await asyncio.wrap_future(self._closed)

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on this worker's queue (the writer's own: tests and maintenance)."""
        return await _call(self._queue, _INBOXES.get(), lambda _conn: fn())


_INBOXES = _Inboxes()


def _submit(calls: queue.SimpleQueue[_Item | None], inbox: _Inbox, fn: Callable[[Connection], T]) -> asyncio.Future[T]:
    """Queue ``fn`` for the threads serving ``calls``; the future gives its result."""
    fut: asyncio.Future[T] = inbox.loop.create_future()
    calls.put((fn, inbox, fut))
    return fut


def _submit_commit(
    calls: queue.SimpleQueue[_Item | None],
    inbox: _Inbox,
    fn: Callable[[Connection], T],
    then: Callable[[Connection], None] | None = None,
) -> asyncio.Future[T]:
    """``_submit`` for a call that commits: the loop is woken before it, so results ready before its
    fsync are not held back by it, and right after it, so its callers are answered (and new writes
    reach the writer, to form the next group) before the calls queued behind it run. ``then`` runs
    after that wake-up (the WAL's catch-up): the callers do not wait for it."""
    fut: asyncio.Future[T] = inbox.loop.create_future()

    def run(conn: Connection) -> None:
        inbox.wake()
        try:
            result = fn(conn)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            inbox.settle(fut, None, exc)
        else:
            inbox.settle(fut, result, None)
        inbox.wake()
        if then is not None:
            then(conn)

    calls.put((run, inbox, None))
    return fut


async def _call(calls: queue.SimpleQueue[_Item | None], inbox: _Inbox, fn: Callable[[Connection], T]) -> T:
    # If the awaiting task is cancelled, the call still finishes before anything queued after it
    # (a rollback), so a connection is never used by two calls at once.
    return await _submit(calls, inbox, fn)


def _is_read(stmt: Statement) -> bool:
    if isinstance(stmt, Prepared):
        return stmt.is_read
    return bool(getattr(stmt, "is_select", False)) and not getattr(stmt, "is_dml", False)


def _run(conn: Connection, stmt: Statement, params: Any) -> Rows:
    if isinstance(stmt, Prepared):
        return _run_prepared(conn, stmt.compiled(conn.dialect), params)
    found = prepared.dynamic(stmt, conn.dialect, params)
    if found is not None:  # a plain select: its SQL compiled once per shape, run on sqlite3 itself
        return _run_prepared(conn, *found)
    return _rows(conn.execute(stmt, params) if params is not None else conn.execute(stmt))


def _run_prepared(conn: Connection, compiled: Compiled, params: Any) -> Rows:
    """Run a prepared statement on the sqlite3 connection itself (see keyplane.store.prepared)."""
    cursor = _cursor(conn)
    try:
        cursor.execute(compiled.sql, compiled.args(params))
        if not compiled.returns_rows:
            return Rows([], cursor.rowcount)
        rows = compiled.rows(cursor.fetchall())
    except sqlite3.Error as exc:
        _drop_cursor(conn)
        raise _sqlite_error(conn, compiled.sql, exc) from exc
    return Rows(rows, len(rows))


# Each connection's cursor for the statements run on sqlite3 directly: ``Connection.execute`` makes
# and frees a cursor per statement (~5,000 instructions of a key creation's ~210,000 on the writer).
# A connection is used by one thread at a time and every statement's rows are read whole at once,
# which resets it (its snapshot ends there, as it did when its cursor was freed).
_CURSORS: dict[Any, sqlite3.Cursor] = {}  # by sqlite3.Connection


def _cursor(conn: Connection) -> sqlite3.Cursor:
    raw = conn.connection.dbapi_connection
    cursor = _CURSORS.get(raw)
    if cursor is None:
        assert isinstance(raw, sqlite3.Connection)
        cursor = _CURSORS[raw] = raw.cursor()
    return cursor


def _drop_cursor(conn: Connection) -> None:
    """Forget a connection's cursor (after a failed statement, and when the connection closes)."""
    try:
        cursor = _CURSORS.pop(conn.connection.dbapi_connection, None)
        if cursor is not None:
            cursor.close()
    except Exception:  # noqa: BLE001 - the connection is unusable anyway: nothing left to forget
        pass


def _sqlite_error(conn: Connection, sql: str, exc: sqlite3.Error) -> sa_exc.StatementError:
    """``exc`` as SQLAlchemy raises it for its own statements (IntegrityError, ...), without parameters."""
    return sa_exc.DBAPIError.instance(sql, None, exc, sqlite3.Error, hide_parameters=True, dialect=conn.dialect)


def _dbapi(conn: Connection) -> sqlite3.Connection:
    raw = conn.connection.dbapi_connection
    assert isinstance(raw, sqlite3.Connection)
    return raw


def _sql(conn: Connection, sql: str) -> None:
    """A transaction-control statement, straight on sqlite3 (SQLAlchemy's wrapping costs more than it)."""
    try:
        _cursor(conn).execute(sql)
    except sqlite3.Error as exc:
        _drop_cursor(conn)
        raise _sqlite_error(conn, sql, exc) from exc


def _end(conn: Connection, *, commit: bool) -> None:
    """Commit or roll back whatever is open on ``conn``.

    Transaction-control statements go straight to sqlite3, so SQLAlchemy only knows of a
    transaction when a statement ran through it; then it ends it (and forgets it) itself.
    """
    if conn.in_transaction():
        conn.commit() if commit else conn.rollback()
        return
    raw = _dbapi(conn)
    try:
        raw.commit() if commit else raw.rollback()
    except sqlite3.Error as exc:
        raise _sqlite_error(conn, "COMMIT" if commit else "ROLLBACK", exc) from exc


class _Watch:
    """A task waiting with a time limit (``_Watchdog.watch``)."""

    __slots__ = ("deadline", "task", "cancelling", "expired")

    def __init__(self, deadline: float, task: asyncio.Task[Any] | None, cancelling: int) -> None:
        self.deadline = deadline
        self.task = task  # None once it no longer waits: the waiter sets it so when done
        self.cancelling = cancelling
        self.expired = False

    def timed_out(self) -> bool:
        """In the waiter, on ``CancelledError``: whether it is the time limit's (as ``asyncio.timeout``
        tells it from another cancellation, which goes on as it is)."""
        return self.expired and self.task is not None and self.task.uncancel() <= self.cancelling


class _Watchdog:
    """``asyncio.timeout(seconds)`` for many tasks: one timer for all, not one each.

    Every task waits the same time, so deadlines come in the order tasks start waiting, and the one
    timer is set for the oldest task still waiting. A write that had to queue for the writer used
    to set, move and cancel a timer of its own, for a limit that almost never passes.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._watched: collections.deque[_Watch] = collections.deque()  # oldest first
        self._timer: asyncio.TimerHandle | None = None

    def watch(self) -> _Watch:
        """Cancel the current task once its time is up (``_Watch.timed_out`` tells it), unless it
        sets the watch's ``task`` to None before."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        watch = _Watch(loop.time() + self.seconds, task, task.cancelling() if task is not None else 0)
        watched = self._watched
        while watched and watched[0].task is None:
            watched.popleft()
        watched.append(watch)
        if self._timer is None:
            self._timer = loop.call_at(watch.deadline, self._expire, loop, watch.deadline)
        return watch

    def _expire(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        """At the deadline ``when``: the tasks whose time is up are cancelled; the timer is set again
        for the oldest one left."""
        self._timer = None
        watched = self._watched
        while watched:
            watch = watched[0]
            if watch.task is not None:
                if watch.deadline > when:
                    self._timer = loop.call_at(watch.deadline, self._expire, loop, watch.deadline)
                    return
                watch.expired = True
                watch.task.cancel()
            watched.popleft()


class _SqliteStore:
    """The SQLite threads and connections, and what a transaction needs to move from reading to writing."""

    def __init__(self, url: str, synchronous: str) -> None:
        if synchronous not in ("full", "normal"):
            raise ValueError(f"synchronous must be full or normal, not [{synchronous}]")
        self.url = url
        self.synchronous = synchronous
        self.writer: _Worker | None = None
        # The writer's calls, and the reads: every reader thread serves any read (each read is its
        # own snapshot), so a transaction holds no reader, and one woken reader runs what is queued.
        self.writes: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        # On the loop: calls for the writer that nobody waits for (a savepoint released into the
        # group), run first by its next call (``on_writer``), which the group's commit at the latest
        # is: one wake-up of the writer less per transaction, and the same order.
        self.deferred: list[Callable[[Connection], None]] = []
        self.reads: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._all_readers: list[_Worker] = []
        self.write_lock = asyncio.Lock()
        self.watchdog = _Watchdog(LOCK_WAIT_SECONDS)  # the time limit of writes queued for ``write_lock``
        # Group commit (see ``_SqliteConn.finish``). On the loop, under ``write_lock``: transactions
        # whose work is done but not yet durable, each with its waiter and its after-commit callback,
        # and the task that will commit them. ``waiting`` counts tasks queued for ``write_lock``.
        self.pending: list[_Pending] = []
        self.flusher: asyncio.Task[None] | None = None
        self.waiting = 0
        # Set on the writer thread only: an outer transaction is open (BEGIN IMMEDIATE ran, COMMIT not
        # yet), and which one: a transaction is acknowledged only by the COMMIT of its own generation.
        self.group_open = False
        self.generation = 0
        # WAL checkpoints run on a thread of their own, not inside the writer's commits.
        self.checkpointer: checkpoint.Checkpointer | None = None

    def _engine(self, *, reader: bool) -> Engine:
        # A connection stays with its thread for the life of the store, hence NullPool.
        engine = create_engine(
            self.url,
            poolclass=NullPool,
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": LOCK_WAIT_SECONDS},
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL by default, not NORMAL: in WAL mode NORMAL syncs the WAL only at checkpoints, so the last
            # acknowledged commits can be lost to a power cut or an OS crash. FULL syncs the WAL at
            # every commit, before the commit returns (and SQLite syncs the directory when it creates
            # the WAL), so an acknowledged write survives; EXTRA only adds a directory sync for
            # rollback journals, which WAL does not use.
            cur.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
            cur.execute("PRAGMA foreign_keys=ON")
            # LIKE is case-sensitive in PostgreSQL; make SQLite agree.
            cur.execute("PRAGMA case_sensitive_like=ON")
            if reader:
                cur.execute("PRAGMA query_only=ON")  # a write routed here by mistake fails loudly
            elif self.checkpointer is not None:
                # No automatic checkpoint inside the writer's COMMITs (the checkpointer does them), and
                # the WAL is cut back to this size whenever the writer starts it over.
                cur.execute("PRAGMA wal_autocheckpoint=0")
                cur.execute(f"PRAGMA journal_size_limit={checkpoint.WAL_LIMIT}")
            cur.close()
            # Transactions are begun and ended explicitly below, not by pysqlite.
            dbapi_conn.isolation_level = None

        return engine

    async def open(self) -> None:
        path = self.url.removeprefix("sqlite:///")
        if path and path != ":memory:" and not path.startswith("file:"):
            _private_file(path)
        self.checkpointer = checkpoint.for_file(path, self.synchronous)
        self.writer = _Worker("keyplane-sqlite-writer", self._engine(reader=False), self.writes)
        await self.writer.open()  # the writer first: it switches the file to WAL
        if self.checkpointer is not None:
            await asyncio.to_thread(self.checkpointer.start)
        reader_engine = self._engine(reader=True)
        for i in range(READERS):
            worker = _Worker(f"keyplane-sqlite-reader-{i}", reader_engine, self.reads)
            self._all_readers.append(worker)
            await worker.open()

    async def close(self) -> None:
        if self.flusher is not None:
            await asyncio.shield(self.flusher)  # commit what was acknowledged-to-be before closing
        if self.checkpointer is not None:
            await asyncio.to_thread(self.checkpointer.stop)  # waits for a checkpoint under way
            self.checkpointer = None
        # Each worker takes one None, after every call queued before it, and closes its connection.
        for calls, workers in ((self.reads, self._all_readers), (self.writes, [self.writer] if self.writer else [])):
            for _ in workers:
                calls.put(None)
            for worker in workers:
                await worker.stopped()
        self._all_readers.clear()
        self.writer = None

    def commit(self, conn: Connection) -> int:
        """Commit the open transaction (on the writer thread), or roll it back if that fails; its generation."""
        try:
            if not _in_transaction(conn):
                # SQLite rolled the whole transaction back after an error (a full disk, an I/O
                # error): a COMMIT now would succeed on nothing, and acknowledge lost work.
                raise StoreUnavailable(_LOST)
            _end(conn, commit=True)
        except BaseException:
            _end(conn, commit=False)
            raise
        finally:
            self.group_open = False
        return self.generation

    def after_commit(self, conn: Connection) -> None:
        """On the writer, after a commit's callers are answered: the WAL's catch-up, if it is due."""
        if self.checkpointer is not None and not self.group_open:
            self.checkpointer.after_commit(conn.connection.dbapi_connection)

    def on_writer(self, fn: Callable[[Connection], T]) -> Callable[[Connection], T]:
        """``fn`` for the writer's queue, after the calls deferred until then (``deferred``)."""
        if not self.deferred:
            return fn
        deferred, self.deferred = self.deferred, []

        def run(conn: Connection) -> T:
            for call in deferred:
                call(conn)  # each one handles its own failure (``_SqliteConn.finish``)
            return fn(conn)

        return run

    def add_to_group(self, generation: int, fut: asyncio.Future[None], committed: Callable[[], None]) -> None:
        """Leave a finished transaction for the group commit (on the loop, holding ``write_lock``)."""
        self.pending.append((generation, fut, committed))
        if self.flusher is None:
            self.flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        """Commit the group once every transaction queued ahead of this task has run.

        This task queues for ``write_lock`` behind the writes waiting when the group began, so the
        group holds those that finish meanwhile; later writes queue behind it and start the next group.
        """
        self.waiting += 1
        try:
            await self.write_lock.acquire()  # no time limit: the group must end committed or failed
        finally:
            self.waiting -= 1
        try:
            group, self.pending, self.flusher = self.pending, [], None
            if not group:  # the group was lost and already failed (``fail_generation``)
                if self.deferred:  # run in order still, not left to whichever call comes next
                    self.writes.put((self.on_writer(lambda conn: None), _INBOXES.get(), None))
                return
            writer_commit = self.commit
            done = _submit_commit(
                self.writes, _INBOXES.get(), self.on_writer(lambda conn: writer_commit(conn)), self.after_commit
            )
        finally:
            self.write_lock.release()
        try:
            generation = await done
        except BaseException as exc:  # noqa: BLE001 - handed to every transaction of the group
            _fail_group(group, exc)
            return
        durable = [(fut, committed) for gen, fut, committed in group if gen == generation]
        # Work of an earlier, lost outer transaction (already failed by ``fail_generation``).
        _fail_group([p for p in group if p[0] != generation], StoreUnavailable(_LOST))
        for _, committed in durable:
            committed()  # caches are dropped before any caller goes on
        for fut, _ in durable:
            if not fut.done():
                fut.set_result(None)

    def fail_generation(self, generation: int, exc: BaseException) -> None:
        """An outer transaction was lost: every transaction of it waiting for the group commit fails."""
        _fail_group([p for p in self.pending if p[0] == generation], exc)
        self.pending = [p for p in self.pending if p[0] != generation]


class _SqliteConn(Conn):
    """A transaction on SQLite: reads on the reader threads until the first write, then the writer.

    ``committed`` is called with its notices on the loop once its writes are durable (or at its end,
    if it wrote nothing).
    """

    def __init__(self, store: _SqliteStore, committed: Callable[[list[str]], None], background: bool = False) -> None:
        super().__init__()
        self._store = store
        # Bound to the notices, not to this connection: a callable reaching the connection would make
        # a cycle (connection, callable, closure), garbage that only the collector frees.
        self._committed = functools.partial(committed, self.notices)
        self._background = background
        self._inbox = _INBOXES.get()
        self._reading = False  # read before: the open group was waited for (``_start_reading``)
        self._writing = False  # holds the write lock
        self._began = False  # BEGIN IMMEDIATE succeeded on the writer
        self._alone = False  # committed by ``execute_alone``, in its call (set on the writer)
        self._generation = 0  # of the outer transaction holding this one's work
        # Its work is in a savepoint of its own: it joined an outer transaction another one began. One
        # that begins the outer transaction is its first work, so undoing it is rolling that back.
        self._savepoint = False

    async def execute(self, stmt: Statement, params: Any = None) -> Rows:
        self._check_began()
        if self._writing:
            return await self._on_writer(lambda conn: _run(conn, stmt, params))
        if _is_read(stmt):
            if not self._reading:
                await self._start_reading()
            # No BEGIN: each read is its own snapshot, ended when its rows are read, as every
            # statement of a PostgreSQL READ COMMITTED transaction is; this saves a ROLLBACK per request.
            return await _call(self._store.reads, self._inbox, lambda conn: _run(conn, stmt, params))
        await self._lock_writer()
        return await self._begin_on_writer(lambda conn: _run(conn, stmt, params))

    async def execute_all(self, *statements: tuple[Statement, Any]) -> list[Rows]:
        if self._writing or not all(_is_read(stmt) for stmt, _ in statements):
            return await super().execute_all(*statements)
        if not self._reading:
            await self._start_reading()
        return await _call(
            self._store.reads, self._inbox, lambda conn: [_run(conn, stmt, params) for stmt, params in statements]
        )

    async def execute_alone(self, stmt: Statement, params: Any = None) -> Rows:
        """The transaction's only write, as its last statement: when no other write is waiting as it
        ends, it commits in the same call on the writer (one hand-off instead of two), as on PostgreSQL;
        otherwise its transaction ends as any other, in the group commit (``finish``)."""
        self._check_began()
        if self._writing or _is_read(stmt):
            return await self.execute(stmt, params)
        store = self._store
        await self._lock_writer()
        inbox, committed = self._inbox, self._committed
        writes = store.writes

        def alone(conn: Connection) -> Rows:
            outer = not store.group_open  # its BEGIN is this transaction's: nobody else's work is in it
            rows = begin_then(conn)
            # Whether another write could join its group: one COMMIT (and fsync) for the group costs
            # less than the hand-off this saves. Read off the loop, so only a hint, as is ``waiting``
            # in ``finish``; either way the transaction is answered after its COMMIT.
            if outer and not store.waiting and writes.empty():
                store.commit(conn)
                self._alone = True
                # Queued ahead of this call's result, so caches are dropped before the caller goes on,
                # even if the caller was cancelled while the commit ran.
                inbox.call(committed)
            return rows

        begin_then = self._beginning(lambda conn: _run(conn, stmt, params))
        return await _submit_commit(writes, inbox, store.on_writer(alone), store.after_commit)

    async def run_sync(self, fn: Callable[[Connection], T]) -> T:
        self._check_began()
        if self._writing:
            return await self._on_writer(fn)
        await self._lock_writer()
        return await self._begin_on_writer(fn)

    def _check_began(self) -> None:
        # A caller that swallowed the failure to begin must not go on writing outside a transaction.
        if self._writing and not self._began:
            raise StoreUnavailable("the write transaction could not begin; retry later")

    async def _on_writer(self, fn: Callable[[Connection], T]) -> T:
        return await _call(self._store.writes, self._inbox, self._store.on_writer(fn))

    async def _start_reading(self) -> None:
        """Before the transaction's first read."""
        flusher = self._store.flusher
        if flusher is not None:
            # Writes released into the open group are not committed yet, so a snapshot taken now
            # would miss writes about to be acknowledged, and a read-then-write (an upsert, a
            # compare-and-set) would collide with them again on every retry: wait for the group.
            await asyncio.wait({flusher})
        self._reading = True

    async def _lock_writer(self) -> None:
        store = self._store
        lock = store.write_lock
        if self._background:
            await self._lock_writer_after_requests()
            return
        if not store.waiting and not lock.locked():
            # Free, and nobody queued for it (every acquirer counts in ``waiting``): taken at once,
            # without the timer.
            await lock.acquire()
            self._writing = True
            self.writer_since = time.perf_counter()
            return
        store.waiting += 1
        # As ``asyncio.timeout(LOCK_WAIT_SECONDS)``, under the store's one timer (``_Watchdog``).
        watch = store.watchdog.watch()
        try:
            await lock.acquire()
        except asyncio.CancelledError:
            if watch.timed_out():
                raise StoreUnavailable("the store is busy with other writes; retry later") from None
            raise
        finally:
            watch.task = None
            store.waiting -= 1
        self._writing = True
        self.writer_since = time.perf_counter()

    async def _lock_writer_after_requests(self) -> None:
        """``_lock_writer`` for background work: the writer once no request holds it or queues for it.

        Not counted in ``waiting``, so a request that ends meanwhile commits at once instead of
        waiting to share its COMMIT with a batch of background work (and to wait for that batch); a
        request queued for the writer goes first. After ``BACKGROUND_YIELD_SECONDS`` the work takes
        its turn in the queue as any write, so writes back to back do not starve it.
        """
        store = self._store
        lock = store.write_lock
        loop = asyncio.get_running_loop()
        until = loop.time() + BACKGROUND_YIELD_SECONDS
        try:
            async with asyncio.timeout(LOCK_WAIT_SECONDS):
                while True:
                    await lock.acquire()
                    if not store.waiting or loop.time() >= until:
                        break
                    lock.release()  # queued again, behind the requests waiting
        except TimeoutError:
            raise StoreUnavailable("the store is busy with other writes; retry later") from None
        self._writing = True
        self.writer_since = time.perf_counter()

    async def _begin_on_writer(self, fn: Callable[[Connection], T]) -> T:
        return await _call(self._store.writes, self._inbox, self._store.on_writer(self._beginning(fn)))

    def _beginning(self, fn: Callable[[Connection], T]) -> Callable[[Connection], T]:
        """``fn`` in this transaction's savepoint, in the open outer transaction or a new one."""
        store = self._store

        def begin_then(conn: Connection) -> T:
            if not store.group_open:
                _sql(conn, "BEGIN IMMEDIATE")  # waits for the file lock here, off the loop
                store.group_open = True
                store.generation += 1
                # The outer transaction holds only this one's work until it ends (the next write
                # waits for the write lock): ROLLBACK undoes it, no savepoint needed.
            else:
                # Inside a group, this transaction's work can be undone alone (see ``finish``).
                _sql(conn, f"SAVEPOINT {_SAVEPOINT}")
                self._savepoint = True
            self._generation = store.generation
            self._began = True
            return fn(conn)

        return begin_then

    async def finish(self, ok: bool) -> None:
        """End the transaction; ``committed`` runs on the loop once a commit is durable.

        Group commit: a transaction that ends while other writes wait for the writer does not commit
        (and fsync) alone. Its savepoint is released into the open outer transaction, and the
        transactions queued behind it add theirs; one COMMIT, one fsync, then every one of them is
        answered (``_SqliteStore._flush``). Nobody is answered before that COMMIT is durable, and if
        it fails every transaction of the group fails. A transaction that fails rolls back to its own
        savepoint, leaving the group's other work in place.
        """
        committed = self._committed
        store = self._store
        if self._alone:  # committed in its last statement's call (``execute_alone``)
            self._writing = self._began = False
            store.write_lock.release()
            return
        if not self._writing:
            if ok:
                committed()
            return
        inbox = self._inbox
        began, generation, savepoint = self._began, self._generation, self._savepoint
        # Whether earlier transactions' work waits in the same outer transaction.
        grouped = any(p[0] == generation for p in store.pending)
        done: asyncio.Future[Any] | None = None
        # Background work commits alone even when writes wait: in a group, its COMMIT (a batch's
        # pages) would be the group's, and every read begun meanwhile waits for the group
        # (``_start_reading``). The writes waiting run right after its COMMIT either way.
        if ok and began and (grouped or (store.waiting and not self._background)):
            done = inbox.loop.create_future()
            store.add_to_group(generation, done, committed)

            def release(conn: Connection) -> None:
                try:
                    if savepoint:
                        _sql(conn, f"RELEASE {_SAVEPOINT}")
                    if not _in_transaction(conn):
                        raise StoreUnavailable(_LOST)
                except BaseException as exc:
                    _lose_group(store, conn, inbox, exc)

            store.deferred.append(release)
        elif ok and began:

            def commit(conn: Connection) -> None:
                store.commit(conn)
                # Queued ahead of this call's result, so caches are dropped before the caller goes on,
                # even if the caller was cancelled while the commit ran.
                inbox.call(committed)

            # The next write transaction may queue its statements behind this commit (and its fsync)
            # at once: the writer thread runs them in order, and each caller is answered after its
            # own commit.
            done = _submit_commit(store.writes, inbox, store.on_writer(commit), store.after_commit)
        else:

            def undo(conn: Connection) -> None:
                if not grouped:
                    _end(conn, commit=False)  # the outer transaction holds only this one's work
                    store.group_open = False
                    return
                try:
                    if not began or not savepoint or not _in_transaction(conn):
                        raise StoreUnavailable(_LOST)
                    _sql(conn, f"ROLLBACK TO {_SAVEPOINT}")
                    _sql(conn, f"RELEASE {_SAVEPOINT}")
                except BaseException as exc:
                    _lose_group(store, conn, inbox, exc)

            store.writes.put((store.on_writer(undo), inbox, None))  # before the next writer's statements
        self._writing = self._began = self._savepoint = False
        store.write_lock.release()
        if done is not None:
            await done


_SAVEPOINT = "keyplane_request"
_LOST = "the write transaction was rolled back by the store; retry later"


class _Transaction:
    """``Database.transaction()``'s block: a class rather than two nested generator-based context
    managers, whose generators and their ``anext`` calls cost a query-keys request ~30k of its
    ~360k instructions on the event loop."""

    __slots__ = ("_db", "_background", "_conn", "_observer", "_started")

    def __init__(self, db: Database, background: bool) -> None:
        self._db = db
        self._background = background

    async def __aenter__(self) -> Conn:
        observer = self._observer = self._db.observer
        self._started = time.perf_counter() if observer is not None else 0.0
        try:
            self._conn = self._db._begin(self._background)  # noqa: SLF001 - the Database's own helper
        except Exception as failure:
            self._db._failed(failure, observer, self._started)  # noqa: SLF001
            raise
        return self._conn

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        db, observer = self._db, self._observer
        try:
            await db._end(self._conn, exc is None)  # noqa: SLF001 - committed, or rolled back after a raise
        except Exception as failure:
            db._failed(failure, observer, self._started)  # noqa: SLF001
            raise
        if exc is None:
            if observer is not None:
                observer(time.perf_counter() - self._started, None)
        elif isinstance(exc, Exception):
            # StoreUnavailable for a lost database; the block's own exception goes on otherwise
            db._failed(exc, observer, self._started)  # noqa: SLF001


def _in_transaction(conn: Connection) -> bool:
    return bool(conn.connection.dbapi_connection.in_transaction)  # type: ignore[union-attr]


def _lose_group(store: _SqliteStore, conn: Connection, inbox: _Inbox, exc: BaseException) -> None:
    """On the writer: the outer transaction cannot go on; roll it back and fail the whole group."""
    generation = store.generation
    try:
        _end(conn, commit=False)
    finally:
        store.group_open = False
        log.warning("a group of SQLite write transactions was rolled back: %s", describe_error(exc))
        inbox.call(store.fail_generation, generation, exc)  # in order with the results around it


def _fail_group(group: list[_Pending], exc: BaseException) -> None:
    for _, fut, _ in group:
        if not fut.done():
            fut.set_exception(exc)


class Database:
    def __init__(self, url: str, synchronous: str = "full") -> None:
        self.url = url
        self.synchronous = synchronous
        self.is_postgres = url.startswith(("postgresql", "postgres"))
        self._sqlite: _SqliteStore | None = None
        self._aio_engine: AsyncEngine | None = None
        self._pg_pool: _PgPool | None = None
        self._pg_conn: type[_PgConn] | None = None  # keyplane.store.postgres, imported by open()
        self._listeners: list[Callable[[str], None]] = []
        self._listen_task: asyncio.Task[None] | None = None
        self._lock: Any = None
        # Told how long each transaction took and how it failed ("unavailable", "error", or None
        # when it did not): the metrics set it; None costs a transaction one attribute read.
        self.observer: Callable[[float, str | None], None] | None = None

    @classmethod
    def for_data_dir(cls, data_dir: Path, synchronous: str = "full") -> Database:
        prepare_data_dir(data_dir)
        return cls(f"sqlite:///{data_dir / 'keyplane.db'}", synchronous)

    async def open(self) -> None:
        if self.is_postgres:
            from sqlalchemy.ext.asyncio import create_async_engine

            from keyplane.store.postgres import _pg_pool, _PgConn

            url = self._dsn().replace("postgresql://", "postgresql+keyplane://", 1)
            # SQLAlchemy compiles, and runs what only it can on the transaction's own connection
            # (``_LendingDialect``): its engine opens none. No pre-ping (a round trip before every
            # transaction): a connection found broken is dropped by the statement that meets it, which
            # answers 503 (retryable).
            self._aio_engine = create_async_engine(url, poolclass=NullPool, hide_parameters=True)
            self._pg_pool = await _pg_pool(self._dsn(), self._aio_engine.dialect)
            self._pg_conn = _PgConn
            self._listen_task = asyncio.create_task(self._listen_forever())
        else:
            self._lock_file()
            self._sqlite = _SqliteStore(self.url, self.synchronous)
            try:
                await self._sqlite.open()
            except Exception:
                await self._sqlite.close()
                self._sqlite = None
                raise

    def _lock_file(self) -> None:
        """One process per SQLite file: a second one would serve from caches nobody invalidates."""
        path = self.url.removeprefix("sqlite:///")
        if not path or path == ":memory:":
            return
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, FILE_MODE)
        handle = os.fdopen(fd, "a+")  # held open for the life of the process
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
        if self._listen_task is not None:
            self._listen_task.cancel()
            try:
                await self._listen_task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        if self._pg_pool is not None:
            await self._pg_pool.close()
            self._pg_pool = None
            await asyncio.sleep(0)  # the connections' termination listeners run (_PoolConnection)
        if self._aio_engine is not None:
            await self._aio_engine.dispose()
        if self._sqlite is not None:
            await self._sqlite.close()
            self._sqlite = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def transaction(self, background: bool = False) -> _Transaction:
        """A transaction, as ``async with db.transaction() as conn``: committed when the block ends,
        rolled back when it raises.

        ``background``: a batch of work nobody is waiting on at once (a sweep): on SQLite it lets
        requests take the one writer first, and no request waits to commit with it.

        Losing the database (down, unreachable, refusing connections, locked too long) raises
        ``StoreUnavailable``, which clients see as a 503 and retry.
        """
        return _Transaction(self, background)

    def _failed(self, exc: Exception, observer: Callable[[float, str | None], None] | None, started: float) -> None:
        """A transaction failed with ``exc``: the observer is told, and ``StoreUnavailable`` raised when
        the database is lost (otherwise the caller raises ``exc`` itself)."""
        outage = _is_outage(exc)
        if observer is not None:
            observer(time.perf_counter() - started, "unavailable" if outage else _error_kind(exc))
        if outage:
            log.warning("the store is unavailable: %s", describe_error(exc))
            raise StoreUnavailable(f"the store is unavailable ({type(exc).__name__}); retry later") from exc

    async def execute_alone(self, stmt: Statement, params: Any = None, notices: Sequence[str] = ()) -> Rows:
        """One statement as a transaction of its own, committed (durably) when this returns, and the
        change notices of ``notices`` (``Conn.notify``) sent with it.

        The same as running it alone in ``transaction()`` and notifying; on PostgreSQL a prepared
        statement runs in autocommit on the node's pool: one round trip where a transaction block
        takes three (BEGIN, the statement, COMMIT with the notices). A prepared write without
        RETURNING carries its notices itself (``_notifying_sql``), which are then sent even when it
        changes no row. Its own transaction is as atomic as the block would be.
        """
        # ``_Transaction`` written out: through it, getting a key by id ran ~10k more instructions on
        # the loop (its object and its __aenter__/__aexit__ coroutines), creating a key ~3k more.
        observer = self.observer
        started = time.perf_counter() if observer is not None else 0.0
        try:
            conn = self._begin(False)
            try:
                for kind in notices:
                    conn.notify(kind)
                rows = await conn.execute_alone(stmt, params)
            except BaseException:
                await self._end(conn, False)
                raise
            await self._end(conn, True)
        except Exception as exc:
            self._failed(exc, observer, started)
            raise
        if observer is not None:
            observer(time.perf_counter() - started, None)
        return rows

    async def copy_wal(self) -> None:
        """Background work's pause between batches: on SQLite, what the last batch wrote is copied from
        the WAL into the database file now, off the writer and the loop (``Checkpointer.copy_now``),
        so the next write starts the WAL over; nothing on PostgreSQL or an in-memory database."""
        checkpointer = self._sqlite.checkpointer if self._sqlite is not None else None
        if checkpointer is not None:
            await asyncio.to_thread(checkpointer.copy_now)

    async def maintain(self, sql: str, lock_timeout_ms: int) -> bool:
        """PostgreSQL: one maintenance statement (a VACUUM) outside any transaction, on a connection
        of the node's pool. It waits at most ``lock_timeout_ms`` for its lock, so that writers never
        queue behind it for long; False when the lock was not granted in that time."""
        if self._pg_pool is None:
            raise ValueError("maintenance statements are for PostgreSQL")
        import asyncpg

        from keyplane.store.postgres import _pg_error

        try:
            driver = await self._pg_pool.acquire()
            try:
                await driver.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
                try:
                    await driver.execute(sql)
                except asyncpg.LockNotAvailableError:
                    return False
                finally:
                    await driver.execute("RESET lock_timeout")  # pool connections keep their sessions
            finally:
                await self._pg_pool.release(driver)
        except Exception as exc:
            assert self._aio_engine is not None
            error = _pg_error(self._aio_engine.dialect, sql, exc)
            if _is_outage(error):
                raise StoreUnavailable(f"the store is unavailable ({type(exc).__name__}); retry later") from exc
            if error is exc:
                raise
            raise error from exc
        return True

    def _begin(self, background: bool) -> _SqliteConn | _PgConn:
        """A new transaction's connection (nothing is sent before its first statement)."""
        if self._sqlite is not None:
            return _SqliteConn(self._sqlite, self._broadcast_local, background)
        assert self._aio_engine is not None
        assert self._pg_pool is not None
        assert self._pg_conn is not None
        return self._pg_conn(self._aio_engine, self._pg_pool)

    async def _end(self, conn: _SqliteConn | _PgConn, ok: bool) -> None:
        """Commit (``ok``) or roll back a transaction of ``_begin``."""
        if isinstance(conn, _SqliteConn):
            await conn.finish(ok)
            return
        # This node drops its own caches when its transaction ends, so that it never serves a stale
        # answer to the caller's next request; LISTEN then skips the notices of the node's own
        # connections (``_PgPool.sent_here``). Also when the transaction failed, if its notices may
        # have been committed (a statement alone, a COMMIT cancelled while under way).
        try:
            await conn.finish(ok)
        except BaseException:
            if conn.maybe_notified:
                self._broadcast_local(conn.notices)
            raise
        if conn.notices and (ok or conn.maybe_notified):
            self._broadcast_local(conn.notices)

    def _dsn(self) -> str:
        return self.url.replace("postgresql+asyncpg://", "postgresql://", 1).replace("postgres://", "postgresql://", 1)

    def on_change(self, listener: Callable[[str], None]) -> None:
        self._listeners.append(listener)

    def _broadcast_local(self, kinds: list[str]) -> None:
        for kind in kinds:
            for listener in self._listeners:
                listener(kind)

    def _heard(self, _conn: Any, pid: int, _channel: str, kind: str) -> None:
        """A change notice: this node's own were acted on when their transaction ended (``_end``)."""
        pool = self._pg_pool
        if pool is None or not pool.sent_here(pid):
            self._broadcast_local([kind])

    async def _listen_forever(self) -> None:
        """Hold a LISTEN connection open; reconnect after a failure and then drop every cache."""
        import asyncpg

        while True:
            try:
                conn = await asyncpg.connect(self._dsn())
                try:
                    await conn.add_listener(CHANNEL, self._heard)
                    self._broadcast_local(["*"])  # changes may have been missed while disconnected
                    while not conn.is_closed():
                        await asyncio.sleep(1)
                finally:
                    await conn.close()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep listening whatever went wrong
                log.warning("change listener lost its connection (%s); retrying", describe_error(exc))
                await asyncio.sleep(0.5)
