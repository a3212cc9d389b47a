"""Tokens in SQL, looked up by the digest of the presented token."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import and_, bindparam, delete, false, insert, or_, select, update

from keyplane.store import schema
from keyplane.store.database import Database
from keyplane.store.prepared import Prepared
from keyplane.tokens.core import Client, Token

t = schema.tokens


def _token(row: dict[str, Any]) -> Token:
    doc = orjson.loads(row["doc"])
    client = doc.get("client")
    return Token(
        row["id"],
        row["username"],
        doc["realm"],
        row["creation"],
        row["expiration"],
        bool(row["invalidated"]),
        bool(row["refreshed"]),
        Client(client["username"], client["realm"]) if client else None,
    )


def _doc(token: Token) -> dict[str, Any]:
    doc: dict[str, Any] = {"realm": token.realm}
    if token.client is not None:
        doc["client"] = {"username": token.client.username, "realm": token.client.realm}
    return doc


# A bearer request's lookups, built once (keyplane.store.prepared).
_BY_ACCESS = Prepared(select(t).where(t.c.access_hash == bindparam("hash")))
_BY_REFRESH = Prepared(select(t).where(t.c.refresh_hash == bindparam("hash")))


class SqlTokenRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, token: Token, access_hash: str, refresh_hash: str | None) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                insert(t).values(
                    id=token.id,
                    access_hash=access_hash,
                    refresh_hash=refresh_hash,
                    username=token.username,
                    realm=token.realm["name"],
                    doc=orjson.dumps(_doc(token)).decode(),
                    creation=token.creation,
                    expiration=token.expiration,
                    invalidated=False,
                    refreshed=False,
                )
            )

    async def by_access(self, access_hash: str) -> Token | None:
        row = (await self.db.execute_alone(_BY_ACCESS, {"hash": access_hash})).first()  # a read alone
        return _token(row) if row else None

    async def by_refresh(self, refresh_hash: str) -> Token | None:
        row = (await self.db.execute_alone(_BY_REFRESH, {"hash": refresh_hash})).first()  # a read alone
        return _token(row) if row else None

    async def use_refresh(self, refresh_hash: str) -> Token | None:
        """Mark a refresh token used, once; return its token when this call was the one that did."""
        async with self.db.transaction() as conn:
            row = (await conn.execute(select(t).where(t.c.refresh_hash == refresh_hash))).first()
            if row is None:
                return None
            res = await conn.execute(
                update(t)
                .where(and_(t.c.id == row["id"], t.c.refreshed == false(), t.c.invalidated == false()))
                .values(refreshed=True, invalidated=True)
            )
            conn.notify("tokens")
        return _token(row) if res.rowcount == 1 else None

    async def invalidate(
        self,
        *,
        access_hash: str | None = None,
        refresh_hash: str | None = None,
        username: str | None = None,
        realm: str | None = None,
    ) -> tuple[int, int]:
        conds = []
        if access_hash is not None:
            conds.append(t.c.access_hash == access_hash)
        if refresh_hash is not None:
            conds.append(t.c.refresh_hash == refresh_hash)
        if username is not None:
            conds.append(t.c.username == username)
        if realm is not None:
            conds.append(t.c.realm == realm)
        async with self.db.transaction() as conn:
            rows = (await conn.execute(select(t.c.id, t.c.invalidated).where(and_(*conds)))).rows
            live = [r["id"] for r in rows if not r["invalidated"]]
            if live:
                await conn.execute(update(t).where(t.c.id.in_(live)).values(invalidated=True))
                conn.notify("tokens")
        return len(live), len(rows) - len(live)

    async def delete_expired(self, before: int) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(delete(t).where(or_(t.c.expiration <= before)))

    async def delete_all(self) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(delete(t))
            conn.notify("tokens")
