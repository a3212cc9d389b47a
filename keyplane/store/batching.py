"""Batches of background writes bounded by time, not by a fixed number of rows.

A write batch holds the store's writer (SQLite's one writer thread, PostgreSQL's row locks) while it
runs, so every other write waits for it. How long a row takes depends on the table's indexes, the
disk and whatever else shares the machine, so a fixed row count is either too big (others wait
more than ``TARGET_SECONDS``) or wastefully small. ``BatchSize`` picks the next batch's rows from
the time the last ones took.
"""

from __future__ import annotations

from dataclasses import dataclass

# What a batch may hold the writer for, by default: well under the 50 ms others may wait for a write,
# since a write that comes meanwhile waits for the batch's statements and then for its COMMIT, which
# writes and syncs every page the batch changed, and runs several times slower on a loaded machine.
# Callers say what ``took`` times (a bulk update its whole transaction; the sweep its DELETE and
# COMMIT, with a target of its own).
TARGET_SECONDS = 0.005


@dataclass
class BatchSize:
    """Rows for the next batch, between ``least`` and ``most``, aiming at ``target`` seconds a batch."""

    rows: int
    least: int
    most: int
    target: float = TARGET_SECONDS

    def took(self, seconds: float, rows: int) -> None:
        """The last batch wrote ``rows`` rows in ``seconds``; size the next one."""
        if rows <= 0 or seconds <= 0:
            return
        ideal = self.target * rows / seconds
        # Halfway to the ideal size: one slow batch (a fsync, a busy core) does not shrink it to the least.
        self.rows = max(self.least, min(self.most, int((self.rows + ideal) / 2)))
