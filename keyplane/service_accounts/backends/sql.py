"""Service-account tokens in SQL: one row per token, its secret stored hashed."""

from __future__ import annotations

from sqlalchemy import delete, exc, insert, select

from keyplane.store import schema
from keyplane.store.database import Database

t = schema.service_tokens


class SqlServiceTokenRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, key: str, account: str, name: str, secret_hash: str, creation: int) -> bool:
        try:
            async with self.db.transaction() as conn:
                await conn.execute(
                    insert(t).values(id=key, account=account, name=name, hash=secret_hash, creation=creation)
                )
        except exc.IntegrityError:
            return False
        return True

    async def names(self, account: str) -> list[str]:
        async with self.db.transaction() as conn:
            rows = (await conn.execute(select(t.c.name).where(t.c.account == account).order_by(t.c.name))).rows
        return [r["name"] for r in rows]

    async def secret_hash(self, key: str) -> str | None:
        async with self.db.transaction() as conn:
            row = (await conn.execute(select(t.c.hash).where(t.c.id == key))).first()
        return str(row["hash"]) if row else None

    async def delete(self, key: str) -> bool:
        async with self.db.transaction() as conn:
            res = await conn.execute(delete(t).where(t.c.id == key))
            conn.notify("service_tokens")
        return res.rowcount > 0

    async def delete_all(self) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(delete(t))
            conn.notify("service_tokens")
