"""The expiring-keys read in SQL: an index range over ``expiration``.

``expiration > now AND expiration <= until`` is a range of ``api_keys_expiration``, so both the
count and the page read only the keys in the window, however many keys there are; the order
(expiration, id) is the index's own, with a sort of ties only. The page gives ids; the service
reads the keys through the key repository.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Integer, and_, bindparam, false, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from keyplane.apikeys.backends.expiring.base import ExpiringIds, ExpiringWindow
from keyplane.store import schema
from keyplane.store.database import Database

t = schema.api_keys


def _where(window: ExpiringWindow, *, page: bool) -> ColumnElement[bool]:
    conds: list[ColumnElement[bool]] = [
        t.c.expiration > bindparam("now", type_=BigInteger),
        t.c.expiration <= bindparam("until", type_=BigInteger),
        t.c.invalidated == false(),
    ]
    if window.owner is not None:
        conds += [t.c.username == bindparam("username"), t.c.realm == bindparam("realm")]
    if window.key_id is not None:
        conds.append(t.c.id == bindparam("key_id"))
    if page and window.after is not None:
        after = bindparam("after_expiration", type_=BigInteger)
        conds.append(or_(t.c.expiration > after, and_(t.c.expiration == after, t.c.id > bindparam("after_id"))))
    return and_(*conds)


def _params(window: ExpiringWindow) -> dict[str, Any]:
    params: dict[str, Any] = {"now": window.now, "until": window.until, "start": window.start, "size": window.size}
    if window.owner is not None:
        params["username"], params["realm"] = window.owner
    if window.key_id is not None:
        params["key_id"] = window.key_id
    if window.after is not None:
        params["after_expiration"], params["after_id"] = window.after
    return params


def statements(window: ExpiringWindow) -> tuple[Any, Any]:
    """The count and the page statements of ``window`` (tests read their plans)."""
    count = select(func.count()).select_from(t).where(_where(window, page=False))
    page = (
        select(t.c.id)
        .where(_where(window, page=True))
        .order_by(t.c.expiration.asc(), t.c.id.asc())
        .offset(bindparam("start", type_=Integer))
        .limit(bindparam("size", type_=Integer))
    )
    return count, page


class SqlExpiringKeyRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def expiring(self, window: ExpiringWindow) -> ExpiringIds:
        count, page = statements(window)
        params = _params(window)
        async with self.db.transaction() as conn:
            total = int((await conn.execute(count, params)).scalar() or 0)
            rows = (await conn.execute(page, params)).rows if window.size > 0 else []
        return ExpiringIds(total, [row["id"] for row in rows])
