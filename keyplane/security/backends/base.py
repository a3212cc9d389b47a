"""Storage interfaces of the security domain. ``sql.py`` implements them for SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from keyplane.security.roles import RoleDescriptor
from keyplane.security.users import User


@dataclass
class StoredUser:
    user: User
    password_hash: str | None


class UserRepository(Protocol):
    async def get(self, username: str) -> StoredUser | None: ...

    async def list(self, usernames: list[str] | None = None) -> list[StoredUser]: ...

    async def put(self, user: User, password_hash: str | None) -> bool:
        """Create or replace a user; keep the stored hash when ``password_hash`` is None."""
        ...

    async def delete(self, username: str) -> bool: ...

    async def set_enabled(self, username: str, enabled: bool) -> bool: ...

    async def set_password(self, username: str, password_hash: str) -> bool: ...

    async def put_reserved(self, username: str, password_hash: str | None, enabled: bool | None = True) -> None:
        """Store a built-in user's password (or only its enabled flag when the hash is None); ``enabled``
        None keeps the stored flag (a built-in user never stored yet starts enabled)."""
        ...

    async def delete_all_except(self, username: str) -> None: ...


class RoleRepository(Protocol):
    async def get_many(self, names: list[str]) -> dict[str, RoleDescriptor]: ...

    async def list(self) -> list[RoleDescriptor]: ...

    async def put(self, role: RoleDescriptor) -> bool: ...

    async def delete(self, name: str) -> bool: ...

    async def delete_all(self) -> None: ...


class PrivilegeRepository(Protocol):
    async def get(self, application: str | None, names: list[str]) -> list[dict[str, Any]]: ...

    async def put(self, privilege: dict[str, Any]) -> bool: ...

    async def delete(self, application: str, name: str) -> bool: ...

    async def delete_all(self) -> None: ...


class RoleMappingRepository(Protocol):
    async def get(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """Named mappings (every mapping when ``names`` is empty), in name order."""
        ...

    async def put(self, name: str, mapping: dict[str, Any]) -> bool: ...

    async def delete(self, name: str) -> bool: ...

    async def delete_all(self) -> None: ...


class IndexSettingsRepository(Protocol):
    async def get_all(self) -> dict[str, dict[str, str | None]]:
        """Stored settings per security index; ``None`` marks a setting reset to nothing."""
        ...

    async def put(self, changes: dict[str, dict[str, str | None]]) -> None:
        """Store every change at once."""
        ...

    async def delete_all(self) -> None: ...
