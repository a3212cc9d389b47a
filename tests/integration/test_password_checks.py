"""Password checks on a real store: many requests of one client wait for one slow hash."""

from __future__ import annotations

import asyncio

import pytest

from keyplane.errors import Unauthenticated
from keyplane.security import password_realm
from keyplane.security.backends.sql import SqlRoleRepository, SqlUserRepository
from keyplane.security.password_realm import PasswordRealm
from keyplane.security.passwords import hash_password
from keyplane.security.role_service import RoleService
from keyplane.security.users import User
from keyplane.store.database import Database
from keyplane.store.migrations import migrate


def test_concurrent_checks_of_one_password_run_one_hash(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    hashes: list[str] = []
    real_verify = password_realm.verify_password

    def counting_verify(password: str, stored: str | None) -> bool:
        hashes.append(password)  # the real bcrypt check still runs: only counted
        return real_verify(password, stored)

    monkeypatch.setattr(password_realm, "verify_password", counting_verify)

    async def go() -> None:
        db = Database(database_url)
        await db.open()
        await migrate(db)
        users = SqlUserRepository(db)
        await users.put(User("ann", roles=[]), hash_password("ann-secret"))
        checker = PasswordRealm(users, RoleService(SqlRoleRepository(db)))
        done = await asyncio.gather(*(checker.authenticate("ann", "ann-secret", "/") for _ in range(16)))
        assert {auth.user.username for auth in done} == {"ann"} and len(hashes) == 1
        checker.cache.clear()  # as after any user change: the next wave runs one hash again
        await asyncio.gather(*(checker.authenticate("ann", "ann-secret", "/") for _ in range(8)))
        assert len(hashes) == 2
        wrong = await asyncio.gather(
            *(checker.authenticate("ann", pw, "/") for pw in ["bad-1", "bad-1", "bad-2"]), return_exceptions=True
        )
        assert all(isinstance(answer, Unauthenticated) for answer in wrong)
        assert sorted(hashes[2:]) == ["bad-1", "bad-2"]  # one check per distinct password
        assert not checker._checking  # nothing left waiting
        await db.close()

    asyncio.run(go())


def test_a_cached_user_proves_one_caller_until_the_user_or_its_roles_change(database_url: str) -> None:
    """Requests of one cached user share one Authentication (the audit trail keys its kept lines on
    it); a change of the user or of its roles gives a new one, never the old one changed."""

    async def go() -> None:
        db = Database(database_url)
        await db.open()
        await migrate(db)
        users = SqlUserRepository(db)
        await users.put(User("ann", roles=["viewer"]), hash_password("ann-secret"))
        roles = RoleService(SqlRoleRepository(db))
        checker = PasswordRealm(users, roles)
        first = await checker.authenticate("ann", "ann-secret", "/")
        assert await checker.authenticate("ann", "ann-secret", "/") is first
        roles.invalidate()  # a role changed: the role service answers anew
        after_roles = await checker.authenticate("ann", "ann-secret", "/")
        assert after_roles is not first and after_roles.roles == ["viewer"]
        await users.put(User("ann", roles=["editor"]), hash_password("ann-secret"))
        checker.forget_users()  # as after any user change
        changed = await checker.authenticate("ann", "ann-secret", "/")
        assert changed is not after_roles and changed.roles == ["editor"] and first.roles == ["viewer"]
        assert await checker.authenticate("ann", "ann-secret", "/") is changed
        await db.close()

    asyncio.run(go())
