"""Term rows in generations (``backends/terms/sql.py``): searches find the rows of every generation,
a rewrite moves a document's rows to its new one, and migration 16 brings the rows of an older store
(and of a backup restored from before it) into their generations, on both stores.

Generations are made small here (``GEN_BITS``) so that a few documents span many of them."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from keyplane.backup import tables
from keyplane.indices import terms
from keyplane.indices.backends.sql import SqlDocumentRepository, SqlIndexRepository
from keyplane.indices.backends.terms import sql as term_sql
from keyplane.indices.service import IndexService
from keyplane.store import schema
from keyplane.store.database import Database
from keyplane.store.migrations import MIGRATIONS, migrate, upgrade
from tests.conftest import STORE
from tests.integration import test_search_pushdown as pushdown_tests
from tests.integration.test_search_pushdown import CORPUS, PROBES, _compare

_BITS = 1  # two sequence numbers a generation


@pytest.fixture(autouse=True)
def _small_generations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(term_sql, "GEN_BITS", _BITS)


async def _service(url: str) -> tuple[Database, IndexService]:
    db = Database(url)
    await db.open()
    await migrate(db)
    return db, IndexService(SqlIndexRepository(db), SqlDocumentRepository(db))


async def _compare_probes(svc: IndexService, name: str) -> None:
    metas = [await svc.get(name)]
    for query in PROBES:
        for sort, size in ((None, 20), ("n", 3)):
            spec = {"query": query, "sort": sort, "from": 1, "size": size, "track": True, "scroll": False}
            await _compare(svc, metas, spec)


def _placement(url: str) -> tuple[bool, int]:
    """Whether a row is out of its document's generation (SQLite), and how many generations hold rows."""

    def read(conn: Connection) -> tuple[bool, int]:
        gens = int(conn.execute(text("SELECT count(DISTINCT gen) FROM content_terms")).scalar_one())
        return (term_sql.misplaced(conn) if conn.dialect.name == "sqlite" else False), gens

    return tables.run(url, read, write=False)


def test_searches_read_every_generation_and_rewrites_move_rows(database_url: str) -> None:
    async def go() -> None:
        db, svc = await _service(database_url)
        try:
            await svc.create("gens")
            for n, source in enumerate(CORPUS):
                await svc.documents.write("gens", str(n), source, 1, None)
            # Rewritten and deleted documents: their rows leave their old generation.
            for n in (0, 3, 6):
                await svc.index("gens", str(n), {**CORPUS[(n + 1) % len(CORPUS)], "again": n}, "index", None, None)
            await svc.delete_doc("gens", "1", None)
            await _compare_probes(svc, "gens")
        finally:
            await db.close()

    asyncio.run(go())
    misplaced, gens = _placement(database_url)
    assert not misplaced
    assert gens > 3 if STORE == "sqlite" else gens == 1


def test_the_pushed_down_property_holds_across_generations(database_url: str) -> None:
    pushdown_tests.test_pushed_down_searches_answer_as_the_in_memory_search(database_url)


_OLD_TABLE = {
    "sqlite": (
        "CREATE TABLE content_terms (index_name VARCHAR(255) NOT NULL, term TEXT NOT NULL, id VARCHAR(512) NOT NULL, "
        "num DOUBLE, PRIMARY KEY (index_name, term, id)) WITHOUT ROWID"
    ),
    "postgresql": (
        'CREATE TABLE content_terms (index_name VARCHAR(255) NOT NULL, term TEXT COLLATE "C" NOT NULL, '
        "id VARCHAR(512) NOT NULL, num DOUBLE PRECISION, PRIMARY KEY (index_name, term, id))"
    ),
}


def _old_store(conn: Connection) -> None:
    """A store at version 15 with documents and their term rows as version 15 kept them (no generation)."""
    upgrade(conn, upto=15)
    conn.execute(text("DROP TABLE content_terms"))
    conn.execute(text(_OLD_TABLE[conn.dialect.name]))
    conn.execute(
        text(
            "INSERT INTO indices (name, uuid, creation, doc, seq_no, refreshed_seq_no) VALUES (:n, 'u', 1, :d, :s, :s)"
        ),
        {"n": "old", "d": '{"settings": {}, "mappings": {}, "aliases": {}}', "s": len(CORPUS) - 1},
    )
    for n, source in enumerate(CORPUS):
        conn.execute(
            text(
                "INSERT INTO documents (index_name, id, seq_no, primary_term, version, source) "
                "VALUES ('old', :id, :n, 1, 1, :source)"
            ),
            {"id": str(n), "n": n, "source": _json(source)},
        )
        for term, num in terms.term_rows(source):
            conn.execute(
                text("INSERT INTO content_terms (index_name, term, id, num) VALUES ('old', :t, :id, :num)"),
                {"t": term, "id": str(n), "num": num},
            )


def _json(source: dict[str, Any]) -> str:
    return orjson.dumps(source).decode()


def _set_back(conn: Connection) -> None:
    """As a restore of a backup taken before version 16 leaves the store: every row in generation 0."""
    conn.execute(text("UPDATE content_terms SET gen = 0"))
    conn.execute(schema.schema_version.update().values(version=15))


def test_migration_16_places_an_older_stores_rows(database_url: str) -> None:
    tables.run(database_url, _old_store, write=True)

    async def searched() -> None:
        db, svc = await _service(database_url)
        try:
            await _compare_probes(svc, "old")
            await svc.index("old", "new", {"s": "x", "n": 1}, "index", None, None)
            await _compare_probes(svc, "old")
        finally:
            await db.close()

    asyncio.run(searched())
    version = select(schema.schema_version.c.version)
    assert tables.run(database_url, lambda conn: conn.execute(version).scalar_one(), write=False) == len(MIGRATIONS)
    misplaced, gens = _placement(database_url)
    assert not misplaced
    assert gens > 3 if STORE == "sqlite" else gens == 1
    # Rows restored from an older backup: placed again by the step (SQLite), left in 0 (PostgreSQL).
    tables.run(database_url, _set_back, write=True)
    if STORE == "sqlite":
        assert _placement(database_url)[0]
    asyncio.run(searched())
    assert _placement(database_url)[0] is False
