"""Concurrent updates of one key on one node take turns (ApiKeyService._Turn): in arrival order, each
from the form the one before wrote, with no read of the key and no lost compare-and-set."""

from __future__ import annotations

import asyncio
from typing import Any

from keyplane.apikeys.backends.sql import SqlApiKeyRepository
from keyplane.apikeys.service import ApiKeyService, KeySpec, UpdateSpec
from keyplane.security import roles as role_mod
from keyplane.security.identity import Authentication
from keyplane.security.permission import Permission
from keyplane.security.users import NATIVE_REALM, User
from keyplane.store.database import Database
from keyplane.store.migrations import migrate


def _auth() -> Authentication:
    user = User("ann", roles=["superuser"])
    perm = Permission([role_mod.RESERVED_ROLES["superuser"]])
    return Authentication(user, user, NATIVE_REALM, NATIVE_REALM, "realm", ["superuser"], [], perm)


async def _roles_of(user: User) -> list[role_mod.RoleDescriptor]:
    return [role_mod.RESERVED_ROLES[r] for r in user.roles]


class _CountingRepo(SqlApiKeyRepository):
    finds = 0

    async def find(self, *args: Any, **kwargs: Any) -> Any:
        self.finds += 1
        return await super().find(*args, **kwargs)


def test_concurrent_updates_of_one_key_take_turns(database_url: str) -> None:
    async def go() -> None:
        db = Database(database_url)
        await db.open()
        try:
            await migrate(db)
            repo = _CountingRepo(db)
            svc = ApiKeyService(repo, _roles_of)
            auth = _auth()
            key = await svc.create(auth, KeySpec("busy"))
            assert await svc.update_one(auth, UpdateSpec([key.id], metadata={"n": -1}), kind="rest")
            repo.finds = 0
            results = await asyncio.gather(
                *[svc.update_one(auth, UpdateSpec([key.id], metadata={"n": i}), kind="rest") for i in range(16)]
            )
            assert results == [True] * 16
            assert repo.finds == 0  # each started from the one before's written form
            stored = await repo.get(key.id)
            assert stored is not None and stored.metadata == {"n": 15}  # the last to arrive wrote last
            assert stored.seq_no == key_seq_no_after(17)
            assert not svc._turns  # noqa: SLF001 - every turn given back
        finally:
            await db.close()

    asyncio.run(go())


def key_seq_no_after(updates: int) -> int:
    return 1 + updates  # a new key is written at seq_no 1, and each update raises it by one


def test_a_cancelled_waiter_gives_its_turn_back(database_url: str) -> None:
    async def go() -> None:
        db = Database(database_url)
        await db.open()
        try:
            await migrate(db)
            svc = ApiKeyService(SqlApiKeyRepository(db), _roles_of)
            auth = _auth()
            key = await svc.create(auth, KeySpec("cancelled"))
            first = asyncio.create_task(svc.update_one(auth, UpdateSpec([key.id], metadata={"n": 1}), kind="rest"))
            waiting = asyncio.create_task(svc.update_one(auth, UpdateSpec([key.id], metadata={"n": 2}), kind="rest"))
            last = asyncio.create_task(svc.update_one(auth, UpdateSpec([key.id], metadata={"n": 3}), kind="rest"))
            await asyncio.sleep(0)
            waiting.cancel()
            assert await first and await last
            assert waiting.cancelled()
            stored = await svc.repo.get(key.id)
            assert stored is not None and stored.metadata == {"n": 3}
            assert not svc._turns  # noqa: SLF001
        finally:
            await db.close()

    asyncio.run(go())
