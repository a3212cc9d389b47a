"""What the metrics read of the stored state when scraped: a few aggregates, no rows."""

from __future__ import annotations

from typing import Protocol


class StateCounts(Protocol):
    async def api_keys(self, now_ms: int) -> dict[str, int]:
        """Keys by state: ``active``, ``expired`` (not invalidated, expiration passed), ``invalidated``."""
        ...

    async def connectors(self) -> dict[str, int]:
        """Connectors that are not deleted, by their ``status``."""
        ...

    async def sync_jobs(self) -> dict[str, int]:
        """Sync jobs by their ``status``."""
        ...
