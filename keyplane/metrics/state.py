"""Aggregates of the stored state for a scrape, read at most every few seconds.

A scrape every few seconds from several Prometheus servers must not become a steady load on
the store: the last figures are kept for :data:`MAX_AGE_SECONDS`, and concurrent scrapes share
one read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from keyplane.errors import StoreUnavailable
from keyplane.metrics.backends.base import StateCounts
from keyplane.timevalue import now_ms

log = logging.getLogger("keyplane.metrics")

MAX_AGE_SECONDS = 10.0


@dataclass
class Snapshot:
    api_keys: dict[str, int] = field(default_factory=dict)
    connectors: dict[str, int] = field(default_factory=dict)
    sync_jobs: dict[str, int] = field(default_factory=dict)
    read_at: float = float("-inf")  # time.monotonic() of the read
    failed: bool = False  # the last read failed (the store was unavailable): figures are older


class StateReader:
    def __init__(self, counts: StateCounts) -> None:
        self.counts = counts
        self.snapshot = Snapshot()
        self._lock = asyncio.Lock()

    async def current(self) -> Snapshot:
        if time.monotonic() - self.snapshot.read_at < MAX_AGE_SECONDS:
            return self.snapshot
        async with self._lock:  # a scrape that waited here finds the figures the other one read
            if time.monotonic() - self.snapshot.read_at >= MAX_AGE_SECONDS:
                await self._read()
        return self.snapshot

    async def _read(self) -> None:
        try:
            self.snapshot = Snapshot(
                await self.counts.api_keys(now_ms()),
                await self.counts.connectors(),
                await self.counts.sync_jobs(),
                time.monotonic(),
            )
        except StoreUnavailable as exc:
            # The scrape still answers (request and cache figures are the ones that matter in an
            # outage); the store figures are the last known ones, and a gauge says they are stale.
            log.warning("metrics: the store's aggregates could not be read: %s", exc)
            self.snapshot.failed = True
            self.snapshot.read_at = time.monotonic()
