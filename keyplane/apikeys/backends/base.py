"""Storage interface of API keys. ``sql.py`` implements it for SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from keyplane.apikeys.core import ApiKey
from keyplane.query.aggs import Agg, AggResult
from keyplane.query.tree import Query, SortKey


@dataclass
class KeyFilter:
    """The selectors of get and invalidate: every given one must match."""

    ids: list[str] | None = None
    name: str | None = None  # "*" for any, "prefix*" for a prefix, else exact
    username: str | None = None
    realm: str | None = None
    active_only: bool = False
    exclude_invalidated: bool = False


@dataclass
class Page:
    total: int
    keys: list[ApiKey]
    sort_values: list[list[Any]]


class ApiKeyRepository(Protocol):
    async def insert(self, key: ApiKey) -> None: ...

    async def get(self, key_id: str) -> ApiKey | None: ...

    async def find(self, selector: KeyFilter, now: int) -> list[ApiKey]: ...

    async def search(
        self, query: Query, sort: list[SortKey], start: int, size: int, search_after: list[Any] | None, now: int
    ) -> Page: ...

    async def aggregate(self, query: Query, aggs: list[Agg]) -> dict[str, AggResult]:
        """Results of ``aggs`` over the keys ``query`` matches, by aggregation name."""
        ...

    async def replace_many(self, keys: list[ApiKey]) -> set[str]:
        """Write keys back, each only if nobody changed it since it was read (compare-and-set on
        seq_no); return the ids written. Only what an update may change is written, with seq_no:
        not the key's last use, which authentication records meanwhile without raising seq_no. Each
        key is its own write, as each API key is its own document in Elasticsearch: a large list is
        written in several transactions, so others' writes are not held up for the whole list."""
        ...

    async def invalidate(self, ids: list[str], now: int) -> list[str]:
        """Invalidate the given live keys; return the ids this call invalidated."""
        ...

    async def record_last_used(self, used: dict[str, int]) -> None: ...

    async def delete_inactive(self, before: int) -> int:
        """Delete keys expired or invalidated at or before ``before``, in batches; return how many."""
        ...

    async def compact_counts(self) -> list[tuple[str, float]]:
        """Rewrite count tables grown far beyond their rows by bursts of writes; their names and the
        seconds each took."""
        ...

    async def delete_all(self) -> None: ...
