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
