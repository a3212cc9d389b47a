"""Properties of the whole cluster, kept in the store so that every node reports the same."""

from __future__ import annotations

import uuid

from sqlalchemy import insert, select

from keyplane.store import schema
from keyplane.store.database import Database


async def cluster_uuid(db: Database) -> str:
    """The cluster's uuid, made by the first node that asks (``GET /`` reports it)."""
    props = schema.properties
    async with db.transaction() as conn:
        row = (await conn.execute(select(props.c.value).where(props.c.name == "cluster_uuid"))).first()
        if row:
            return str(row["value"])
        value = uuid.uuid4().hex[:22]
        await conn.execute(insert(props).values(name="cluster_uuid", value=value))
        return value
