"""Change notices go out only when their transaction commits, on both stores.

On PostgreSQL the notices and the COMMIT are one round trip (keyplane.store.database): these tests
check that another node hears them only after a commit, never after a rollback or a failed COMMIT,
that a failed COMMIT raises what it raised before (an IntegrityError for a unique violation), and
that the connection is fit for the next transaction afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, select, text

from keyplane.store import schema
from keyplane.store.database import Database
from tests.integration.stores import open_migrated

roles = schema.roles


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _until(check: Callable[[], bool], what: str, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.02)


async def _names(db: Database) -> list[str]:
    async with db.transaction() as conn:
        return sorted(r["name"] for r in (await conn.execute(select(roles.c.name))).rows)


def test_notices_follow_commits_only(database_url: str) -> None:
    """Local listeners (both stores) and another node's (PostgreSQL) hear a transaction's notices after
    it commits; a rolled-back transaction's never reach them. Several kinds, one needing quoting."""
    postgres = database_url.startswith("postgres")

    async def go() -> None:
        node = await open_migrated(database_url)
        local: list[str] = []
        node.on_change(local.append)
        other: Database | None = None
        remote: list[str] = []
        if postgres:
            other = Database(database_url)
            other.on_change(remote.append)
            await other.open()
            await _until(lambda: "*" in remote, "the other node's listener never connected")
        try:
            with pytest.raises(RuntimeError):
                async with node.transaction() as conn:
                    await conn.execute(insert(roles).values(name="undone", doc="{}", seq_no=1))
                    conn.notify("rolled-back")
                    raise RuntimeError("abort")
            kinds = ["roles", "api_key:AbC_-9", "it's odd; COMMIT"]
            async with node.transaction() as conn:
                await conn.execute(insert(roles).values(name="kept", doc="{}", seq_no=1))
                for kind in kinds:
                    conn.notify(kind)
                # Not yet committed: nobody has heard anything of this transaction.
                await asyncio.sleep(0.2)
                assert not set(kinds) & set(local + remote)
            assert set(kinds) <= set(local)
            if postgres:
                await _until(lambda: set(kinds) <= set(remote), f"the other node heard only {remote}")
            assert "rolled-back" not in local + remote
            assert await _names(node) == ["kept"]
            # The connection goes on: a write and a rollback, then a write and a commit.
            with pytest.raises(RuntimeError):
                async with node.transaction() as conn:
                    await conn.execute(insert(roles).values(name="again-undone", doc="{}", seq_no=1))
                    raise RuntimeError("abort")
            async with node.transaction() as conn:
                await conn.execute(insert(roles).values(name="next", doc="{}", seq_no=1))
                conn.notify("next")
            assert await _names(node) == ["kept", "next"]
            if postgres:
                assert other is not None
                await _until(lambda: "next" in remote, f"the other node heard only {remote}")
                assert await _names(other) == ["kept", "next"]
        finally:
            await node.close()
            if other is not None:
                await other.close()

    run(go())


def test_a_failed_commit_raises_as_before_and_sends_no_notice(database_url: str) -> None:
    """A unique violation found only at COMMIT (a deferred constraint) raises an IntegrityError, its
    notices are never heard, and the next transactions on the node work."""
    if not database_url.startswith("postgres"):
        pytest.skip("deferred unique constraints are PostgreSQL's")

    async def go() -> None:
        node = await open_migrated(database_url)
        other = Database(database_url)
        remote: list[str] = []
        other.on_change(remote.append)
        await other.open()
        try:
            await _until(lambda: "*" in remote, "the other node's listener never connected")
            async with node.transaction() as conn:
                await conn.execute(text("CREATE TABLE deferred_check (v int UNIQUE DEFERRABLE INITIALLY DEFERRED)"))
            for notices in (["failed-commit"], ["needs a parameter"], []):
                with pytest.raises(sa_exc.IntegrityError):
                    async with node.transaction() as conn:
                        await conn.execute(text("INSERT INTO deferred_check VALUES (1), (1)"))
                        for kind in notices:
                            conn.notify(kind)
                # The same connection (the pool reuses it) begins and commits the next transaction.
                async with node.transaction() as conn:
                    await conn.execute(insert(roles).values(name=f"after-{len(remote)}-{notices}", doc="{}", seq_no=1))
                    conn.notify("after")
                await _until(lambda: "after" in remote, f"the other node heard only {remote}")
                remote.remove("after")
            assert "failed-commit" not in remote
            assert "needs a parameter" not in remote
            async with node.transaction() as conn:
                assert (await conn.execute(text("SELECT count(*) AS n FROM deferred_check"))).scalar() == 0
            assert len(await _names(node)) == 3
        finally:
            await node.close()
            await other.close()

    run(go())


def test_a_statement_failing_before_the_commit_leaves_the_connection_usable(database_url: str) -> None:
    """A caller that swallows a failed statement and lets the block end: its transaction is aborted,
    so sending its notices fails; nothing is committed or heard, and the next transaction works."""
    if not database_url.startswith("postgres"):
        pytest.skip("an aborted transaction is PostgreSQL's")

    async def go() -> None:
        node = await open_migrated(database_url)
        try:
            with pytest.raises(sa_exc.DBAPIError):
                async with node.transaction() as conn:
                    await conn.execute(insert(roles).values(name="lost", doc="{}", seq_no=1))
                    with pytest.raises(sa_exc.DBAPIError):
                        await conn.execute(text("SELECT 1/0"))
                    conn.notify("roles")
            async with node.transaction() as conn:
                await conn.execute(insert(roles).values(name="fine", doc="{}", seq_no=1))
            assert await _names(node) == ["fine"]
        finally:
            await node.close()

    run(go())
