"""Appends audit lines to their file from a thread, behind a bounded buffer.

The caller (the audit trail, on the event loop) appends a batch of finished lines to a deque as one
chunk (no lock, no I/O); a full buffer counts the events as dropped instead of waiting. The writer
thread wakes every :data:`FLUSH_INTERVAL_SECONDS` (or as soon as the buffer is half full) and
appends what is buffered in one write, so a burst costs one system call rather than one per event,
and the thread holds the GIL only to join the chunks. Lines are not rendered here: Python work on
this thread would take the GIL from the event loop all the same, and rendering records here cost
more (measured in process: 3.9 µs a line rendered in bursts on the thread, 2.1 µs on the loop).

Counters are changed by one thread each (``queued`` and ``dropped`` by the caller's, ``written`` and
``failed`` by the writer's), so that no update is lost between threads; what is buffered is their
difference.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger("keyplane.audit")

FILE_MODE = 0o600  # the audit log says who did what: owner-only, as the data dir's files
# Each wake-up under load takes the GIL from the event loop and, on a server pinned to one CPU,
# preempts it: at 10 ms the process switched context 3.5 times as often as with the audit log off;
# at 50 ms as often. A line reaches the file within about 60 ms of its event (10 ms to the hand-off).
FLUSH_INTERVAL_SECONDS = 0.05
BATCH = 1_000  # lines per write at most


class AuditWriter:
    def __init__(self, path: Path, capacity: int) -> None:
        self.path = path
        self.capacity = capacity
        self.queued = 0  # events accepted into the buffer
        self.dropped = 0  # events refused by a full buffer (the metrics show it)
        self.written = 0
        self.failed = 0  # events lost to a failed write (a full disk); changed by the writer's thread only
        self.unrendered = 0  # events that could not be rendered; changed by the event loop's thread only
        self._buffer: deque[tuple[bytes, int]] = deque()  # chunks of lines and how many lines each holds
        self._early = max(1, capacity // 2)  # a buffer this full wakes the writer before its interval
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._fd: int | None = None

    def open(self) -> None:
        """Open (or create) the file and start the writer; raises OSError when the file cannot be written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        self._thread = threading.Thread(target=self._run, name="keyplane-audit", daemon=True)
        self._thread.start()

    def buffered(self) -> int:
        """Events accepted and not yet written (nor lost to a failed write)."""
        return self.queued - self.written - self.failed

    def put(self, lines: bytes, count: int = 1) -> None:
        """Buffer ``count`` events' lines (each ``\\n``-terminated), or drop them all when they do not fit.

        Never blocks: deque appends are atomic under the GIL."""
        buffered = self.buffered()
        if buffered + count > self.capacity:
            self.dropped += count
            return
        self._buffer.append((lines, count))
        self.queued += count
        if buffered + count >= self._early:
            self._wake.set()

    def figures(self) -> tuple[int, int, int, int]:
        """Events buffered, written, dropped by a full buffer, lost otherwise (for the metrics)."""
        return self.buffered(), self.written, self.dropped, self.failed + self.unrendered

    def close(self) -> None:
        """Write what is buffered, then stop the thread and close the file."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _run(self) -> None:
        while True:
            self._wake.wait(FLUSH_INTERVAL_SECONDS)
            self._wake.clear()
            self._drain()
            if self._stopping:
                self._drain()
                return

    def _drain(self) -> None:
        buffer = self._buffer
        chunks: list[bytes] = []
        count = 0
        while buffer:  # popleft, not a swap of deques: the loop may append to the one it holds
            chunk, lines = buffer.popleft()
            chunks.append(chunk)
            count += lines
            if count >= BATCH:
                self._write(chunks, count)
                chunks, count = [], 0
        if chunks:
            self._write(chunks, count)

    def _write(self, chunks: list[bytes], count: int) -> None:
        assert self._fd is not None
        try:
            # Gathered by the kernel (at most BATCH chunks, under the usual IOV_MAX of 1024): no
            # joined copy is made here first, with the GIL held.
            written = os.writev(self._fd, chunks)
            if written < sum(map(len, chunks)):  # a short write: the rest, one piece at a time
                data = b"".join(chunks)[written:]
                while data:
                    data = data[os.write(self._fd, data) :]
            self.written += count
        except OSError as exc:  # a full disk loses these events, counted, and the writer goes on
            self.failed += count
            log.error("could not append to the audit log %s: %s", self.path, exc.strerror)


class Stamps:
    """ISO 8601 UTC times with milliseconds for the lines' starts; each millisecond is formatted
    once (events come in bursts), and the part up to the second once per second.

    Events carry times of the monotonic clock (``clock``: the dispatcher reads it once per request
    for the metrics and the audit log alike), turned into the wall clock's (``now``) when a new
    millisecond begins. :attr:`head` is the current millisecond's line start
    (``{"type":"audit","@timestamp":"...``) as text, valid for monotonic times in [:attr:`since`,
    :attr:`until`): the trail compares a time with the bounds rather than computing its millisecond."""

    def __init__(self, now: Callable[[], float] = time.time, clock: Callable[[], float] = time.perf_counter) -> None:
        self._now = now
        self._clock = clock
        self.second = -1
        self.prefix = ""
        self.head = ""
        self.since = self.until = 0.0

    def format(self, stamp: float) -> bytes:
        """A wall-clock time (seconds since the epoch) as text, to the millisecond."""
        return self._text(int(stamp * 1000)).encode()

    def begin(self, when: float) -> str:
        """The line start of an event at ``when`` (the monotonic clock's seconds)."""
        if not self.since <= when < self.until:
            offset = self._now() - self._clock()
            milli = int((when + offset) * 1000)
            self.head = LINE_START + self._text(milli)
            self.since, self.until = milli / 1000 - offset, (milli + 1) / 1000 - offset
        return self.head

    def _text(self, milli: int) -> str:
        second = milli // 1000
        if second != self.second:
            self.second = second
            self.prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self.prefix}.{milli % 1000:03d}Z"


LINE_START = '{"type":"audit","@timestamp":"'
