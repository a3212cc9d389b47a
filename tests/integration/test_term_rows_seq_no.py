"""Term rows carry their document's sequence number (migration 18): a term or terms query's page and
count come from its rows alone (``value_search``) and answer as the in-memory search,
through rewrites, deletes and writes not yet refreshed; a store of version 17 migrated (and rows
restored from a backup taken before 18) answers the same, on both stores."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from keyplane.backup import tables
from keyplane.indices import terms
from keyplane.indices.backends.terms import sql as term_sql
from keyplane.indices.service import IndexService
from keyplane.store import schema
from keyplane.store.migrations import MIGRATIONS, upgrade

# Small generations (SQLite) so that the documents span many, and a migrated store's service.
from tests.integration.test_content_terms_generations import _BITS, _service, _small_generations  # noqa: F401
from tests.integration.test_search_pushdown import _compare

# Regular documents only (an index with an irregular one is searched another way), values shared
# between kinds ("1" and 1) so that a terms query finds a document through several of its rows.
DOCS: list[dict[str, Any]] = [
    {"s": ["x", "1"], "n": 1, "b": True},
    {"s": "X", "n": 2, "b": False, "o": {"k": "v"}},
    {"s": "1", "n": [1, 2], "b": "true"},
    {"s": "x", "n": "2"},
    {"s": ["x", "y"], "o": {"k": ["v", "w"]}},
    {"n": 1.0, "b": True},
    {"s": "y", "n": 0},
]
PROBES: list[dict[str, Any]] = [
    *({"term": {"s": value}} for value in ("x", "X", "1", "y", "none")),
    *({"term": {"n": value}} for value in (1, "2", 0, 1.0)),
    {"term": {"b": True}},
    {"term": {"o.k": "v"}},
    {"terms": {"s": ["x", "y", "1"]}},
    {"terms": {"n": [1, "2", 2.0]}},
    {"terms": {"s": []}},
]


async def _compare_probes(svc: IndexService, name: str) -> None:
    metas = [await svc.get(name)]
    for query in PROBES:
        for start, size in ((0, 10), (1, 2), (3, 3), (20, 5), (0, 0)):
            for track in (True, 2):
                spec = {"query": query, "sort": None, "from": start, "size": size, "track": track, "scroll": False}
                await _compare(svc, metas, spec)


def _misnumbered(url: str) -> int:
    """Rows whose sequence number is not their document's."""

    def read(conn: Connection) -> int:
        found = conn.execute(
            text(
                "SELECT count(*) FROM content_terms t WHERE NOT EXISTS (SELECT 1 FROM documents d "
                "WHERE d.index_name = t.index_name AND d.id = t.id AND d.seq_no = t.seq_no)"
            )
        ).scalar_one()
        return int(found)

    return tables.run(url, read, write=False)


