"""Term rows and new documents reach PostgreSQL as flat texts when they can (``pg_flat``) and as arrays
when an id or a source holds U+FFFF or NUL: either way the store holds the same documents and rows
(exact numbers included), found by the same term searches; on SQLite the same writes as a reference."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select, text

from keyplane.indices.backends.base import DocWrite
from keyplane.indices.backends.sql import SqlDocumentRepository, SqlIndexRepository
from keyplane.indices.backends.terms import sql as term_rows
from keyplane.indices.service import IndexService
from keyplane.indices.terms import term_rows as terms_of
from keyplane.store import nul, schema
from keyplane.store.database import Database
from keyplane.store.migrations import migrate

_DOCS: dict[str, dict[str, Any]] = {
    "plain": {"tag": "t1", "size": 7, "ok": True, "ratio": 0.1},
    "tiny": {"tag": "t1", "ratio": 5e-324, "neg": -0.0, "big": 2**53, "off": False},
    "uni": {"tag": "é\u2603,N", "n": 1e300, "list": [1, "a", None]},
    "nested": {"obj": {"tag": "t1", "x": 1.5}, "none": None},
}
_ODD_IDS: dict[str, dict[str, Any]] = {"a\uffffb": {"tag": "t1", "v": "x\uffffy"}, "n\x00ul": {"tag": "t1", "v": 2}}


def test_joined_texts_split_back_or_refuse() -> None:
    assert term_rows.joined([]) == ""
    assert term_rows.joined(["a", "", "b"]) == "a\uffff\uffffb"
    assert term_rows.joined([""]) is None  # would split into no element
    assert term_rows.joined(["a", "x\uffffy"]) is None
    assert term_rows.joined_numbers([1.5, None, 7, -0.0, 5e-324]) == "1.5,N,7,-0.0,5e-324"


async def _rows(db: Database, index: str) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    dx = schema.documents
    async with db.transaction() as conn:
        # As text: the store reads no typed num column anywhere else.
        query = text("SELECT term, id, num FROM content_terms WHERE index_name = :index")
        terms = (await conn.execute(query, {"index": index})).rows
        docs = (await conn.execute(select(dx.c.id, dx.c.seq_no, dx.c.version).where(dx.c.index_name == index))).rows
    unsealed = db.is_postgres
    return (
        {(r["term"], nul.unseal(r["id"]) if unsealed else r["id"], r["num"]) for r in terms},
        {(nul.unseal(r["id"]) if unsealed else r["id"], r["seq_no"], r["version"]) for r in docs},
    )


def test_flat_and_array_writes_store_the_same_rows(database_url: str) -> None:
    async def go() -> None:
        db = Database(database_url)
        await db.open()
        await migrate(db)
        svc = IndexService(SqlIndexRepository(db), SqlDocumentRepository(db))
        try:
            sides: list[tuple[str, dict[str, dict[str, Any]]]] = [("flat", _DOCS), ("arrays", {**_DOCS, **_ODD_IDS})]
            for index, docs in sides:
                await svc.create(index)
                writes = [DocWrite(doc_id, source, 1) for doc_id, source in docs.items()]
                assert await svc.documents.write_many(index, writes, {}) == list(range(len(docs)))
                # Rewritten: the old rows deleted (flat or arrays alike), the new ones added.
                again = [DocWrite(doc_id, {**source, "round": 2}, 2) for doc_id, source in docs.items()]
                stored = await svc.documents.get_many(index, list(docs))
                assert await svc.documents.write_many(index, again, stored) is not None
                terms, kept = await _rows(db, index)
                expected = {
                    (key, doc_id, num)
                    for doc_id, source in docs.items()
                    for key, num in terms_of({**source, "round": 2})
                }
                assert terms == expected
                assert kept == {(doc_id, len(docs) + n, 2) for n, doc_id in enumerate(docs)}
                for doc_id, source in docs.items():
                    doc = await svc.documents.get(index, doc_id)
                    assert doc is not None and doc.source == {**source, "round": 2}
        finally:
            await db.close()

    asyncio.run(go())
