"""Storage interface of user profiles. ``sql.py`` implements it for SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass
class StoredProfile:
    uid: str
    enabled: bool
    doc: dict[str, Any]
    seq_no: int  # the version a compare-and-set ``replace`` expects


class ProfileRepository(Protocol):
    async def get(self, uid: str) -> StoredProfile | None: ...

    async def get_many(self, uids: list[str]) -> dict[str, StoredProfile]:
        """The profiles of ``uids`` that exist, by uid, read in a few statements however many are asked."""
        ...

    async def by_user(self, usernames: list[str]) -> dict[tuple[str, str], str]:
        """(username, realm) -> uid for the users that have a profile."""
        ...

    async def all_enabled(self) -> list[StoredProfile]: ...

    async def activate(self, uid: str, username: str, realm: str, user: dict[str, Any], now: int) -> StoredProfile:
        """Create the profile, or refresh its user snapshot and enable it."""
        ...

    async def replace(self, profile: StoredProfile) -> bool:
        """Write the profile if it is still at ``profile.seq_no``; False when another writer came first."""
        ...

    async def delete_all(self) -> None: ...
