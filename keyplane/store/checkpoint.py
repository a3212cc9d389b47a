"""WAL checkpoints on a thread of their own, so no writer (and no request behind it) waits for one.

SQLite's automatic checkpoint runs inside the COMMIT that takes the WAL past 1000 pages, on the
writer thread: it copies the WAL into the database file and syncs it, and every write queued behind
that COMMIT waits (measured: creations up to ~120 ms beside the retention sweep). The writer's
automatic checkpoint is therefore off, and this thread runs them instead on its own connection:

- PASSIVE soon after new frames are written (``INTERVAL``): it copies what no reader still needs and
  never takes the write lock nor waits for a reader, so writers and readers go on meanwhile. Once
  every frame is copied, the writer's next transaction starts the WAL over from its beginning, so
  the file stops growing, and the writer's ``journal_size_limit`` cuts it back to ``WAL_LIMIT``.
- Under writes back to back, or reads back to back, the WAL is never all copied at the moment a
  write begins, so it is never started over (SQLite's automatic checkpoint has the same flaw: the
  WAL grew past 100 MiB beside a sweep). Past ``WAL_LIMIT`` the writer therefore runs a RESTART
  checkpoint itself once a COMMIT's callers are answered (``after_commit``): it copies only what
  this thread has not (some milliseconds of writes), waits at most ``RESTART_WAIT_MS`` for readers of older
  snapshots, and the next write starts the WAL over. That is one short pause per ``WAL_LIMIT``
  written, instead of a checkpoint every 1000 pages inside a COMMIT. If a snapshot is held longer
  (a backup, the ``sqlite3`` shell), the next try waits for another ``WAL_LIMIT`` of writes.
- TRUNCATE only when the store has been idle for ``IDLE_SECONDS``. It never waits: with no busy
  timeout it gives up at once if a writer or an older snapshot is in the way, and is tried later.
- Background work in batches (the retention sweep) asks for a PASSIVE checkpoint after each batch
  (``copy_now``, on this connection, from a worker thread) and waits for it before the next one.
  Each checkpoint then copies one batch's pages (a few MiB at most) while the work rests, instead of
  half a second of batches at once beside the writer's commits (measured: PASSIVE up to 88 ms, and
  COMMITs of requests up to 78 ms behind the disk it kept busy), and the next write starts the WAL
  over, so the writer never has a RESTART to run (up to 72 ms beside the sweep, every write waiting).

Durability is unchanged: a commit is durable when its frames are synced in the WAL (the writer's
``synchronous``), and a checkpoint syncs the WAL before copying and the database file after, with the
same ``synchronous`` setting on this connection.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("keyplane.store")

# How often the thread looks for new WAL frames; also the most a checkpoint lags behind writes that pause.
INTERVAL = 0.05
# Under writes back to back, at most one PASSIVE checkpoint this often (unless the WAL is past its
# bound): a page rewritten by many transactions meanwhile is copied and synced once, not once each.
SPACING = 0.5
# No new frames for this long: the WAL is folded back into the database and truncated to nothing.
IDLE_SECONDS = 2.0
# Past this size the writer starts the WAL over even under load (``after_commit``), and cuts the
# file back to this size whenever it starts it over (``PRAGMA journal_size_limit``).
WAL_LIMIT = 64 * 1024 * 1024
# How long the writer's RESTART checkpoint waits for readers of older snapshots to finish.
RESTART_WAIT_MS = 20
# At most this many PASSIVE runs for one ``copy_now``: past them, requests write back to back.
COPY_RUNS = 5


@dataclass(frozen=True)
class Run:
    """One checkpoint: its mode, its thread, when it started (``time.monotonic``), its time and SQLite's answer."""

    mode: str
    by: str  # "thread", "writer" or "work" (``copy_now``)
    started: float
    seconds: float
    busy: bool  # it could not finish (a reader's snapshot, or the writer, was in the way)
    wal_frames: int  # frames in the WAL, -1 if SQLite could not tell
    copied: int  # frames now in the database file, -1 if SQLite could not tell


