"""Connectors, sync jobs and sealed secrets in SQL.

Documents are stored whole; the columns beside them are what lists filter and sort on. Every
rewrite is a compare-and-set on ``seq_no``, so concurrent writers never overwrite each other.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import and_, delete, exc, false, func, insert, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from keyplane import jsontext
from keyplane.connectors.backends.base import Stored
from keyplane.connectors.core import index_taken
from keyplane.connectors.model import ConnectorFilter, Doc
from keyplane.errors import StatusError
from keyplane.store import schema
from keyplane.store.database import Database

c, j, s = schema.connectors, schema.sync_jobs, schema.connector_secrets


def _columns(doc: Doc) -> dict[str, Any]:
    return {
        "index_name": doc.get("index_name"),
        "name": doc.get("name"),
        "service_type": doc.get("service_type"),
        "description": doc.get("description"),
        "deleted": bool(doc.get("deleted", False)),
        "doc": jsontext.dumps(doc).decode(),
    }


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def _page(
    db: Database, table: Any, conds: list[ColumnElement[bool]], order: tuple[Any, ...], start: int, size: int
) -> tuple[int, list[Stored]]:
    """The total of matching documents and one page of them."""
    count_stmt = select(func.count()).select_from(table)
    page_stmt = select(table).order_by(*order).offset(start).limit(size)
    if conds:
        count_stmt, page_stmt = count_stmt.where(and_(*conds)), page_stmt.where(and_(*conds))
    async with db.transaction() as conn:
        total = (await conn.execute(count_stmt)).scalar() or 0
        rows = (await conn.execute(page_stmt)).rows if size > 0 else []
    return int(total), [Stored(r["id"], orjson.loads(r["doc"]), r["seq_no"]) for r in rows]


class SqlConnectorRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, connector_id: str) -> Stored | None:
        async with self.db.transaction() as conn:
            row = (await conn.execute(select(c).where(c.c.id == connector_id))).first()
        return Stored(row["id"], orjson.loads(row["doc"]), row["seq_no"]) if row else None

    async def _check_index(self, conn: Any, connector_id: str, doc: Doc) -> None:
        name = doc.get("index_name")
        if name is None or doc.get("deleted"):
            return
        taken = (
            await conn.execute(
                select(c.c.id)
                .where(and_(c.c.index_name == name, c.c.deleted == false(), c.c.id != connector_id))
                .limit(1)
            )
        ).first()
        if taken:
            raise index_taken(name)

    async def index_in_use(self, index_name: str, connector_id: str) -> bool:
        async with self.db.transaction() as conn:
            try:
                await self._check_index(conn, connector_id, {"index_name": index_name})
            except StatusError:
                return True
        return False

    async def put(self, connector_id: str, doc: Doc) -> bool:
        """Index the whole document; True when it was created."""
        for attempt in range(2):
            try:
                async with self.db.transaction() as conn:
                    await self._check_index(conn, connector_id, doc)
                    res = await conn.execute(
                        update(c).where(c.c.id == connector_id).values(seq_no=c.c.seq_no + 1, **_columns(doc))
                    )
                    if res.rowcount:
                        return False
                    await conn.execute(insert(c).values(id=connector_id, seq_no=1, **_columns(doc)))
                    return True
            except exc.IntegrityError:
                # A concurrent writer created this id or took the index name; look again once.
                if attempt:
                    raise index_taken(doc.get("index_name")) from None
        return False

    async def replace(self, stored: Stored) -> bool:
        """Write a changed document back if nobody changed it since it was read."""
        try:
            async with self.db.transaction() as conn:
                await self._check_index(conn, stored.id, stored.doc)
                res = await conn.execute(
                    update(c)
                    .where(and_(c.c.id == stored.id, c.c.seq_no == stored.seq_no))
                    .values(seq_no=c.c.seq_no + 1, **_columns(stored.doc))
                )
        except exc.IntegrityError:
            raise index_taken(stored.doc.get("index_name")) from None
        return res.rowcount == 1

    async def delete(self, connector_id: str) -> bool:
        async with self.db.transaction() as conn:
            res = await conn.execute(delete(c).where(c.c.id == connector_id))
        return res.rowcount > 0

    async def list(self, selector: ConnectorFilter, start: int, size: int) -> tuple[int, list[Stored]]:
        conds: list[ColumnElement[bool]] = []
        if selector.index_names:
            conds.append(c.c.index_name.in_(selector.index_names))
        if selector.names:
            conds.append(c.c.name.in_(selector.names))
        if selector.service_types:
            conds.append(c.c.service_type.in_(selector.service_types))
        if selector.query:
            pattern = _like(selector.query)
            conds.append(
                or_(
                    c.c.index_name.like(pattern, escape="\\"),
                    c.c.name.like(pattern, escape="\\"),
                    func.lower(c.c.description).like(pattern.lower(), escape="\\"),
                )
            )
        if not selector.include_deleted:
            conds.append(c.c.deleted == false())
        order = (c.c.index_name.asc().nulls_last(), c.c.id)
        return await _page(self.db, c, conds, order, start, size)

    async def delete_all(self) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(delete(c))


class SqlSyncJobRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, job_id: str, connector_id: str, created_ns: int, doc: Doc) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                insert(j).values(
                    id=job_id,
                    connector_id=connector_id,
                    status=doc["status"],
                    job_type=doc["job_type"],
                    created_ns=created_ns,
                    doc=jsontext.dumps(doc).decode(),
                    seq_no=1,
                )
            )

    async def get(self, job_id: str) -> Stored | None:
        async with self.db.transaction() as conn:
            row = (await conn.execute(select(j).where(j.c.id == job_id))).first()
        return Stored(row["id"], orjson.loads(row["doc"]), row["seq_no"]) if row else None

    async def replace(self, stored: Stored) -> bool:
        async with self.db.transaction() as conn:
            res = await conn.execute(
                update(j)
                .where(and_(j.c.id == stored.id, j.c.seq_no == stored.seq_no))
                .values(
                    status=stored.doc["status"],
                    job_type=stored.doc["job_type"],
                    doc=jsontext.dumps(stored.doc).decode(),
                    seq_no=j.c.seq_no + 1,
                )
            )
        return res.rowcount == 1

    async def delete(self, job_id: str) -> bool:
        async with self.db.transaction() as conn:
            res = await conn.execute(delete(j).where(j.c.id == job_id))
        return res.rowcount > 0

    async def delete_for_connector(self, connector_id: str) -> int:
        async with self.db.transaction() as conn:
            res = await conn.execute(delete(j).where(j.c.connector_id == connector_id))
        return res.rowcount

    async def list(
        self, connector_id: str | None, status: str | None, job_types: list[str], start: int, size: int
    ) -> tuple[int, list[Stored]]:
        conds: list[ColumnElement[bool]] = []
        if connector_id:
            conds.append(j.c.connector_id == connector_id)
        if status:
            conds.append(j.c.status == status)
        if job_types:
            conds.append(j.c.job_type.in_(job_types))
        return await _page(self.db, j, conds, (j.c.created_ns.desc(), j.c.id), start, size)

    async def delete_all(self) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(delete(j))


class SqlSecretRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def put(self, secret_id: str, sealed: str) -> bool:
        """Store a sealed value; True when the id was new."""
        for attempt in range(2):
            try:
                async with self.db.transaction() as conn:
                    res = await conn.execute(update(s).where(s.c.id == secret_id).values(sealed=sealed))
                    if res.rowcount:
                        return False
                    await conn.execute(insert(s).values(id=secret_id, sealed=sealed))
                    return True
            except exc.IntegrityError:
                if attempt:
                    raise
        return False

    async def get(self, secret_id: str) -> str | None:
        async with self.db.transaction() as conn:
            row = (await conn.execute(select(s.c.sealed).where(s.c.id == secret_id))).first()
        return row["sealed"] if row else None

    async def delete(self, secret_id: str) -> bool:
        async with self.db.transaction() as conn:
            res = await conn.execute(delete(s).where(s.c.id == secret_id))
        return res.rowcount > 0

    async def delete_all(self) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(delete(s))
