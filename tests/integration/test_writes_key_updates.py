"""Updates of one key by id, starting from the form this node last wrote (ApiKeyService._update_written):
the same outcomes as from a fresh read, whatever changed the key meanwhile."""

from __future__ import annotations

import asyncio

import pytest

from keyplane.apikeys.backends.sql import SqlApiKeyRepository
from keyplane.apikeys.service import ApiKeyService, GetSpec, KeySpec, UpdateSpec
from keyplane.errors import InvalidArgument, NotFound
from keyplane.security import roles as role_mod
from keyplane.security.identity import Authentication
from keyplane.security.permission import Permission
from keyplane.security.users import NATIVE_REALM, User
from keyplane.store.database import Database
from keyplane.store.migrations import migrate
from keyplane.timevalue import now_ms


def _auth(name: str = "ann") -> Authentication:
    user = User(name, roles=["superuser"])
    perm = Permission([role_mod.RESERVED_ROLES["superuser"]])
    return Authentication(user, user, NATIVE_REALM, NATIVE_REALM, "realm", ["superuser"], [], perm)


async def _roles_of(user: User) -> list[role_mod.RoleDescriptor]:
    return [role_mod.RESERVED_ROLES[r] for r in user.roles]


async def _node(url: str) -> tuple[Database, ApiKeyService]:
    db = Database(url)
    await db.open()
    await migrate(db)
    return db, ApiKeyService(SqlApiKeyRepository(db), _roles_of)


async def _update(svc: ApiKeyService, key_id: str, auth: Authentication, **fields: object) -> bool:
    return await svc.update_one(auth, UpdateSpec([key_id], **fields), kind="rest")  # type: ignore[arg-type]


def test_an_update_keeps_the_last_use_recorded_since_the_previous_one(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _node(database_url)
        auth = _auth()
        key = await svc.create(auth, KeySpec("used"))
        assert await _update(svc, key.id, auth, metadata={"n": 1})
        used_at = now_ms()
        await svc.repo.record_last_used({key.id: used_at})
        assert await _update(svc, key.id, auth, metadata={"n": 2})
        stored = await svc.repo.get(key.id)
        assert stored is not None and stored.last_used == used_at and stored.metadata == {"n": 2}
        await db.close()

    asyncio.run(go())


def test_changes_made_elsewhere_are_seen(database_url: str) -> None:
    """Another writer (a second service on the store, as another node) changes the key between two updates here."""

    async def go() -> None:
        db, here = await _node(database_url)
        there = ApiKeyService(SqlApiKeyRepository(db), _roles_of)
        auth = _auth()
        key = await here.create(auth, KeySpec("shared"))
        assert await _update(here, key.id, auth, metadata={"n": 1})
        assert await _update(there, key.id, auth, metadata={"n": 2})
        # Here the key was last written with {"n": 1}: setting it again is a change, not a noop.
        assert await _update(here, key.id, auth, metadata={"n": 1})
        assert not await _update(here, key.id, auth, metadata={"n": 1})
        stored = await here.repo.get(key.id)
        assert stored is not None and stored.metadata == {"n": 1}
        await there.invalidate(auth, [key.id], None, None, None, False)
        with pytest.raises(InvalidArgument, match="cannot update invalidated API key"):
            await _update(here, key.id, auth, metadata={"n": 3})
        await db.close()

    asyncio.run(go())


def test_another_owner_does_not_reach_the_key(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _node(database_url)
        ann, bob = _auth("ann"), _auth("bob")
        key = await svc.create(ann, KeySpec("anns"))
        assert await _update(svc, key.id, ann, metadata={"n": 1})
        with pytest.raises(NotFound):
            await _update(svc, key.id, bob, metadata={"n": 2})
        assert await _update(svc, key.id, ann, metadata={"n": 2})
        keys = (await svc.get(ann, GetSpec(id=key.id))).keys
        assert [k.metadata for k in keys] == [{"n": 2}] and keys[0].seq_no == 3
        await db.close()

    asyncio.run(go())


def test_a_deleted_key_is_not_found(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _node(database_url)
        auth = _auth()
        key = await svc.create(auth, KeySpec("gone"))
        assert await _update(svc, key.id, auth, metadata={"n": 1})
        await svc.delete_all()
        with pytest.raises(NotFound):
            await _update(svc, key.id, auth, metadata={"n": 2})
        await db.close()

    asyncio.run(go())