class Checkpointer:
    """A thread running the WAL checkpoints of the SQLite file at ``path``."""

    def __init__(self, path: str, synchronous: str) -> None:
        self.path = path
        self.synchronous = synchronous
        self.runs = 0
        # Called with every run, on the checkpointer thread (bench/stalls.py records them).
        self.on_run: Callable[[Run], None] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="keyplane-sqlite-checkpointer", daemon=True)
        self._conn: sqlite3.Connection | None = None
        # The connection is used by this thread and by ``copy_now`` on another: one at a time.
        self._using = threading.Lock()
        # Set by this thread when the WAL is past ``_bound``; read and cleared by the writer thread,
        # which raises the bound when it could not start the WAL over.
        self._catch_up = False
        self._bound = WAL_LIMIT

    def start(self) -> None:
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # Never wait for a lock: a checkpoint that would wait gives up and is tried again later.
        self._conn.execute("PRAGMA busy_timeout=0")
        self._conn.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (after the checkpoint under way, if any); blocks, so call it off the loop."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        with self._using:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def copy_now(self) -> Run | None:
        """A PASSIVE checkpoint now, on this checkpointer's connection (blocks: call it off the loop).

        For background work between its batches: what the last batch wrote is copied before the next
        one begins. Requests' writes that come meanwhile (the ones that waited for the batch come at
        once) are copied by further runs, a few frames each, until a run finds nothing new: the WAL is
        then all copied, so the next write starts it over (it would otherwise grow by a batch a time).
        """
        run: Run | None = None
        frames = -1
        for _ in range(COPY_RUNS):
            run = self._own("PASSIVE", by="work")
            if run is None or run.busy or run.copied < run.wal_frames or run.wal_frames == frames:
                break  # a reader's snapshot holds frames back, or nothing was written since the last run
            frames = run.wal_frames
        return run

    def _loop(self) -> None:
        seen = self._wal_state()
        last_write = last_copy = time.monotonic()
        tidy = True  # the WAL is empty, or was truncated since the last write
        behind = False  # frames were written since the last PASSIVE checkpoint
        while not self._stop.wait(INTERVAL):
            state = self._wal_state()
            now = time.monotonic()
            if state != seen:
                seen, last_write, tidy, behind = state, now, False, True
            if behind and not self._catch_up:  # else the writer's checkpoint must not find this one running
                # Soon after writes pause; under writes back to back, once per SPACING or past the bound.
                if last_write < now or now - last_copy >= SPACING or state[0] > self._bound:
                    self._own("PASSIVE")
                    last_copy, behind = now, False
                    # Asked after copying, so the writer's own checkpoint has little left to copy.
                    self._catch_up = self._wal_state()[0] > self._bound
            elif not tidy and now - last_write >= IDLE_SECONDS:
                run = self._own("TRUNCATE")
                tidy = run is not None and not run.busy
                seen = self._wal_state()

    def _wal_state(self) -> tuple[int, int]:
        """The WAL's size and modification time: they change when frames are written."""
        try:
            st = os.stat(self.path + "-wal")
        except OSError:
            return (0, 0)
        return (st.st_size, st.st_mtime_ns)

    def after_commit(self, writer: Any) -> None:
        """On the writer thread, between transactions: catch up if the WAL is past its bound."""
        if not self._catch_up:
            return
        self._catch_up = False  # until this thread sees the WAL past the bound again
        run: Run | None = None
        try:
            # The commit is done: nothing here may fail it.
            cur = writer.cursor()
            try:
                waits = cur.execute("PRAGMA busy_timeout").fetchone()[0]
                cur.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
                try:
                    run = self._checkpoint(writer, "RESTART", by="writer")
                finally:
                    cur.execute(f"PRAGMA busy_timeout={int(waits)}")
            finally:
                cur.close()
        except sqlite3.Error as exc:
            log.debug("WAL checkpoint on the writer failed: %s", type(exc).__name__)
        if run is not None and not run.busy:
            self._bound = WAL_LIMIT
        else:  # a snapshot held on: try again once as much more has been written
            self._bound = self._wal_state()[0] + WAL_LIMIT

    def _own(self, mode: str, by: str = "thread") -> Run | None:
        """A checkpoint on this checkpointer's own connection."""
        with self._using:
            return self._checkpoint(self._conn, mode, by)

    def _checkpoint(self, conn: Any, mode: str, by: str = "thread") -> Run | None:
        if conn is None:
            return None
        started = time.monotonic()
        try:
            cur = conn.cursor()
            try:
                row = cur.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            finally:
                cur.close()
        except sqlite3.Error as exc:
            # Locked, or a disk error the writer will meet and report too: try again next time.
            log.debug("WAL checkpoint (%s) failed: %s", mode, type(exc).__name__)
            return None
        took = time.monotonic() - started
        run = Run(mode, by, started, took, bool(row[0]), int(row[1]), int(row[2]))
        self.runs += 1
        if self.on_run is not None:
            self.on_run(run)
        return run


def for_file(path: str, synchronous: str) -> Checkpointer | None:
    """A checkpointer for a database file, none for an in-memory database (no WAL)."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Checkpointer(path, synchronous)
