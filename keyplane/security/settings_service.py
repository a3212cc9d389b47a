"""Use cases of ``/_security/settings``: the replica settings of the security indices."""

from __future__ import annotations

from typing import Any

from keyplane.security import index_settings
from keyplane.security.backends.base import IndexSettingsRepository


class SecuritySettingsService:
    def __init__(self, repo: IndexSettingsRepository) -> None:
        self.repo = repo

    async def get(self) -> dict[str, dict[str, Any]]:
        """Every security index's settings (the defaults, as changed), by flat key."""
        stored = await self.repo.get_all()
        return {name: index_settings.effective(stored.get(name, {})) for name in index_settings.INDICES}

    async def update(self, given: dict[str, dict[str, Any]]) -> None:
        """Change the settings an update names, per index; all or nothing."""
        await self.repo.put(index_settings.parse_update(given))

    async def delete_all(self) -> None:
        """Test mode's reset: every index back to its defaults."""
        await self.repo.delete_all()
