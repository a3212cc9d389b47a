"""The expiring-keys read in SQL: an index range over ``expiration``.

``expiration > now AND expiration <= until`` is an index range, so the count and the page read only
the keys in the window, however many keys there are; the page comes in the index's order
(expiration), with a sort of ties by id only, and stops at its last key. The page gives ids; the
service reads the keys through the key repository.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Integer, and_, bindparam, false, func, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from keyplane.apikeys import core
from keyplane.apikeys.backends.expiring.base import ExpiringIds, ExpiringWindow
from keyplane.store import schema
from keyplane.store.database import Database

t = schema.api_keys


def _where(window: ExpiringWindow, *, page: bool) -> ColumnElement[bool]:
    """The window's condition, written for SQLite's planner, which has no statistics to choose by.

    ``invalidated = false`` would draw SQLite to the indexes that begin with ``invalidated`` (a scan
    of every live key), so it is written ``invalidated IS NOT true``, which no index serves: the page
    is a range of ``api_keys_expiration`` (or the owner's keys, ``api_keys_owner``), in its order.
    The count of every caller's keys is the exception: with every type listed it is a range of the
    covering ``api_keys_live_by_expiration``, read without the table.
    """
    lower: ColumnElement[bool] = t.c.expiration > bindparam("now", type_=BigInteger)
    after: list[ColumnElement[bool]] = []
    if page and window.after is not None:
        # The range starts at the previous page's last expiration, not at now: a deep page reads no
        # earlier keys. A key past now is still past now when its expiration comes after it.
        at = bindparam("after_expiration", type_=BigInteger)
        if window.after[0] > window.now:
            lower = t.c.expiration >= at
        after.append(or_(t.c.expiration > at, and_(t.c.expiration == at, t.c.id > bindparam("after_id"))))
    conds = [lower, t.c.expiration <= bindparam("until", type_=BigInteger), *after]
    if window.owner is not None:
        conds += [t.c.username == bindparam("username"), t.c.realm == bindparam("realm")]
    if window.key_id is not None:
        conds.append(t.c.id == bindparam("key_id"))
    if page or window.owner is not None or window.key_id is not None:
        conds.append(t.c.invalidated.is_not(true()))
    else:
        conds += [t.c.invalidated == false(), t.c.type.in_([core.REST, core.CROSS_CLUSTER])]
    return and_(*conds)


def parameters(window: ExpiringWindow) -> dict[str, Any]:
    """The values the statements of ``window`` bind."""
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
        params = parameters(window)
        async with self.db.transaction() as conn:
            total = int((await conn.execute(count, params)).scalar() or 0)
            rows = (await conn.execute(page, params)).rows if window.size > 0 else []
        return ExpiringIds(total, [row["id"] for row in rows])
