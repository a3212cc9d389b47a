"""The stored application privileges a role names, as implicit-privilege providers receive them
(real SQLite, or PostgreSQL with KEYPLANE_TEST_STORE=postgres)."""

from __future__ import annotations

import asyncio

from keyplane.security import roles as role_mod
from keyplane.security.backends.sql import SqlPrivilegeRepository
from keyplane.security.privilege_service import PrivilegeService
from keyplane.store.database import Database
from keyplane.store.migrations import migrate


def test_named_by_matches_application_exactly_or_by_wildcard_and_privilege_by_name(database_url: str) -> None:
    async def go() -> None:
        db = Database(database_url)
        await db.open()
        await migrate(db)
        service = PrivilegeService(SqlPrivilegeRepository(db))
        for app, name in (
            ("kibana-.kibana", "read"),
            ("kibana-.kibana", "all"),
            ("kibana-other", "read"),
            ("zz", "read"),
        ):
            await service.repo.put({"application": app, "name": name, "actions": [f"{app}:{name}"], "metadata": {}})
        exact = role_mod.parse(
            "r", {"applications": [{"application": "kibana-.kibana", "privileges": ["read", "x"], "resources": ["*"]}]}
        )
        assert [(p["application"], p["name"]) for p in await service.named_by(exact)] == [("kibana-.kibana", "read")]
        wild = role_mod.parse(
            "w",
            {
                "applications": [
                    {"application": "kibana-*", "privileges": ["read"], "resources": ["*"]},
                    {"application": "kibana-.kibana", "privileges": ["read"], "resources": ["space:a"]},
                ]
            },
        )
        found = sorted((p["application"], p["name"]) for p in await service.named_by(wild))
        assert found == [("kibana-.kibana", "read"), ("kibana-other", "read")]  # each once
        assert await service.named_by(role_mod.parse("n", {"cluster": ["monitor"]})) == []
        await db.close()

    asyncio.run(go())
