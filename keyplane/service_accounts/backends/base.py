"""Storage interface of service-account tokens. ``sql.py`` implements it for SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Protocol


class ServiceTokenRepository(Protocol):
    async def insert(self, key: str, account: str, name: str, secret_hash: str, creation: int) -> bool:
        """Store a token; False when one of that name exists already."""
        ...

    async def names(self, account: str) -> list[str]:
        """The names of an account's tokens, sorted."""
        ...

    async def secret_hash(self, key: str) -> str | None: ...

    async def delete(self, key: str) -> bool: ...

    async def delete_all(self) -> None: ...
