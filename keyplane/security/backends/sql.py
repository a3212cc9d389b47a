"""SQL repositories for users, roles and application privileges (SQLite and PostgreSQL alike).

Every write runs in one transaction and notifies other nodes that their caches are stale. Writes
touch only the columns they change, so concurrent writers of different fields lose nothing.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import and_, bindparam, delete, exc, insert, select, update

from keyplane import jsontext
from keyplane.security import roles as role_mod
from keyplane.security.backends.base import StoredUser
from keyplane.security.roles import RoleDescriptor
from keyplane.security.users import User
from keyplane.store import schema
from keyplane.store.database import Database
from keyplane.store.prepared import Prepared
from keyplane.store.upsert import upsert

u, r, ap, rm, props = schema.users, schema.roles, schema.app_privileges, schema.role_mappings, schema.properties


def _user(row: dict[str, Any]) -> StoredUser:
    doc = orjson.loads(row["doc"])
    user = User(
        row["username"],
        roles=doc.get("roles", []),
        full_name=doc.get("full_name"),
        email=doc.get("email"),
        metadata=doc.get("metadata", {}),
        enabled=bool(row["enabled"]),
        reserved=bool(row["reserved"]),
    )
    return StoredUser(user, row["password_hash"])


def _user_doc(user: User) -> str:
    return jsontext.dumps(
        {"roles": user.roles, "full_name": user.full_name, "email": user.email, "metadata": user.metadata}
    ).decode()


async def _upsert(db: Database, kind: str, exists: Any, do_insert: Any, do_update: Any) -> bool:
    """Insert or update in one transaction; retry once if a concurrent insert won the race."""
    for attempt in range(2):
        try:
            async with db.transaction() as conn:
                found = (await conn.execute(exists)).first() is not None
                await conn.execute(do_update if found else do_insert)
                conn.notify(kind)
                return not found
        except exc.IntegrityError:
            if attempt:
                raise
    return False


_GET_USER = Prepared(select(u).where(u.c.username == bindparam("username")))  # built once (keyplane.store.prepared)


class SqlUserRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, username: str) -> StoredUser | None:
        row = (await self.db.execute_alone(_GET_USER, {"username": username})).first()  # a read alone
        return _user(row) if row else None

    async def list(self, usernames: list[str] | None = None) -> list[StoredUser]:
        stmt = select(u).order_by(u.c.username)
        if usernames is not None:
            stmt = stmt.where(u.c.username.in_(usernames))
        async with self.db.transaction() as conn:
            rows = (await conn.execute(stmt)).rows
        return [_user(row) for row in rows]

    async def put(self, user: User, password_hash: str | None) -> bool:
        values: dict[str, Any] = {"doc": _user_doc(user), "enabled": user.enabled, "seq_no": u.c.seq_no + 1}
        if password_hash is not None:
            values["password_hash"] = password_hash
        return await _upsert(
            self.db,
            "users",
            select(u.c.username).where(u.c.username == user.username),
            insert(u).values(
                username=user.username,
                password_hash=password_hash,
                enabled=user.enabled,
                reserved=False,
                doc=_user_doc(user),
                seq_no=1,
            ),
            update(u).where(u.c.username == user.username).values(**values),
        )

    async def _change(self, username: str, **values: Any) -> bool:
        async with self.db.transaction() as conn:
            res = await conn.execute(update(u).where(u.c.username == username).values(seq_no=u.c.seq_no + 1, **values))
            conn.notify("users")
        return res.rowcount > 0

    async def delete(self, username: str) -> bool:
        async with self.db.transaction() as conn:
            res = await conn.execute(delete(u).where(u.c.username == username))
            conn.notify("users")
        return res.rowcount > 0

    async def set_enabled(self, username: str, enabled: bool) -> bool:
        return await self._change(username, enabled=enabled)

    async def set_password(self, username: str, password_hash: str) -> bool:
        return await self._change(username, password_hash=password_hash)

    async def put_reserved(self, username: str, password_hash: str | None, enabled: bool | None = True) -> None:
        values: dict[str, Any] = {} if enabled is None else {"enabled": enabled}
        if password_hash is not None:
            values["password_hash"] = password_hash
        doc = orjson.dumps({}).decode()
        await _upsert(
            self.db,
            "users",
            select(u.c.username).where(u.c.username == username),
            insert(u).values(
                username=username,
                password_hash=password_hash,
                enabled=enabled is not False,
                reserved=True,
                doc=doc,
                seq_no=1,
            ),
            update(u).where(u.c.username == username).values(seq_no=u.c.seq_no + 1, **values),
        )

    async def delete_all_except(self, username: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(delete(u).where(u.c.username != username))
            conn.notify("users")


class SqlRoleRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get_many(self, names: list[str]) -> dict[str, RoleDescriptor]:
        if not names:
            return {}
        async with self.db.transaction() as conn:
            rows = (await conn.execute(select(r).where(r.c.name.in_(names)))).rows
        return {row["name"]: role_mod.from_stored(row["name"], row["doc"]) for row in rows}

    async def list(self) -> list[RoleDescriptor]:
        async with self.db.transaction() as conn:
            rows = (await conn.execute(select(r).order_by(r.c.name))).rows
        return [role_mod.from_stored(row["name"], row["doc"]) for row in rows]

    async def put(self, role: RoleDescriptor) -> bool:
        doc = role_mod.to_stored(role)
        return await _upsert(
            self.db,
            "roles",
            select(r.c.name).where(r.c.name == role.name),
            insert(r).values(name=role.name, doc=doc, seq_no=1),
            update(r).where(r.c.name == role.name).values(doc=doc, seq_no=r.c.seq_no + 1),
        )

    async def delete(self, name: str) -> bool:
        async with self.db.transaction() as conn:
            res = await conn.execute(delete(r).where(r.c.name == name))
            conn.notify("roles")
        return res.rowcount > 0

    async def delete_all(self) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(delete(r))
            conn.notify("roles")


class SqlPrivilegeRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, application: str | None, names: list[str]) -> list[dict[str, Any]]:
        stmt = select(ap).order_by(ap.c.application, ap.c.name)
        if application is not None:
            stmt = stmt.where(ap.c.application == application)
        if names:
            stmt = stmt.where(ap.c.name.in_(names))
        async with self.db.transaction() as conn:
            rows = (await conn.execute(stmt)).rows
        return [orjson.loads(row["doc"]) for row in rows]

    async def put(self, privilege: dict[str, Any]) -> bool:
        app, name = privilege["application"], privilege["name"]
        doc = jsontext.dumps(privilege).decode()
        key = and_(ap.c.application == app, ap.c.name == name)
        return await _upsert(
            self.db,
            "privileges",
            select(ap.c.name).where(key),
            insert(ap).values(application=app, name=name, doc=doc, seq_no=1),
            update(ap).where(key).values(doc=doc, seq_no=ap.c.seq_no + 1),
        )

    async def delete(self, application: str, name: str) -> bool:
        async with self.db.transaction() as conn:
            res = await conn.execute(delete(ap).where(and_(ap.c.application == application, ap.c.name == name)))
            conn.notify("privileges")
        return res.rowcount > 0

    async def delete_all(self) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(delete(ap))
            conn.notify("privileges")


class SqlRoleMappingRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, names: list[str]) -> dict[str, dict[str, Any]]:
        stmt = select(rm).order_by(rm.c.name)
        if names:
            stmt = stmt.where(rm.c.name.in_(names))
        async with self.db.transaction() as conn:
            rows = (await conn.execute(stmt)).rows
        return {row["name"]: orjson.loads(row["doc"]) for row in rows}

    async def put(self, name: str, mapping: dict[str, Any]) -> bool:
        doc = jsontext.dumps(mapping).decode()
        return await _upsert(
            self.db,
            "role_mappings",
            select(rm.c.name).where(rm.c.name == name),
            insert(rm).values(name=name, doc=doc, seq_no=1),
            update(rm).where(rm.c.name == name).values(doc=doc, seq_no=rm.c.seq_no + 1),
        )

    async def delete(self, name: str) -> bool:
        async with self.db.transaction() as conn:
            res = await conn.execute(delete(rm).where(rm.c.name == name))
        return res.rowcount > 0

    async def delete_all(self) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(delete(rm))


class SqlIndexSettingsRepository:
    """One ``properties`` row per changed setting, named ``security_settings/<index>/<setting>``."""

    PREFIX = "security_settings/"

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get_all(self) -> dict[str, dict[str, str | None]]:
        stmt = select(props).where(props.c.name.startswith(self.PREFIX, autoescape=True))
        async with self.db.transaction() as conn:
            rows = (await conn.execute(stmt)).rows
        out: dict[str, dict[str, str | None]] = {}
        for row in rows:
            index, _, key = row["name"].removeprefix(self.PREFIX).partition("/")
            out.setdefault(index, {})[key] = orjson.loads(row["value"])
        return out

    async def put(self, changes: dict[str, dict[str, str | None]]) -> None:
        rows = [
            {"name": f"{self.PREFIX}{index}/{key}", "value": orjson.dumps(value).decode()}
            for index, settings in changes.items()
            for key, value in settings.items()
        ]
        if not rows:
            return
        async with self.db.transaction() as conn:
            await conn.execute(upsert(self.db, props, rows, ["name"]))

    async def delete_all(self) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(delete(props).where(props.c.name.startswith(self.PREFIX, autoescape=True)))
