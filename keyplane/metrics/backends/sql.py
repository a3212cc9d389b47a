"""State aggregates for the metrics, in SQL over the same tables the domains keep.

API keys are counted from the count tables the apikeys package's triggers keep (a few rows
whatever the number of keys) plus one index range over the keys that expire in the current
expiry bucket; connectors and sync jobs by status are grouped counts (one scan each, cached by
the caller for a few seconds).
"""

from __future__ import annotations

from sqlalchemy import false, func, literal_column, select

from keyplane.store import schema
from keyplane.store.database import Database

_COUNTS = schema.api_key_counts
_EXPIRY = schema.api_key_expiry_counts
_KEYS = schema.api_keys


class SqlStateCounts:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def api_keys(self, now_ms: int) -> dict[str, int]:
        bucket = now_ms >> schema.EXPIRY_BUCKET_BITS
        by_invalidated = select(_COUNTS.c.invalidated, func.sum(_COUNTS.c.n).label("n")).group_by(_COUNTS.c.invalidated)
        # Live keys expired before the current bucket, from whole buckets...
        expired_buckets = select(func.sum(_EXPIRY.c.n)).where(
            _EXPIRY.c.invalidated == false(), _EXPIRY.c.bucket < bucket
        )
        # ...and those of the current bucket whose time has passed, from the expiration index.
        expired_now = (
            select(func.count())
            .select_from(_KEYS)
            .where(
                _KEYS.c.expiration >= bucket << schema.EXPIRY_BUCKET_BITS,
                _KEYS.c.expiration < now_ms,
                _KEYS.c.invalidated == false(),
            )
        )
        async with self.db.transaction() as conn:
            totals, whole, part = await conn.execute_all(
                (by_invalidated, None), (expired_buckets, None), (expired_now, None)
            )
        counts = {bool(row["invalidated"]): int(row["n"] or 0) for row in totals.rows}
        expired = int(whole.scalar() or 0) + int(part.scalar() or 0)
        live = counts.get(False, 0)
        return {"active": max(live - expired, 0), "expired": expired, "invalidated": counts.get(True, 0)}

    async def connectors(self) -> dict[str, int]:
        doc = schema.connectors.c.doc
        status = (
            literal_column("CAST(connectors.doc AS jsonb) ->> 'status'")
            if self.db.is_postgres
            else func.json_extract(doc, "$.status")
        ).label("status")
        stmt = (
            select(status, func.count().label("n"))
            .select_from(schema.connectors)
            .where(schema.connectors.c.deleted == false())
            .group_by(status)
        )
        async with self.db.transaction() as conn:
            rows = await conn.execute(stmt)
        return {str(row["status"]): int(row["n"]) for row in rows.rows}

    async def sync_jobs(self) -> dict[str, int]:
        status = schema.sync_jobs.c.status
        stmt = select(status, func.count().label("n")).group_by(status)
        async with self.db.transaction() as conn:
            rows = await conn.execute(stmt)
        return {str(row["status"]): int(row["n"]) for row in rows.rows}
