"""Storage interface of access tokens. ``sql.py`` implements it for SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Protocol

from keyplane.tokens.core import Token


class TokenRepository(Protocol):
    async def insert(self, token: Token, access_hash: str, refresh_hash: str | None) -> None: ...

    async def by_access(self, access_hash: str) -> Token | None: ...

    async def by_refresh(self, refresh_hash: str) -> Token | None: ...

    async def use_refresh(self, refresh_hash: str) -> Token | None:
        """Mark a refresh token used, once; return its token when this call was the one that did."""
        ...

    async def invalidate(
        self,
        *,
        access_hash: str | None = None,
        refresh_hash: str | None = None,
        username: str | None = None,
        realm: str | None = None,
    ) -> tuple[int, int]:
        """Invalidate the matching tokens; answer how many were live and how many were invalidated before."""
        ...

    async def delete_expired(self, before: int) -> None: ...

    async def delete_all(self) -> None: ...
