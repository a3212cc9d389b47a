"""The API-key service over a real store: retention, grants of ownership, concurrent updates."""

from __future__ import annotations

import asyncio

import pytest

from keyplane.apikeys.backends.sql import SqlApiKeyRepository
from keyplane.apikeys.service import ApiKeyService, ApiKeySettings, GetSpec, KeySpec, UpdateSpec
from keyplane.errors import Forbidden, InvalidArgument, NotFound, ValidationError
from keyplane.security import roles as role_mod
from keyplane.security.identity import Authentication
from keyplane.security.permission import Permission
from keyplane.security.roles import IndicesPrivileges
from keyplane.security.users import NATIVE_REALM, User
from keyplane.store.database import Database
from keyplane.store.migrations import migrate
from keyplane.timevalue import now_ms


def _auth(name: str = "ann") -> Authentication:
    user = User(name, roles=["superuser"])
    perm = Permission([role_mod.RESERVED_ROLES["superuser"]])
    return Authentication(user, user, NATIVE_REALM, NATIVE_REALM, "realm", ["superuser"], [], perm)


async def _service(url: str, **settings) -> tuple[Database, ApiKeyService]:  # type: ignore[no-untyped-def]
    db = Database(url)
    await db.open()
    await migrate(db)

    async def roles_of(user: User) -> list[role_mod.RoleDescriptor]:
        return [role_mod.RESERVED_ROLES[r] for r in user.roles]

    return db, ApiKeyService(SqlApiKeyRepository(db), roles_of, ApiKeySettings(**settings))


def test_retention_removes_only_old_inactive_keys(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url, retention_ms=1000)
        auth = _auth()
        old = await svc.create(auth, KeySpec("old"))
        fresh = await svc.create(auth, KeySpec("fresh"))
        live = await svc.create(auth, KeySpec("live"))
        await svc.repo.invalidate([old.id], now_ms() - 5000)
        await svc.repo.invalidate([fresh.id], now_ms())
        assert await svc.remove_inactive() == 1
        names = {k.name for k in (await svc.get(auth, GetSpec(owner=True))).keys}
        assert names == {"fresh", "live"}
        assert live.id
        await db.close()

    asyncio.run(go())


def test_concurrent_updates_of_one_key_all_land(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        auth = _auth()
        key = await svc.create(auth, KeySpec("busy"))
        results = await asyncio.gather(
            *[svc.update(auth, UpdateSpec([key.id], metadata={"n": i}), kind="rest", bulk=False) for i in range(8)]
        )
        assert all(not r.errors for r in results)
        stored = await svc.repo.get(key.id)
        assert stored is not None and stored.metadata in [{"n": i} for i in range(8)]
        assert stored.seq_no >= 2
        await db.close()

    asyncio.run(go())


def test_invalidate_reports_cross_cluster_keys_it_may_not_touch(database_url: str) -> None:
    """Without manage_security, cross-cluster keys are left alone and reported as forbidden, per key."""

    async def go() -> None:
        db, svc = await _service(database_url)
        admin = _auth()
        rest = await svc.create(admin, KeySpec("rest"))
        remote = await svc.create_cross_cluster(admin, KeySpec("remote"), [IndicesPrivileges(["logs"], [])], [])
        user = User("ann", roles=["keys"])
        keys_only = Permission([role_mod.RoleDescriptor("keys", cluster=["manage_api_key"])])
        auth = Authentication(user, user, NATIVE_REALM, NATIVE_REALM, "realm", ["keys"], [], keys_only)
        result = await svc.invalidate(auth, [rest.id, remote.id], None, None, None, False)
        assert result.invalidated == [rest.id]
        assert [type(e) for e in result.errors] == [Forbidden]
        assert str(result.errors[0]) == (
            f"Cannot invalidate cross-cluster API key [{remote.id}]. "
            "This requires [manage_security] cluster privilege or higher"
        )
        everything = await svc.invalidate(admin, [remote.id], None, None, None, False)
        assert everything.invalidated == [remote.id] and everything.errors == []
        await db.close()

    asyncio.run(go())


def test_update_one_raises_the_key_error_and_cross_cluster_updates_need_a_change(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        auth = _auth()
        key = await svc.create(auth, KeySpec("one"))
        assert await svc.update_one(auth, UpdateSpec([key.id], metadata={"a": 1}), kind="rest") is True
        assert await svc.update_one(auth, UpdateSpec([key.id], metadata={"a": 1}), kind="rest") is False
        with pytest.raises(NotFound, match="no API key owned by requesting user found for ID \\[nope\\]"):
            await svc.update_one(auth, UpdateSpec(["nope"]), kind="rest")
        with pytest.raises(InvalidArgument, match="while expected type is \\[cross_cluster\\]"):
            await svc.update_one(auth, UpdateSpec([key.id], metadata={}), kind="cross_cluster")
        with pytest.raises(ValidationError, match="must update either \\[access\\] or \\[metadata\\]"):
            await svc.update_one(auth, UpdateSpec([key.id], expiration="1d"), kind="cross_cluster")
        await db.close()

    asyncio.run(go())
