"""The security repositories on a real store (SQLite, or PostgreSQL with KEYPLANE_TEST_STORE=postgres)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import insert, select

from keyplane.security import roles as role_mod
from keyplane.security.backends.sql import (
    SqlIndexSettingsRepository,
    SqlPrivilegeRepository,
    SqlRoleRepository,
    SqlUserRepository,
)
from keyplane.security.users import User
from keyplane.store import schema
from keyplane.store.database import Database
from keyplane.store.migrations import MIGRATIONS, migrate
from tests.integration.stores import open_migrated


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_migrations_are_idempotent(database_url: str) -> None:
    async def go() -> None:
        db = await open_migrated(database_url)
        assert await migrate(db) == len(MIGRATIONS)
        async with db.transaction() as conn:
            versions = (await conn.execute(select(schema.schema_version.c.version))).rows
        assert versions == [{"version": len(MIGRATIONS)}]
        await db.close()

    run(go())


def test_users_roundtrip_and_partial_updates(database_url: str) -> None:
    async def go() -> None:
        db = await open_migrated(database_url)
        repo = SqlUserRepository(db)
        assert await repo.put(User("ann", roles=["r"], metadata={"k": 1}), "$2a$10$" + "x" * 53) is True
        assert await repo.put(User("ann", roles=["r2"], full_name="Ann"), None) is False
        stored = await repo.get("ann")
        assert stored is not None
        assert stored.user.roles == ["r2"] and stored.user.full_name == "Ann"
        assert stored.password_hash == "$2a$10$" + "x" * 53  # kept when not given
        assert await repo.set_enabled("ann", False)
        assert (await repo.get("ann")).user.enabled is False  # type: ignore[union-attr]
        assert not await repo.set_enabled("nobody", False)
        assert await repo.delete("ann") and not await repo.delete("ann")
        await db.close()

    run(go())


def test_concurrent_writers_lose_nothing(database_url: str) -> None:
    async def go() -> None:
        db = await open_migrated(database_url)
        repo = SqlUserRepository(db)
        await repo.put(User("zed", roles=["a"]), "h0")
        # Different fields of one record written concurrently: each survives.
        await asyncio.gather(
            repo.set_password("zed", "h1"),
            repo.set_enabled("zed", False),
            *[repo.put(User(f"user{i}", roles=["a"]), "h") for i in range(20)],
        )
        stored = await repo.get("zed")
        assert stored is not None and stored.password_hash == "h1" and stored.user.enabled is False
        assert len(await repo.list()) == 21
        # Concurrent creation of one record: exactly one creates, the others update.
        results = await asyncio.gather(*[repo.put(User("same", roles=[str(i)]), "h") for i in range(10)])
        assert results.count(True) == 1
        await db.close()

    run(go())


def test_failed_transaction_changes_nothing(database_url: str) -> None:
    async def go() -> None:
        db = await open_migrated(database_url)
        with pytest.raises(RuntimeError):
            async with db.transaction() as conn:
                await conn.execute(insert(schema.roles).values(name="half", doc="{}", seq_no=1))
                raise RuntimeError("boom")
        assert await SqlRoleRepository(db).get_many(["half"]) == {}
        await db.close()

    run(go())


def test_roles_and_privileges(database_url: str) -> None:
    async def go() -> None:
        db = await open_migrated(database_url)
        changes: list[str] = []
        db.on_change(changes.append)
        roles = SqlRoleRepository(db)
        rd = role_mod.parse("ops", {"cluster": ["monitor"], "indices": [{"names": "a", "privileges": ["read"]}]})
        assert await roles.put(rd) is True
        got = (await roles.get_many(["ops", "missing"]))["ops"]
        assert got.to_dict() == rd.to_dict()
        assert "roles" in changes
        privs = SqlPrivilegeRepository(db)
        assert await privs.put({"application": "app", "name": "read", "actions": ["a:b"], "metadata": {}})
        assert not await privs.put({"application": "app", "name": "read", "actions": ["a:c"], "metadata": {}})
        assert (await privs.get("app", ["read"]))[0]["actions"] == ["a:c"]
        assert await privs.delete("app", "read")
        await db.close()

    run(go())


def test_one_process_per_sqlite_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async def go() -> None:
        url = f"sqlite:///{tmp_path / 'k.db'}"
        first = Database(url)
        await first.open()
        with pytest.raises(RuntimeError, match="in use by another Keyplane process"):
            await Database(url).open()
        await first.close()
        again = Database(url)
        await again.open()  # free once the first one closed
        await again.close()

    run(go())


def test_index_settings_concurrent_writes_and_reset(database_url: str) -> None:
    async def go() -> None:
        db = await open_migrated(database_url)
        repo = SqlIndexSettingsRepository(db)
        assert await repo.get_all() == {}
        # Many writers of the same and of different settings at once: no error, the last word of each survives.
        await asyncio.gather(
            *[repo.put({"security": {"index.number_of_replicas": str(i)}}) for i in range(8)],
            repo.put({"security-tokens": {"index.auto_expand_replicas": None}}),
        )
        stored = await repo.get_all()
        assert stored["security"]["index.number_of_replicas"] in {str(i) for i in range(8)}
        assert stored["security-tokens"] == {"index.auto_expand_replicas": None}
        await repo.delete_all()
        assert await repo.get_all() == {}
        await db.close()

    run(go())