def test_term_pages_come_from_the_term_rows_and_answer_as_the_in_memory_search(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages: list[Any] = []
    value_search = term_sql.value_search
    monkeypatch.setattr(term_sql, "value_search", lambda *args: pages.append(args) or value_search(*args))

    async def go() -> None:
        db, svc = await _service(database_url)
        try:
            await svc.create("seq", {"index.refresh_interval": "-1"})
            for n, source in enumerate(DOCS * 3):
                await svc.documents.write("seq", str(n), source, 1, None)
            await _compare_probes(svc, "seq")
            # Rewrites and deletes: the rows move to the new sequence numbers.
            for n in (0, 4, 9):
                await svc.index("seq", str(n), DOCS[(n + 2) % len(DOCS)], "index", None, None)
            await svc.delete_doc("seq", "2", None)
            await _compare_probes(svc, "seq")
            # New documents not refreshed yet: searches do not see them.
            for n in range(100, 104):
                await svc.documents.write("seq", str(n), DOCS[n % len(DOCS)], 1, None, refresh=False)
            await _compare_probes(svc, "seq")
            await svc.refresh([await svc.get("seq")])
            await _compare_probes(svc, "seq")
        finally:
            await db.close()

    asyncio.run(go())
    assert pages, "term searches read their page from the term rows"
    assert _misnumbered(database_url) == 0


_V17_TABLE = {
    "sqlite": (
        "CREATE TABLE content_terms (index_name VARCHAR(255) NOT NULL, gen BIGINT DEFAULT '0' NOT NULL, "
        "term TEXT NOT NULL, id VARCHAR(512) NOT NULL, num FLOAT, PRIMARY KEY (index_name, gen, term, id)) "
        "WITHOUT ROWID"
    ),
    "postgresql": (
        "CREATE TABLE content_terms (index_name VARCHAR(255) NOT NULL, gen BIGINT DEFAULT '0' NOT NULL, "
        'term TEXT COLLATE "C" NOT NULL, id VARCHAR(512) NOT NULL, num DOUBLE PRECISION, '
        "PRIMARY KEY (index_name, gen, term, id))"
    ),
}


def _v17_store(conn: Connection) -> None:
    """A store at version 17 with documents (some rewritten) and their term rows as version 17 kept them."""
    upgrade(conn, upto=17)
    conn.execute(text("DROP TABLE content_terms"))
    conn.execute(text(_V17_TABLE[conn.dialect.name]))
    sources = {str(n): source for n, source in enumerate(DOCS * 2)}
    sources["3"] = DOCS[0]  # rewritten: the last sequence numbers
    seqs = {doc_id: n for n, doc_id in enumerate(sources)}
    seqs["3"] = len(sources)
    conn.execute(
        text(
            "INSERT INTO indices (name, uuid, creation, doc, seq_no, refreshed_seq_no) "
            "VALUES ('old', 'u', 1, :d, :s, :s)"
        ),
        {"d": '{"settings": {}, "mappings": {}, "aliases": {}}', "s": len(sources)},
    )
    pg = conn.dialect.name == "postgresql"
    for doc_id, source in sources.items():
        conn.execute(
            text(
                "INSERT INTO documents (index_name, id, seq_no, primary_term, version, source) "
                "VALUES ('old', :id, :seq, 1, 1, :source)"
            ),
            {"id": doc_id, "seq": seqs[doc_id], "source": orjson.dumps(source).decode()},
        )
        for term, num in terms.term_rows(source):
            conn.execute(
                text("INSERT INTO content_terms (index_name, gen, term, id, num) VALUES ('old', :g, :t, :id, :num)"),
                {"g": 0 if pg else seqs[doc_id] >> _BITS, "t": term, "id": doc_id, "num": num},
            )


def _restored_before_18(conn: Connection) -> None:
    """As a restore of a backup taken at version 17 leaves the store: rows at the column's default."""
    conn.execute(text("UPDATE content_terms SET seq_no = -1"))
    conn.execute(schema.schema_version.update().values(version=17))


def test_migration_18_numbers_an_older_stores_rows(database_url: str) -> None:
    tables.run(database_url, _v17_store, write=True)
    count = text("SELECT count(*) FROM content_terms")
    rows = int(tables.run(database_url, lambda c: c.execute(count).scalar_one(), write=False))

    async def searched() -> None:
        db, svc = await _service(database_url)
        try:
            await _compare_probes(svc, "old")
            await svc.index("old", "new", DOCS[1], "index", None, None)
            await svc.index("old", "5", DOCS[2], "index", None, None)
            await _compare_probes(svc, "old")
        finally:
            await db.close()

    asyncio.run(searched())
    version = select(schema.schema_version.c.version)
    assert tables.run(database_url, lambda c: c.execute(version).scalar_one(), write=False) == len(MIGRATIONS)
    assert rows > len(DOCS) * 2
    assert _misnumbered(database_url) == 0
    tables.run(database_url, _restored_before_18, write=True)
    assert _misnumbered(database_url) > 0
    asyncio.run(searched())
    assert _misnumbered(database_url) == 0
