"""Wiring: builds the store, repositories and services once, and starts and stops them."""

from __future__ import annotations

import logging
import secrets
import uuid
from typing import Any

from sqlalchemy import insert, select

from keyplane.config import Settings
from keyplane.security.authc import PasswordAuthenticator
from keyplane.security.backends.sql import SqlPrivilegeRepository, SqlRoleRepository, SqlUserRepository
from keyplane.security.service import PrivilegeService, RoleService, UserService
from keyplane.store import schema
from keyplane.store.database import Database
from keyplane.store.migrations import migrate

log = logging.getLogger("keyplane")


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        if settings.database_url:
            self.db = Database(settings.database_url)
        else:
            self.db = Database.for_data_dir(settings.data_dir)
        user_repo = SqlUserRepository(self.db)
        self.users = UserService(user_repo)
        self.roles = RoleService(SqlRoleRepository(self.db))
        self.privileges = PrivilegeService(SqlPrivilegeRepository(self.db))
        self.passwords = PasswordAuthenticator(user_repo, self.roles)
        self.cluster_uuid = ""
        self.node_id = secrets.token_urlsafe(16)[:22]
        self.db.on_change(self._on_change)

    def _on_change(self, kind: str) -> None:
        if kind in ("users", "*"):
            self.passwords.cache.clear()
        if kind in ("roles", "*"):
            self.roles.invalidate()

    async def start(self) -> None:
        await self.db.open()
        await migrate(self.db)
        self.cluster_uuid = await self._cluster_uuid()
        if not await self.users.bootstrap_elastic(self.settings.elastic_password):
            password = secrets.token_urlsafe(18)
            await self.users.bootstrap_elastic(password)
            # Printed once, plainly, as Elasticsearch does on its first start.
            print(
                "\n"
                f"  Keyplane generated a password for the 'elastic' superuser: {password}\n"
                "  Change it with: curl -u elastic -X POST http://HOST:PORT/_security/user/elastic/_password "
                "-H 'Content-Type: application/json' -d '{\"password\": \"...\"}'\n"
                "  or start with ELASTIC_PASSWORD=... to set it.\n",
                flush=True,
            )
        if self.settings.test_mode:
            log.warning("KEYPLANE_TEST_MODE is on: POST /_keyplane/_reset wipes all state. Never use it in production.")

    async def stop(self) -> None:
        await self.db.close()

    async def _cluster_uuid(self) -> str:
        props = schema.properties
        async with self.db.transaction() as conn:
            row = (await conn.execute(select(props.c.value).where(props.c.name == "cluster_uuid"))).first()
            if row:
                return str(row["value"])
            value = uuid.uuid4().hex[:22]
            await conn.execute(insert(props).values(name="cluster_uuid", value=value))
            return value

    def nodes_response(self) -> dict[str, Any]:
        """The body of cache-clearing APIs; every node drops its caches through change notices."""
        return {
            "_nodes": {"total": 1, "successful": 1, "failed": 0},
            "cluster_name": self.settings.cluster_name,
            "nodes": {self.node_id: {"name": self.settings.node_name}},
        }

    async def reset(self) -> None:
        """Test mode only: remove everything a test can create, keeping ``elastic``."""
        await self.users.repo.delete_all_except("elastic")
        await self.roles.repo.delete_all()
        await self.privileges.repo.delete_all()
        async with self.db.transaction() as conn:
            conn.notify("*")
