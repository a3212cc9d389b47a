"""Use cases of role mappings: write, read and delete them (they grant nothing in Keyplane's realms)."""

from __future__ import annotations

from typing import Any

from keyplane.security import role_mappings
from keyplane.security.backends.base import RoleMappingRepository


class RoleMappingService:
    def __init__(self, repo: RoleMappingRepository) -> None:
        self.repo = repo

    async def put(self, name: str, body: Any) -> bool:
        """Store a role mapping from its body; whether it was created."""
        return await self.repo.put(name, role_mappings.parse(name, body))

    async def get(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """Named mappings (all when empty) in their stored form, by name."""
        return await self.repo.get(names)

    async def delete(self, name: str) -> bool:
        return await self.repo.delete(name)

    async def delete_all(self) -> None:
        """Test mode's reset."""
        await self.repo.delete_all()
