"""User profiles in SQL."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import and_, delete, exc, insert, select, update

from keyplane import jsontext
from keyplane.profiles.backends.base import StoredProfile
from keyplane.store import schema
from keyplane.store.database import Database

p = schema.user_profiles
_CHUNK = 500  # uids per IN list: well under either database's limit on bound parameters


def _profile(row: dict[str, Any]) -> StoredProfile:
    return StoredProfile(row["uid"], bool(row["enabled"]), orjson.loads(row["doc"]), row["seq_no"])


class SqlProfileRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, uid: str) -> StoredProfile | None:
        async with self.db.transaction() as conn:
            row = (await conn.execute(select(p).where(p.c.uid == uid))).first()
        return _profile(row) if row else None

    async def get_many(self, uids: list[str]) -> dict[str, StoredProfile]:
        wanted = list(dict.fromkeys(uids))
        found: dict[str, StoredProfile] = {}
        async with self.db.transaction() as conn:
            for start in range(0, len(wanted), _CHUNK):
                rows = (await conn.execute(select(p).where(p.c.uid.in_(wanted[start : start + _CHUNK])))).rows
                found.update((r["uid"], _profile(r)) for r in rows)
        return found

    async def by_user(self, usernames: list[str]) -> dict[tuple[str, str], str]:
        """(username, realm) -> uid for the users that have a profile."""
        if not usernames:
            return {}
        async with self.db.transaction() as conn:
            rows = (
                await conn.execute(select(p.c.uid, p.c.username, p.c.realm).where(p.c.username.in_(usernames)))
            ).rows
        return {(r["username"], r["realm"]): r["uid"] for r in rows}

    async def all_enabled(self) -> list[StoredProfile]:
        async with self.db.transaction() as conn:
            rows = (await conn.execute(select(p).where(p.c.enabled.is_(True)).order_by(p.c.username))).rows
        return [_profile(r) for r in rows]

    async def activate(self, uid: str, username: str, realm: str, user: dict[str, Any], now: int) -> StoredProfile:
        """Create the profile, or refresh its user snapshot and enable it."""
        for attempt in range(2):
            try:
                async with self.db.transaction() as conn:
                    row = (await conn.execute(select(p).where(p.c.uid == uid))).first()
                    if row is None:
                        doc = {"user": user, "labels": {}, "data": {}, "last_synchronized": now}
                        await conn.execute(
                            insert(p).values(
                                uid=uid,
                                username=username,
                                realm=realm,
                                enabled=True,
                                doc=jsontext.dumps(doc).decode(),
                                seq_no=1,
                            )
                        )
                        return StoredProfile(uid, True, doc, 1)
                    doc = orjson.loads(row["doc"])
                    doc.update(user=user, last_synchronized=now)
                    await conn.execute(
                        update(p)
                        .where(p.c.uid == uid)
                        .values(enabled=True, doc=jsontext.dumps(doc).decode(), seq_no=p.c.seq_no + 1)
                    )
                    return StoredProfile(uid, True, doc, row["seq_no"] + 1)
            except exc.IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def replace(self, profile: StoredProfile) -> bool:
        async with self.db.transaction() as conn:
            res = await conn.execute(
                update(p)
                .where(and_(p.c.uid == profile.uid, p.c.seq_no == profile.seq_no))
                .values(enabled=profile.enabled, doc=jsontext.dumps(profile.doc).decode(), seq_no=p.c.seq_no + 1)
            )
        return res.rowcount == 1

    async def delete_all(self) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(delete(p))
