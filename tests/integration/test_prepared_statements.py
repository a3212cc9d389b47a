"""Prepared statements run on the driver answer exactly as the same statements run through SQLAlchemy.

On the store under test (SQLite, or PostgreSQL with KEYPLANE_TEST_STORE=postgres): the same rows,
the same conversions (NUL-safe text, JSON, booleans), the same row counts, the same exception
classes, and the same transaction: a prepared write is undone with the rest of a failed transaction.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import bindparam, delete, func, insert, select, true, update
from sqlalchemy import exc as sa_exc

from keyplane.store import schema
from keyplane.store.database import Database
from keyplane.store.prepared import Prepared
from tests.integration.stores import open_migrated

t = schema.users
GET = Prepared(select(t).where(t.c.username == bindparam("username")))
INSERT = Prepared(
    insert(t).values(
        username=bindparam("username"),
        password_hash=bindparam("password_hash"),
        enabled=bindparam("enabled"),
        reserved=bindparam("reserved"),
        doc=bindparam("doc"),
        seq_no=bindparam("seq_no"),
    )
)
BUMP = Prepared(
    update(t)
    .where(t.c.username == bindparam("username"), t.c.seq_no == bindparam("expected"))
    .values(seq_no=t.c.seq_no + 1, enabled=bindparam("enabled"))
)
DELETE = Prepared(delete(t).where(t.c.username == bindparam("username")))
k = schema.api_keys
METADATA = Prepared(select(k.c.id, k.c.metadata, k.c.invalidated).where(k.c.id == bindparam("id")))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def _user(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "username": name,
        "password_hash": None,
        "enabled": True,
        "reserved": False,
        "doc": "{}",
        "seq_no": 1,
    } | extra


def test_prepared_rows_equal_sqlalchemy_rows(database_url: str) -> None:
    async def go() -> None:
        db = await open_migrated(database_url)
        try:
            async with db.transaction() as conn:
                await conn.execute(INSERT, _user("ann", doc='{"a":"\x00b"}', enabled=False))
            async with db.transaction() as conn:
                fast = (await conn.execute(GET, {"username": "ann"})).rows
                slow = (await conn.execute(select(t).where(t.c.username == "ann"))).rows
            assert fast == slow
            assert fast[0]["enabled"] is False and fast[0]["doc"] == '{"a":"\x00b"}'
        finally:
            await db.close()

    run(go())


def test_counts_conflicts_and_missing_rows(database_url: str) -> None:
    async def go() -> None:
        db = await open_migrated(database_url)
        try:
            async with db.transaction() as conn:
                await conn.execute(INSERT, _user("bob"))
            async with db.transaction() as conn:
                assert (await conn.execute(BUMP, {"username": "bob", "expected": 1, "enabled": False})).rowcount == 1
                assert (await conn.execute(BUMP, {"username": "bob", "expected": 1, "enabled": True})).rowcount == 0
            async with db.transaction() as conn:
                assert (await conn.execute(GET, {"username": "nobody"})).rows == []
                row = (await conn.execute(GET, {"username": "bob"})).first()
            assert row is not None and row["seq_no"] == 2 and row["enabled"] is False
            with pytest.raises(sa_exc.IntegrityError):
                async with db.transaction() as conn:
                    await conn.execute(INSERT, _user("bob"))
            async with db.transaction() as conn:
                assert (await conn.execute(DELETE, {"username": "bob"})).rowcount == 1
        finally:
            await db.close()

    run(go())


def test_a_failed_transaction_undoes_its_prepared_writes(database_url: str) -> None:
    async def go() -> None:
        db = await open_migrated(database_url)
        try:
            with pytest.raises(RuntimeError):
                async with db.transaction() as conn:
                    await conn.execute(INSERT, _user("cat"))
                    # A statement through SQLAlchemy in the same transaction sees the prepared write.
                    seen = (await conn.execute(select(t.c.username).where(t.c.username == "cat"))).rows
                    assert seen == [{"username": "cat"}]
                    raise RuntimeError("abort")
            async with db.transaction() as conn:
                assert (await conn.execute(GET, {"username": "cat"})).rows == []
            # Through SQLAlchemy first, then prepared, then a failure: both undone.
            with pytest.raises(RuntimeError):
                async with db.transaction() as conn:
                    await conn.execute(insert(t).values(**_user("dan")))
                    await conn.execute(INSERT, _user("eve"))
                    raise RuntimeError("abort")
            async with db.transaction() as conn:
                names = (await conn.execute(select(t.c.username))).rows
            assert names == []
        finally:
            await db.close()

    run(go())


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)


def test_generated_values_round_trip_alike(database_url: str) -> None:
    """Whatever the text or JSON (NUL and the escape character included), both paths read the same."""

    async def go(values: list[tuple[str, Any, bool]]) -> None:
        db = await open_migrated(database_url)
        try:
            async with db.transaction() as conn:
                await conn.execute(delete(k))
                for i, (name, metadata, invalidated) in enumerate(values):
                    await conn.execute(
                        insert(k).values(
                            id=f"id-{i}",
                            name=name,
                            type="rest",
                            creation=i,
                            invalidated=invalidated,
                            username="u",
                            realm="r",
                            realm_type="native",
                            hash="h",
                            metadata=metadata,
                            doc="{}",
                            seq_no=1,
                        )
                    )
            async with db.transaction() as conn:
                for i in range(len(values)):
                    fast = (await conn.execute(METADATA, {"id": f"id-{i}"})).rows
                    slow = (
                        await conn.execute(select(k.c.id, k.c.metadata, k.c.invalidated).where(k.c.id == f"id-{i}"))
                    ).rows
                    assert fast == slow
                    assert fast[0]["metadata"] == values[i][1]
                    assert fast[0]["invalidated"] is values[i][2]
        finally:
            await db.close()

    @settings(max_examples=15, deadline=None)
    @given(st.lists(st.tuples(_TEXT, _JSON, st.booleans()), min_size=1, max_size=4))
    def check(values: list[tuple[str, Any, bool]]) -> None:
        run(go(values))

    check()


def test_selects_built_per_call_answer_as_through_sqlalchemy(database_url: str) -> None:
    """Selects of one shape with other literal values (compiled once, run on the driver) read what
    SQLAlchemy reads; shapes it must rewrite per call (IN lists) still go through it."""

    async def go() -> None:
        db = await open_migrated(database_url)
        try:
            async with db.transaction() as conn:
                for i in range(5):
                    await conn.execute(INSERT, _user(f"u{i}", enabled=i % 2 == 0, seq_no=i + 1))
            for name, seq in [("u1", 2), ("u3", 4), ("u3", 3), ("nobody", 1)]:
                stmt = select(t.c.username, t.c.enabled).where(t.c.username == name, t.c.seq_no >= seq)
                async with db.transaction() as conn:
                    fast = (await conn.execute(stmt)).rows
                    slow = await conn.run_sync(lambda c, s=stmt: [dict(r._mapping) for r in c.execute(s)])
                assert fast == slow
            async with db.transaction() as conn:
                counted = (
                    await conn.execute(select(func.count()).select_from(t).where(t.c.enabled == true()))
                ).scalar()
                listed = (await conn.execute(select(t.c.username).where(t.c.username.in_(["u0", "u4", "x"])))).rows
                paged = await conn.execute_all(
                    (select(t.c.username).order_by(t.c.username.desc()).limit(bindparam("n")), {"n": 2}),
                    (select(t.c.username).order_by(t.c.username).limit(bindparam("n")), {"n": 1}),
                )
            assert counted == 3
            assert sorted(r["username"] for r in listed) == ["u0", "u4"]
            assert [p.rows for p in paged] == [[{"username": "u4"}, {"username": "u3"}], [{"username": "u0"}]]
        finally:
            await db.close()

    run(go())


def test_notices_reach_other_nodes_even_from_a_transaction_that_wrote_nothing(database_url: str) -> None:
    """On PostgreSQL a transaction's notices go out at its commit, also when it only read or did nothing
    else (the retention sweep's closing notice); another node hears them through LISTEN."""
    if not database_url.startswith("postgres"):
        pytest.skip("notices cross nodes on PostgreSQL only")

    async def go() -> None:
        node = await open_migrated(database_url)
        heard: list[str] = []
        other = Database(database_url)
        other.on_change(heard.append)  # before it opens: the listener says "*" once connected
        await other.open()
        try:
            deadline = asyncio.get_running_loop().time() + 5
            while "*" not in heard:  # the listener is connected (it drops every cache when it is)
                assert asyncio.get_running_loop().time() < deadline, "the listener never connected"
                await asyncio.sleep(0.05)
            async with node.transaction() as conn:
                conn.notify("nothing-written")
            async with node.transaction() as conn:
                await conn.execute(GET, {"username": "nobody"})  # a pooled read, then the notice
                conn.notify("after-a-read")
            while not {"nothing-written", "after-a-read"} <= set(heard):
                assert asyncio.get_running_loop().time() < deadline, f"heard only {heard}"
                await asyncio.sleep(0.05)
        finally:
            await node.close()
            await other.close()

    run(go())
