"""``Database.execute_alone``: one statement as its own transaction answers as it would in a block.

On PostgreSQL a prepared statement runs in autocommit on the node's pool (one round trip instead of
BEGIN, the statement and COMMIT); on SQLite it is a write transaction as any other. Both: the same
row counts, RETURNING rows and exceptions, and the write is committed when the call returns.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy import exc as sa_exc

from keyplane.store import schema
from keyplane.store.prepared import Prepared
from tests.integration.stores import open_migrated

t = schema.roles
INSERT = Prepared(insert(t).values(name=bindparam("name"), doc=bindparam("doc"), seq_no=1))
BUMP = Prepared(update(t).where(t.c.name == bindparam("name")).values(seq_no=t.c.seq_no + 1))
BUMP_RETURNING = Prepared(
    update(t).where(t.c.name == bindparam("name")).values(seq_no=t.c.seq_no + 1).returning(t.c.seq_no)
)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_statement_alone_answers_as_in_a_block(database_url: str) -> None:
    async def go() -> None:
        db = await open_migrated(database_url)
        other = await open_migrated(database_url) if database_url.startswith("postgres") else db
        try:
            assert (await db.execute_alone(INSERT, {"name": "a", "doc": "{}"})).rowcount == 1
            # Committed when the call returns: another node (PostgreSQL) reads it.
            async with other.transaction() as conn:
                assert (await conn.execute(select(t.c.name, t.c.seq_no))).rows == [{"name": "a", "seq_no": 1}]
            with pytest.raises(sa_exc.IntegrityError):
                await db.execute_alone(INSERT, {"name": "a", "doc": "{}"})
            assert (await db.execute_alone(BUMP, {"name": "a"})).rowcount == 1
            assert (await db.execute_alone(BUMP, {"name": "nobody"})).rowcount == 0
            assert (await db.execute_alone(BUMP_RETURNING, {"name": "a"})).rows == [{"seq_no": 3}]
            # A statement built per call goes through SQLAlchemy, in a transaction, as before.
            built = insert(t).values(name="b", doc="{}", seq_no=1)
            assert (await db.execute_alone(built)).rowcount == 1
            async with other.transaction() as conn:
                rows = (await conn.execute(select(t.c.name, t.c.seq_no).order_by(t.c.name))).rows
            assert rows == [{"name": "a", "seq_no": 3}, {"name": "b", "seq_no": 1}]
        finally:
            await db.close()
            if other is not db:
                await other.close()

    run(go())


def test_a_statement_alone_sends_its_notices_when_it_commits(database_url: str) -> None:
    """``execute_alone`` with notices: the same row counts and exceptions; the notices reach this
    node's listeners and (PostgreSQL) another node's once the statement is committed, whether or not it
    changed rows, and never when it fails. Statements that cannot carry them send them as a block."""
    postgres = database_url.startswith("postgres")

    async def go() -> None:
        db = await open_migrated(database_url)
        other = await open_migrated(database_url) if postgres else db
        local: list[str] = []
        remote: list[str] = []
        db.on_change(local.append)
        other.on_change(remote.append)
        heard = remote if postgres else local

        async def until_heard(kind: str) -> None:
            for _ in range(250):
                if kind in heard:
                    return
                await asyncio.sleep(0.02)
            raise AssertionError(f"{kind} never heard: {heard}")

        try:
            await asyncio.sleep(0.2 if postgres else 0)  # the other node's listener connects
            assert (await db.execute_alone(INSERT, {"name": "a", "doc": "{}"}, ["roles", "role:a"])).rowcount == 1
            assert {"roles", "role:a"} <= set(local)
            await until_heard("role:a")
            async with other.transaction() as conn:
                assert (await conn.execute(select(t.c.name))).rows == [{"name": "a"}]
            assert (await db.execute_alone(BUMP, {"name": "a"}, ["bumped: it's 'quoted'"])).rowcount == 1
            await until_heard("bumped: it's 'quoted'")
            assert (await db.execute_alone(BUMP, {"name": "nobody"}, ["bumped nobody"])).rowcount == 0
            await until_heard("bumped nobody")
            with pytest.raises(sa_exc.IntegrityError):
                await db.execute_alone(INSERT, {"name": "a", "doc": "{}"}, ["failed insert"])
            # RETURNING, and a statement built per call: in a block, notices with its COMMIT.
            returned = await db.execute_alone(BUMP_RETURNING, {"name": "a"}, ["returning"])
            assert returned.rows == [{"seq_no": 3}]
            built = update(t).where(t.c.name == "a").values(seq_no=t.c.seq_no + 1)
            assert (await db.execute_alone(built, None, ["built"])).rowcount == 1
            await until_heard("returning")
            await until_heard("built")
            assert "failed insert" not in local + remote
            async with other.transaction() as conn:
                assert (await conn.execute(select(t.c.name, t.c.seq_no))).rows == [{"name": "a", "seq_no": 4}]
        finally:
            await db.close()
            if other is not db:
                await other.close()

    run(go())


def test_the_last_write_of_a_block_alone(database_url: str) -> None:
    """``Conn.execute_alone`` as a block's only write, after its reads and notices: the same answers,
    committed with its notices when the block ends (on PostgreSQL as the statement runs)."""

    async def go() -> None:
        db = await open_migrated(database_url)
        heard: list[str] = []
        db.on_change(heard.append)
        try:
            await db.execute_alone(INSERT, {"name": "a", "doc": "{}"})
            async with db.transaction() as conn:
                seq_no = (await conn.execute(select(t.c.seq_no).where(t.c.name == "a"))).scalar()
                conn.notify("role:a")
                assert (await conn.execute_alone(BUMP, {"name": "a"})).rowcount == 1
            assert "role:a" in heard  # (PostgreSQL: again when its own NOTIFY comes back)
            async with db.transaction() as conn:
                assert (await conn.execute(select(t.c.seq_no))).scalar() == seq_no + 1
                assert (await conn.execute_alone(BUMP, {"name": "nobody"})).rowcount == 0
        finally:
            await db.close()

    run(go())
