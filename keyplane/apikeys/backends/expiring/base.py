"""Storage interface of the expiring-keys read. ``sql.py`` implements it for SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ExpiringWindow:
    """Live keys (not invalidated) whose expiration is after ``now`` and at or before ``until``.

    Ordered by expiration, then id; ``after`` is the (expiration, id) of the last key of the
    previous page (search_after). ``owner`` (username, realm) or ``key_id`` narrow it to the keys a
    caller that sees only its own may see.
    """

    now: int
    until: int
    start: int = 0
    size: int = 10
    after: tuple[int, str] | None = None
    owner: tuple[str, str] | None = None
    key_id: str | None = None


@dataclass(frozen=True)
class ExpiringIds:
    total: int  # keys in the window, whatever the page
    ids: list[str]  # the page's keys, in order


class ExpiringKeyRepository(Protocol):
    async def expiring(self, window: ExpiringWindow) -> ExpiringIds: ...
