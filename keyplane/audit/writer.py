"""Appends audit events to their file from a thread, behind a bounded buffer.

The request path only appends a dict to a deque (no lock, no I/O, no serialisation); a full buffer
counts the event as dropped instead of waiting. The writer thread serialises what is buffered and
appends it in one write, flushed per batch, so a burst costs one system call rather than one per event.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("keyplane.audit")

FILE_MODE = 0o600  # the audit log says who did what: owner-only, as the data dir's files
IDLE_WAKE_SECONDS = 1.0


class AuditWriter:
    def __init__(self, path: Path, capacity: int) -> None:
        self.path = path
        self.capacity = capacity
        self.dropped = 0  # events refused by a full buffer (the metrics show it)
        self.written = 0
        self.failed = 0  # events lost to a failed write (a full disk)
        self._buffer: deque[dict[str, Any]] = deque()
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

    def put(self, event: dict[str, Any]) -> None:
        """Buffer one event; never blocks (deque appends are atomic under the GIL)."""
        if len(self._buffer) >= self.capacity:
            self.dropped += 1
            return
        self._buffer.append(event)
        if not self._wake.is_set():
            self._wake.set()

    def figures(self) -> tuple[int, int, int, int]:
        """Events buffered, written, dropped by a full buffer, lost to failed writes (for the metrics)."""
        return len(self._buffer), self.written, self.dropped, self.failed

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
            self._wake.wait(IDLE_WAKE_SECONDS)
            self._wake.clear()
            self._drain()
            if self._stopping:
                self._drain()
                return

    def _drain(self) -> None:
        buffer = self._buffer
        lines: list[bytes] = []
        while buffer:
            lines.append(_line(buffer.popleft()))
            if len(lines) >= 1_000:
                self._write(lines)
                lines = []
        if lines:
            self._write(lines)

    def _write(self, lines: list[bytes]) -> None:
        assert self._fd is not None
        data = b"".join(lines)
        try:
            while data:
                data = data[os.write(self._fd, data) :]
            self.written += len(lines)
        except OSError as exc:  # a full disk loses these events, counted, and the writer goes on
            self.failed += len(lines)
            log.error("could not append to the audit log %s: %s", self.path, exc.strerror)


def _line(event: dict[str, Any]) -> bytes:
    # The time is taken on the request path as a float and formatted here, off it.
    stamp = event.get("@timestamp")
    if isinstance(stamp, float):
        event["@timestamp"] = (
            datetime.fromtimestamp(stamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        )
    return orjson.dumps(event) + b"\n"
