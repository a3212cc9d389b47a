"""The console's "managed" filter (a term on ``metadata.managed``) reads the ``managed`` column.

The column (migration v14) must say what the term on the JSON says for every shape of metadata a
key can have, as keys are created, updated and restored from a store that lacks it; and the term
must be answered from the column's partial index, not from every key's metadata.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.dialects import sqlite

from keyplane.apikeys import core, hashing
from keyplane.apikeys.backends.plans import sql as plan
from keyplane.apikeys.backends.sql import SqlApiKeyRepository, _page_statement, _sort_column, _where
from keyplane.apikeys.core import ApiKey, Creator
from keyplane.apikeys.query import parse_query, parse_sort
from keyplane.store import migrations, schema
from keyplane.store.database import Database
from keyplane.store.jsonleaf import LeafIn
from keyplane.store.migrations import migrate

t = schema.api_keys
# Metadata whose managed value is "true" for a term query (a keyword, alone or in an array) or not.
MANAGED: list[Any] = [{"managed": True}, {"managed": "true"}, {"managed": [1, True]}, {"managed": ["x", "true"]}]
NOT_MANAGED: list[Any] = [
    None,
    {},
    {"managed": False},
    {"managed": "True"},
    {"managed": 1},
    {"managed": [[True]]},
    {"managed": {"a": True}},
    {"managed": None},
    {"team": "true", "x": {"managed": True}},
]
MANAGED_TERM = {"term": {"metadata.managed": True}}


def _key(i: int, metadata: Any) -> ApiKey:
    return ApiKey(
        id=f"key{i:03d}",
        name=f"k-{i}",
        type=core.REST,
        creation=1000 + i,
        expiration=None,
        invalidated=False,
        invalidation=None,
        hash=hashing.hash_secret("s"),
        creator=Creator("ann", None, None, {}, "default_native", "native"),
        metadata=metadata,
    )


async def _ids(db: Database, managed_column: bool) -> list[str]:
    """The keys managed by the column, or by the term on the JSON as it was read before."""
    cond = t.c.managed.is_(True) if managed_column else LeafIn(t.c.metadata, ("managed",), ["true"])
    async with db.transaction() as conn:
        return sorted(r["id"] for r in (await conn.execute(select(t.c.id).where(cond))).rows)


async def _searched(repo: SqlApiKeyRepository, body: dict[str, Any]) -> tuple[int, list[str]]:
    page = await repo.search(parse_query(body), parse_sort(["_doc"]), 0, 100, None, 0)
    return page.total, sorted(k.id for k in page.keys)


def test_the_column_says_what_the_json_says(database_url: str) -> None:
    async def go() -> None:
        db = Database(database_url)
        await db.open()
        await migrate(db)
        repo = SqlApiKeyRepository(db)
        every = MANAGED + NOT_MANAGED
        for i, metadata in enumerate(every):
            await repo.insert(_key(i, metadata))
        managed = [f"key{i:03d}" for i in range(len(MANAGED))]
        assert await _ids(db, managed_column=True) == managed
        assert await _ids(db, managed_column=False) == managed
        assert await _searched(repo, MANAGED_TERM) == (len(managed), managed)
        # A terms query with other values, and the negation, still read the JSON for those values.
        either = {"terms": {"metadata.managed": ["true", "True"]}}
        assert (await _searched(repo, either))[1] == sorted([*managed, f"key{len(MANAGED) + 3:03d}"])
        negated = {"bool": {"must_not": [MANAGED_TERM]}}
        assert (await _searched(repo, negated))[0] == len(NOT_MANAGED)

        # Updates (one key, then a batch) keep the column: managed keys become unmanaged and back.
        keys = [k for k in [await repo.get(f"key{i:03d}") for i in range(len(every))] if k is not None]
        flipped = [dataclasses.replace(k, metadata=every[(i + len(MANAGED)) % len(every)]) for i, k in enumerate(keys)]
        assert await repo.replace_many(flipped[:1]) == {flipped[0].id}
        assert await repo.replace_many(flipped[1:]) == {k.id for k in flipped[1:]}
        assert await _ids(db, managed_column=True) == await _ids(db, managed_column=False)
        assert len(await _ids(db, managed_column=True)) == len(MANAGED)
        assert await _ids(db, managed_column=True) != managed
        await db.close()

    asyncio.run(go())


def test_migration_sets_the_column_from_the_metadata(database_url: str) -> None:
    """Rows that took the column's default (a store upgraded to v14, a restored older backup)."""

    async def go() -> None:
        db = Database(database_url)
        await db.open()
        await migrate(db)
        repo = SqlApiKeyRepository(db)
        for i, metadata in enumerate(MANAGED + NOT_MANAGED):
            await repo.insert(_key(i, metadata))
        async with db.transaction() as conn:
            await conn.execute(update(t).values(managed=False))
        assert await _ids(db, managed_column=True) == []
        async with db.transaction() as conn:
            await conn.run_sync(migrations._v14_managed_keys)  # run again: the column exists, the index too
        assert await _ids(db, managed_column=True) == [f"key{i:03d}" for i in range(len(MANAGED))]
        await db.close()

    asyncio.run(go())


def test_the_managed_filter_reads_its_partial_index(database_url: str) -> None:
    """On SQLite, the total and a newest-first page of managed keys use api_keys_managed."""
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL plans from statistics; EXPLAIN QUERY PLAN is SQLite's")

    async def go() -> None:
        db = Database(database_url)
        await db.open()
        await migrate(db)
        query = parse_query({"bool": {"filter": [MANAGED_TERM, {"term": {"invalidated": False}}]}})
        sort = parse_sort([{"creation": {"order": "desc"}}, "_doc"])
        assert plan.selective(query)
        counted = select(t.c.id).where(plan.steer(_where(query), plan.counted_hidden(query, _where(query))))
        page = _page_statement(query, sort, None, plan.choose(query, _sort_column(sort), 25, 1000, 1_000_000))
        built = getattr(page, "stmt", page).params(start=0, size=25)
        for stmt in (counted, built):
            sql = str(stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
            async with db.transaction() as conn:
                details = [str(r["detail"]) for r in (await conn.execute(text("EXPLAIN QUERY PLAN " + sql))).rows]
            assert any("api_keys_managed" in d for d in details), details
            assert "USE TEMP B-TREE FOR ORDER BY" not in details, details
        await db.close()

    asyncio.run(go())
