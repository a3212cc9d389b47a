"""Use cases of roles: write one or many, read, query, delete; and the permissions roles compile to.

Role writes are authorized here rather than by the router: besides the cluster privileges, a
global ``role.manage`` privilege may allow writing some roles, which depends on the roles written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from keyplane.errors import Forbidden, KeyplaneError
from keyplane.security import implicit_privileges, query
from keyplane.security import roles as role_mod
from keyplane.security.backends.base import RoleRepository
from keyplane.security.file_roles import FileRoles
from keyplane.security.identity import Authentication
from keyplane.security.implicit_privileges import RoleWithImplicit
from keyplane.security.permission import Permission, denial_message
from keyplane.security.privilege_service import PrivilegeService
from keyplane.security.query import QueryPage, RecordQuery
from keyplane.security.roles import RoleDescriptor

ACTIONS = "cluster:admin/xpack/security/role/"
PUT, DELETE, BULK_PUT, BULK_DELETE = ACTIONS + "put", ACTIONS + "delete", ACTIONS + "bulk_put", ACTIONS + "bulk_delete"


@dataclass
class RoleWrites:
    """What a bulk put did per role: created, updated, or failed with the error it raised."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    errors: dict[str, KeyplaneError] = field(default_factory=dict)


@dataclass
class RoleDeletes:
    deleted: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    errors: dict[str, KeyplaneError] = field(default_factory=dict)


def _authorize(
    auth: Authentication, action: str, roles: Sequence[RoleDescriptor] = (), names: Sequence[str] = ()
) -> None:
    """``manage_security``-like cluster privileges, or a global ``role.manage`` privilege covering the roles."""
    if not auth.permission.may_manage_roles(action, roles, names):
        raise Forbidden(denial_message(action, auth.subject()))


class RoleService:
    def __init__(
        self, repo: RoleRepository, privileges: PrivilegeService | None = None, files: FileRoles | None = None
    ) -> None:
        self.repo = repo
        # The stored application privileges a role names, which implicit-privilege providers read.
        self.privileges = privileges
        # roles.yml: resolved for authorization, never shown or changed by the role APIs.
        self.files = files
        self._permissions: dict[tuple[str, ...], tuple[Permission, list[str], list[str]]] = {}

    def invalidate(self) -> None:
        self._permissions.clear()

    async def resolve(self, names: list[str]) -> tuple[list[RoleDescriptor], list[str]]:
        """What the names grant: descriptors for the names that exist, and the names that do not.

        As in Elasticsearch, built-in roles come first, then those of roles.yml, then stored ones:
        a stored role named like a file role is shadowed by it.
        """
        return await self._resolve(names, {} if self.files is None else self.files.roles)

    async def _resolve(
        self, names: list[str], from_file: dict[str, RoleDescriptor]
    ) -> tuple[list[RoleDescriptor], list[str]]:
        reserved = [role_mod.RESERVED_ROLES[n] for n in names if role_mod.is_reserved(n)]
        rest = [n for n in names if not role_mod.is_reserved(n)]
        stored = await self.repo.get_many([n for n in rest if n not in from_file])
        found = reserved + [from_file.get(n) or stored[n] for n in rest if n in from_file or n in stored]
        missing = [n for n in rest if n not in from_file and n not in stored]
        return found, missing

    def known_permission(self, names: list[str]) -> tuple[Permission, list[str], list[str]] | None:
        """What :meth:`permission` answers for ``names`` when it is kept already, else None: a caller
        on every request's path awaits no coroutine for it."""
        # Keys are sorted and unique, so names found as they are need no sorting (the usual case).
        return self._permissions.get(tuple(names))

    async def permission(self, names: list[str]) -> tuple[Permission, list[str], list[str]]:
        cached = self.known_permission(names)
        if cached is not None:
            return cached
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
        """Named roles (reserved ones included); every role when ``names`` is empty.

        The get role API's view: built-in and stored roles, never those of roles.yml (Elasticsearch's
        get roles API cannot retrieve file roles).
        """
        if not names:
            stored = await self.repo.list()
            out = dict(role_mod.RESERVED_ROLES)
            out.update({r.name: r for r in stored})
            return out
        found, _ = await self._resolve(names, {})
        return {r.name: r for r in found}

    async def shown(self, names: list[str], include_implicit: bool) -> dict[str, RoleWithImplicit]:
        """Named roles (all when empty) as the get role API shows them; ``include_implicit`` adds the
        index privileges that registered providers derive from the role's application privileges."""
        roles = await self.get(names)
        if not (include_implicit and implicit_privileges.PROVIDERS and self.privileges is not None):
            return {name: RoleWithImplicit(rd) for name, rd in roles.items()}
        return {
            name: implicit_privileges.role_with_implicit(rd, await self.privileges.named_by(rd))
            for name, rd in roles.items()
        }

    async def _store(self, name: str, body: Any, auth: Authentication | None) -> bool:
        # Elasticsearch validates a request before it authorizes it, and checks role queries after.
        rd = role_mod.parse_and_validate(name, body, check_queries=False)
        role_mod.check_writable(name)
        if auth is not None:
            _authorize(auth, PUT, roles=[rd])
        role_mod.validate_queries(rd)
        return await self.repo.put(rd)

    async def put(self, auth: Authentication, name: str, body: Any) -> bool:
        """Store a role the caller may write; whether it was created."""
        return await self._store(name, body, auth)

    async def bulk_put(self, auth: Authentication, roles: dict[str, Any]) -> RoleWrites:
        """Store many roles: the caller must be allowed to write every one that parses; then each
        succeeds or fails on its own."""
        _authorize(auth, BULK_PUT, roles=role_mod.parsable(roles))
        out = RoleWrites()
        for name, body in roles.items():
            try:
                (out.created if await self._store(name, body, None) else out.updated).append(name)
            except KeyplaneError as exc:
                out.errors[name] = exc
        return out

    async def _remove(self, name: str) -> bool:
        role_mod.check_deletable(name)
        return await self.repo.delete(name)

    async def delete(self, auth: Authentication, name: str) -> bool:
        _authorize(auth, DELETE, names=[name])
        return await self._remove(name)

    async def bulk_delete(self, auth: Authentication, names: list[str]) -> RoleDeletes:
        _authorize(auth, BULK_DELETE, names=names)
        out = RoleDeletes()
        for name in names:
            try:
                (out.deleted if await self._remove(name) else out.not_found).append(name)
            except KeyplaneError as exc:
                out.errors[name] = exc
        return out

    async def query(self, spec: RecordQuery) -> QueryPage:
        """``_query/role``: stored roles only, as Elasticsearch's query reads the security index."""
        predicate = query.matcher(query.ROLE_RULES, spec.query)
        docs = [role_mod.query_record(rd) for rd in await self.repo.list()]
        return query.page(docs, predicate, spec, query.ROLE_RULES, "name")

    async def delete_all(self) -> None:
        """Test mode's reset."""
        await self.repo.delete_all()
