"""Indices and documents in SQL: the index row holds the last sequence number given out, and each
document row its own, so a write is one transaction that bumps the one and compares-and-sets the other."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from sqlalchemy import and_, delete, exc, func, insert, select, update

from keyplane import jsontext
from keyplane.indices.core import IndexMeta, IndexMissing, Source, StoredDoc
from keyplane.store import schema
from keyplane.store.database import Conn, Database

ix, dx = schema.indices, schema.documents


def _meta(row: dict[str, Any]) -> IndexMeta:
    body = orjson.loads(row["doc"])
    return IndexMeta(row["name"], row["uuid"], row["creation"], body["settings"], body["mappings"], body["aliases"])


def _doc(row: dict[str, Any]) -> StoredDoc:
    return StoredDoc(row["id"], orjson.loads(row["source"]), row["seq_no"], row["version"], row["primary_term"])


async def _next_seq_no(conn: Conn, index: str) -> int:
    """Take the index's next sequence number; the row lock it holds orders the index's writes."""
    res = await conn.execute(update(ix).where(ix.c.name == index).values(seq_no=ix.c.seq_no + 1))
    if res.rowcount != 1:
        raise IndexMissing(index)
    return int((await conn.execute(select(ix.c.seq_no).where(ix.c.name == index))).scalar())


class SqlIndexRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, meta: IndexMeta) -> IndexMeta | None:
        body = {"settings": meta.settings, "mappings": meta.mappings, "aliases": meta.aliases}
        values = {"name": meta.name, "uuid": meta.uuid, "creation": meta.created_ms, "seq_no": -1}
        try:
            async with self.db.transaction() as conn:
                if (await conn.execute(select(ix.c.name).where(ix.c.name == meta.name))).first():
                    return None
                await conn.execute(insert(ix).values(doc=jsontext.dumps(body).decode(), **values))
        except exc.IntegrityError:
            return None  # created by a concurrent request
        return meta

    async def get(self, name: str) -> IndexMeta | None:
        async with self.db.transaction() as conn:
            row = (await conn.execute(select(ix).where(ix.c.name == name))).first()
        return _meta(row) if row else None

    async def list(self) -> list[IndexMeta]:
        async with self.db.transaction() as conn:
            rows = (await conn.execute(select(ix).order_by(ix.c.name))).rows
        return [_meta(r) for r in rows]

    async def delete(self, name: str) -> bool:
        async with self.db.transaction() as conn:
            await conn.execute(delete(dx).where(dx.c.index_name == name))
            res = await conn.execute(delete(ix).where(ix.c.name == name))
        return res.rowcount > 0

    async def delete_all(self) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(delete(dx))
            await conn.execute(delete(ix))


class SqlDocumentRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, index: str, doc_id: str) -> StoredDoc | None:
        async with self.db.transaction() as conn:
            row = (await conn.execute(select(dx).where(and_(dx.c.index_name == index, dx.c.id == doc_id)))).first()
        return _doc(row) if row else None

    async def write(
        self, index: str, doc_id: str, source: Source, version: int, expected: StoredDoc | None
    ) -> StoredDoc | None:
        text = jsontext.dumps(source).decode()
        try:
            async with self.db.transaction() as conn:
                seq_no = await _next_seq_no(conn, index)
                values = {"seq_no": seq_no, "version": version, "source": text}
                if expected is None:
                    await conn.execute(insert(dx).values(index_name=index, id=doc_id, primary_term=1, **values))
                else:
                    res = await conn.execute(
                        update(dx)
                        .where(and_(dx.c.index_name == index, dx.c.id == doc_id, dx.c.seq_no == expected.seq_no))
                        .values(**values)
                    )
                    if res.rowcount != 1:
                        raise _Raced
        except (_Raced, exc.IntegrityError):
            return None
        return StoredDoc(doc_id, source, seq_no, version)

    async def delete(self, index: str, doc_id: str, expected: StoredDoc | None) -> int | None:
        try:
            async with self.db.transaction() as conn:
                seq_no = await _next_seq_no(conn, index)
                if expected is not None:
                    res = await conn.execute(
                        delete(dx).where(
                            and_(dx.c.index_name == index, dx.c.id == doc_id, dx.c.seq_no == expected.seq_no)
                        )
                    )
                    if res.rowcount != 1:
                        raise _Raced
                elif (
                    await conn.execute(select(dx.c.id).where(and_(dx.c.index_name == index, dx.c.id == doc_id)))
                ).first():
                    raise _Raced
        except _Raced:
            return None
        return seq_no

    async def count(self, index: str) -> int:
        async with self.db.transaction() as conn:
            total = (await conn.execute(select(func.count()).where(dx.c.index_name == index))).scalar()
        return int(total or 0)

    async def scan(self, index: str, batch: int = 1000) -> AsyncIterator[StoredDoc]:
        after = -2
        while True:
            async with self.db.transaction() as conn:
                rows = (
                    await conn.execute(
                        select(dx)
                        .where(and_(dx.c.index_name == index, dx.c.seq_no > after))
                        .order_by(dx.c.seq_no)
                        .limit(batch)
                    )
                ).rows
            for row in rows:
                yield _doc(row)
            if len(rows) < batch:
                return
            after = rows[-1]["seq_no"]


class _Raced(Exception):
    """Another writer changed the document first; the transaction rolls back."""
