"""Use cases of the security domain: users, roles and application privileges.

Services validate, hash, and call the repositories; they return plain values and raise the
errors of ``keyplane.errors``. The REST layer only translates requests and responses.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from keyplane.errors import InvalidArgument, NotFound, ValidationError
from keyplane.limits import id_messages
from keyplane.security import passwords
from keyplane.security import privileges as privilege_names
from keyplane.security import roles as role_mod
from keyplane.security import users as user_mod
from keyplane.security.authc import RoleSource
from keyplane.security.authz import Permission
from keyplane.security.backends.base import PrivilegeRepository, RoleRepository, StoredUser, UserRepository
from keyplane.security.roles import RoleDescriptor
from keyplane.security.users import User


class RoleService(RoleSource):
    def __init__(self, repo: RoleRepository) -> None:
        self.repo = repo
        self._permissions: dict[tuple[str, ...], tuple[Permission, list[str], list[str]]] = {}

    def invalidate(self) -> None:
        self._permissions.clear()

    async def resolve(self, names: list[str]) -> tuple[list[RoleDescriptor], list[str]]:
        """Descriptors for the names that exist, and the names that do not."""
        reserved = [role_mod.RESERVED_ROLES[n] for n in names if role_mod.is_reserved(n)]
        stored = await self.repo.get_many([n for n in names if not role_mod.is_reserved(n)])
        found = reserved + [stored[n] for n in names if n in stored]
        missing = [n for n in names if not role_mod.is_reserved(n) and n not in stored]
        return found, missing

    async def permission(self, names: list[str]) -> tuple[Permission, list[str], list[str]]:
        key = tuple(sorted(set(names)))
        cached = self._permissions.get(key)
        if cached is None:
            descriptors, missing = await self.resolve(list(key))
            cached = (Permission(descriptors), [d.name for d in descriptors], missing)
            if len(self._permissions) > 10_000:
                self._permissions.clear()
            self._permissions[key] = cached
        return cached

    async def get(self, names: list[str]) -> dict[str, RoleDescriptor]:
        """Named roles (reserved ones included); every role when ``names`` is empty."""
        if not names:
            stored = await self.repo.list()
            out = dict(role_mod.RESERVED_ROLES)
            out.update({r.name: r for r in stored})
            return out
        found, _ = await self.resolve(names)
        return {r.name: r for r in found}

    async def put(self, name: str, body: Any, authorize: Callable[[RoleDescriptor], None] | None = None) -> bool:
        """Store a role. ``authorize`` sees the validated descriptor before anything is written
        (Elasticsearch validates a request before it authorizes it, and checks role queries after)."""
        rd = role_mod.parse_and_validate(name, body, check_queries=False)
        if role_mod.is_reserved(name):
            raise ValidationError(f"Role [{name}] is reserved and may not be used.")
        if authorize is not None:
            authorize(rd)
        role_mod.validate_queries(rd)
        return await self.repo.put(rd)

    async def delete(self, name: str) -> bool:
        if role_mod.is_reserved(name):
            raise InvalidArgument(f"role [{name}] is reserved and cannot be deleted")
        return await self.repo.delete(name)

    async def list_stored(self) -> list[RoleDescriptor]:
        return await self.repo.list()


class UserService:
    def __init__(self, repo: UserRepository) -> None:
        self.repo = repo

    async def get(self, usernames: list[str]) -> list[User]:
        """Named users (all users when empty), built-in users included, in name order."""
        wanted = set(usernames)
        stored = await self.repo.list(sorted(wanted) if usernames else None)
        by_name = {s.user.username: self._shown(s) for s in stored}
        for name in user_mod.RESERVED_USERS:
            if (not usernames or name in wanted) and name not in by_name:
                by_name[name] = user_mod.reserved_user(name)
        return [by_name[n] for n in sorted(by_name)]

    async def native(self) -> list[User]:
        return [s.user for s in await self.repo.list() if not s.user.reserved]

    @staticmethod
    def _shown(stored: StoredUser) -> User:
        if stored.user.reserved:
            return user_mod.reserved_user(stored.user.username, stored.user.enabled)
        return stored.user

    async def _hash(self, password: str | None, password_hash: str | None) -> str | None:
        if password_hash is not None:
            passwords.check_hash(password_hash)
            return password_hash
        if password is not None:
            return await asyncio.to_thread(passwords.hash_password, password)
        return None

    async def put(
        self,
        user: User,
        password: str | None,
        password_hash: str | None,
    ) -> bool:
        messages = user_mod.username_messages(user.username)
        if user_mod.is_reserved(user.username):
            raise ValidationError(f"user [{user.username}] is reserved and only the password can be changed")
        if password is not None and password_hash is not None:
            messages.append("only one of [password, passwordHash] can be provided")
        if password is not None:
            messages += user_mod.password_messages(password)
        if any(k.startswith("_") for k in user.metadata):
            messages.append("metadata keys may not start with [_]")
        if messages:
            raise ValidationError(*messages)
        hashed = await self._hash(password, password_hash)
        if hashed is None and await self.repo.get(user.username) is None:
            raise ValidationError("password must be specified unless you are updating an existing user")
        return await self.repo.put(user, hashed)

    async def delete(self, username: str) -> bool:
        if user_mod.is_reserved(username):
            raise InvalidArgument(f"user [{username}] is reserved and cannot be deleted")
        return await self.repo.delete(username)

    async def set_enabled(self, username: str, enabled: bool, acting_user: str) -> None:
        if not enabled and username == acting_user:
            raise ValidationError("users may not update the enabled status of their own account")
        if user_mod.is_reserved(username):
            await self.repo.put_reserved(username, None, enabled)
            return
        if not await self.repo.set_enabled(username, enabled):
            raise NotFound(f"could not find user [{username}]")

    async def change_password(self, username: str, password: str | None, password_hash: str | None) -> None:
        messages = []
        if password is None and password_hash is None:
            messages.append("password must be specified")
        if password is not None:
            messages += user_mod.password_messages(password)
        if messages:
            raise ValidationError(*messages)
        hashed = await self._hash(password, password_hash)
        assert hashed is not None
        if user_mod.is_reserved(username):
            await self.repo.put_reserved(username, hashed)
            return
        if not await self.repo.set_password(username, hashed):
            raise NotFound(f"user [{username}] does not exist")

    async def bootstrap_elastic(self, password: str | None) -> bool:
        """Give ``elastic`` its password at start; report whether a password is now set."""
        stored = await self.repo.get("elastic")
        if password is not None:
            current = stored.password_hash if stored is not None else None
            if not await asyncio.to_thread(passwords.verify_password, password, current):
                await self.repo.put_reserved("elastic", await self._hash(password, None))
            return True
        return stored is not None and stored.password_hash is not None


_APP_NAME = re.compile(r"[a-z][A-Za-z0-9_-]{2,}")


class PrivilegeService:
    """Application privileges: named sets of actions that roles grant on an application's resources."""

    def __init__(self, repo: PrivilegeRepository) -> None:
        self.repo = repo

    async def get(self, application: str | None, names: list[str]) -> list[dict[str, Any]]:
        return await self.repo.get(application, names)

    async def put(self, body: Any) -> dict[str, dict[str, dict[str, bool]]]:
        if not isinstance(body, dict):
            raise InvalidArgument("expected an object of applications")
        parsed: list[dict[str, Any]] = []
        messages: list[str] = []
        for app, privs in body.items():
            if not isinstance(privs, dict):
                raise InvalidArgument(f"expected an object of privileges for application [{app}]")
            for name, spec in privs.items():
                if not isinstance(spec, dict):
                    raise InvalidArgument(f"expected an object for privilege [{app}:{name}]")
                for key in spec:
                    if key not in ("application", "name", "actions", "metadata"):
                        raise InvalidArgument(f"failed to parse application privileges. unexpected field [{key}]")
                if spec.get("application", app) != app:
                    raise InvalidArgument(
                        f"Application privilege [{app}] has application name [{spec['application']}] "
                        "which does not match"
                    )
                if spec.get("name", name) != name:
                    raise InvalidArgument(
                        f"Application privilege [{name}] has name [{spec['name']}] which does not match"
                    )
                actions = spec.get("actions")
                if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
                    messages.append(f"application privilege [{app}:{name}] must have at least one action")
                    actions = []
                for action in actions:
                    if "/" not in action and "*" not in action and ":" not in action:
                        messages.append(
                            f"action [{action}] must contain one of [/*:] in application privilege [{app}:{name}]"
                        )
                metadata = spec.get("metadata", {})
                if not isinstance(metadata, dict):
                    raise InvalidArgument("[metadata] must be an object")
                if any(k.startswith("_") for k in metadata):
                    messages.append("metadata keys may not start with [_]")
                if not _APP_NAME.fullmatch(app):
                    messages.append(
                        f"Application names must match the pattern ^[a-z][A-Za-z0-9_-]{{2,}}$ (found '{app}')"
                    )
                # Elasticsearch stores each privilege as a document of this id, under the id length limit.
                messages += id_messages(f"application-privilege_{app}:{name}")
                parsed.append({"application": app, "name": name, "actions": actions, "metadata": metadata})
        if messages:
            raise ValidationError(*messages)
        result: dict[str, dict[str, dict[str, bool]]] = {}
        for priv in parsed:
            created = await self.repo.put(priv)
            result.setdefault(priv["application"], {})[priv["name"]] = {"created": created}
        return result

    async def delete(self, application: str, names: list[str]) -> dict[str, dict[str, dict[str, bool]]]:
        out: dict[str, dict[str, bool]] = {}
        for name in names:
            out[name] = {"found": await self.repo.delete(application, name)}
        return {application: out}

    async def named_by(self, rd: RoleDescriptor) -> list[dict[str, Any]]:
        """The stored privilege definitions a role's application entries name (by application,
        exactly or by wildcard, and by privilege name), each once."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for entry in rd.applications:
            pattern = entry.application
            for priv in await self.repo.get(None if "*" in pattern else pattern, []):
                if privilege_names.glob_match(pattern, priv["application"]) and priv["name"] in entry.privileges:
                    out[(priv["application"], priv["name"])] = priv
        return list(out.values())

    async def resolver(self, applications: list[str]) -> ApplicationDefinitions:
        defs: dict[tuple[str, str], list[str]] = {}
        for app in set(applications):
            for priv in await self.repo.get(app, []):
                defs[(priv["application"], priv["name"])] = priv["actions"]
        return ApplicationDefinitions(defs)


class ApplicationDefinitions:
    def __init__(self, defs: dict[tuple[str, str], list[str]]) -> None:
        self.defs = defs

    def actions(self, application: str, privilege: str) -> list[str] | None:
        return self.defs.get((application, privilege))
