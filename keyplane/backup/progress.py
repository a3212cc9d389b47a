"""Progress lines of long work on stderr: the table, its rows done of its total, the overall rate.

At most one line per ``interval`` seconds however fast rows go, so a terminal is never flooded.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, action: str, total: int, *, enabled: bool, stream: TextIO | None = None) -> None:
        self.action = action
        self.total = total
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.interval = 0.5
        self.done = 0
        self._started = time.monotonic()
        self._last = self._started

    def advance(self, table: str, table_done: int, table_total: int, rows: int) -> None:
        """``rows`` more rows are done; ``table_done`` of ``table_total`` of ``table`` so far."""
        self.done += rows
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        self._print(f"{table}: {table_done:,} of {table_total:,} rows", now)

    def finish(self) -> None:
        if self.enabled:
            self._print("done", time.monotonic())

    def _print(self, what: str, now: float) -> None:
        elapsed = max(now - self._started, 1e-6)
        rate = self.done / elapsed
        self.stream.write(
            f"{self.action}: {what}; {self.done:,} of {self.total:,} rows in all, {rate:,.0f} rows/s, {elapsed:.1f} s\n"
        )
        self.stream.flush()
