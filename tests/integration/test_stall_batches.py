"""The retention sweep and bulk updates write in batches: results must not depend on the batch size."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from sqlalchemy import insert

from keyplane.apikeys.backends import sql as key_sql
from keyplane.apikeys.backends.sql import SqlApiKeyRepository, _row
from keyplane.apikeys.core import ApiKey
from keyplane.apikeys.service import ApiKeyService, ApiKeySettings, BulkResult, GetSpec, KeySpec, UpdateSpec
from keyplane.security import roles as role_mod
from keyplane.security.identity import Authentication
from keyplane.security.permission import Permission
from keyplane.security.users import NATIVE_REALM, User
from keyplane.store import schema
from keyplane.store.database import Database
from keyplane.store.migrations import migrate
from keyplane.timevalue import now_ms

RETENTION = 60_000


def _auth() -> Authentication:
    user = User("ann", roles=["superuser"])
    perm = Permission([role_mod.RESERVED_ROLES["superuser"]])
    return Authentication(user, user, NATIVE_REALM, NATIVE_REALM, "realm", ["superuser"], [], perm)


async def _service(url: str) -> tuple[Database, ApiKeyService]:
    db = Database(url)
    await db.open()
    await migrate(db)

    async def roles_of(user: User) -> list[role_mod.RoleDescriptor]:
        return [role_mod.RESERVED_ROLES[r] for r in user.roles]

    return db, ApiKeyService(SqlApiKeyRepository(db), roles_of, ApiKeySettings(retention_ms=RETENTION))


async def _seed(db: Database, template: ApiKey, prefix: str, count: int, **changes: object) -> list[str]:
    """``count`` copies of ``template`` with ids ``prefix-0000``..., written straight to the store."""
    keys = [
        dataclasses.replace(template, id=f"{prefix}-{i:04d}", name=f"{prefix}-{i}", **changes)  # type: ignore[arg-type]
        for i in range(count)
    ]
    async with db.transaction() as conn:
        await conn.execute(insert(schema.api_keys), [_row(k) for k in keys])
    return [k.id for k in keys]


def test_sweep_of_several_batches_removes_exactly_the_inactive_keys(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        auth = _auth()
        created = await svc.create(auth, KeySpec("template"))
        template = await svc.repo.get(created.id)
        assert template is not None
        old, recent = now_ms() - 2 * RETENTION, now_ms() - RETENTION // 2
        batch = key_sql.WRITE_BATCH
        # Gone: expired long ago, invalidated long ago, invalidated without a time (legacy).
        gone = await _seed(db, template, "expired", batch * 2 + 7, expiration=old)
        gone += await _seed(db, template, "invalid", batch + 3, invalidated=True, invalidation=old)
        gone += await _seed(db, template, "legacy", 5, invalidated=True, invalidation=None)
        # Kept: live, expired or invalidated within the retention period, expiring later.
        kept = await _seed(db, template, "live", 11)
        kept += await _seed(db, template, "expired-recently", 13, expiration=recent)
        kept += await _seed(db, template, "invalid-recently", 17, invalidated=True, invalidation=recent)
        kept += await _seed(db, template, "later", 19, expiration=now_ms() + RETENTION)
        kept.append(created.id)

        assert await svc.remove_inactive() == len(gone)
        left = {k.id for k in (await svc.get(auth, GetSpec(owner=True))).keys}
        assert left == set(kept)
        assert await svc.remove_inactive() == 0
        await db.close()

    asyncio.run(go())


def _answer(result: BulkResult) -> tuple[list[str], list[str], dict[str, tuple[str, str]]]:
    """A bulk update's answer with the ids of the second run mapped to the first's (prefix swapped)."""

    def same(key_id: str) -> str:
        return key_id.split("-", 1)[1]

    errors = {same(k): (type(e).__name__, str(e).replace(k, same(k))) for k, e in result.errors.items()}
    return [same(i) for i in result.updated], [same(i) for i in result.noops], errors


async def _bulk_update(db: Database, svc: ApiKeyService, template: ApiKey, prefix: str) -> BulkResult:
    """A bulk update over live keys, keys that cannot be updated, unknown ids and repeated ids."""
    live = await _seed(db, template, prefix + "-live", 1_234)
    already = await _seed(db, template, prefix + "-same", 300, metadata={"team": "blue"})
    invalid = await _seed(db, template, prefix + "-invalid", 40, invalidated=True, invalidation=now_ms())
    expired = await _seed(db, template, prefix + "-expired", 30, expiration=now_ms() - 1000)
    unknown = [f"{prefix}-missing-{i}" for i in range(20)]
    ids = live[:600] + invalid + already + unknown + live[600:] + expired + live[:50]
    result = await svc.update(_auth(), UpdateSpec(ids, metadata={"team": "blue"}), kind="rest", bulk=True)
    for key in await svc.repo.find(key_sql.KeyFilter(ids=live), now_ms()):
        assert key.metadata == {"team": "blue"}
    return result


def test_bulk_update_across_batches_answers_as_in_one_transaction(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        created = await svc.create(_auth(), KeySpec("template"))
        template = await svc.repo.get(created.id)
        assert template is not None
        # The same request, first written in one transaction, then in batches of the default size.
        monkeypatch.setattr(key_sql, "UPDATE_BATCH", 1_000_000)
        whole = await _bulk_update(db, svc, template, "a")
        monkeypatch.undo()
        assert key_sql.UPDATE_BATCH < 1_234
        batched = await _bulk_update(db, svc, template, "b")
        assert len(whole.updated) == 1_234 and len(whole.noops) == 300 and len(whole.errors) == 90
        assert _answer(batched) == _answer(whole)
        await db.close()

    asyncio.run(go())
