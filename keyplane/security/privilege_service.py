"""Use cases of privileges: application privileges kept by the store, and what a caller holds.

Reads and writes of application privileges are authorized here: besides the cluster privileges,
a global ``application.manage`` privilege allows them for the applications it names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keyplane.errors import Forbidden, InvalidArgument
from keyplane.security import app_privileges, privilege_check
from keyplane.security import privileges as privilege_names
from keyplane.security.backends.base import PrivilegeRepository
from keyplane.security.identity import Authentication
from keyplane.security.permission import denial_message
from keyplane.security.privilege_check import PrivilegeCheck, PrivilegeRequest
from keyplane.security.roles import RoleDescriptor
from keyplane.security.user_privileges import UserPrivileges, user_privileges

ACTIONS = "cluster:admin/xpack/security/privilege/"
PUT, GET, DELETE = ACTIONS + "put", ACTIONS + "get", ACTIONS + "delete"


class ApplicationDefinitions:
    """The actions of stored application privileges, by (application, privilege name)."""

    def __init__(self, defs: dict[tuple[str, str], list[str]]) -> None:
        self.defs = defs

    def actions(self, application: str, privilege: str) -> list[str] | None:
        return self.defs.get((application, privilege))


def _authorize(auth: Authentication, action: str, applications: list[str]) -> None:
    """A cluster privilege, or a global ``application.manage`` privilege over these applications."""
    if not auth.permission.grants_for_applications(action, applications):
        raise Forbidden(denial_message(action, auth.subject()))


def check_own_account(auth: Authentication, username: str | None) -> None:
    """``_has_privileges`` names no user or the caller: nobody checks another user's privileges."""
    if username is not None and username != auth.user.username:
        raise InvalidArgument("users may only check the privileges of their own account")


def listed_descriptors(auth: Authentication) -> list[RoleDescriptor]:
    """The role descriptors ``GET _security/user/_privileges`` lists for the caller.

    An API key with role descriptors of its own is refused (its privileges are the intersection
    of two sets of roles, which this API cannot show); one without has its owner's privileges.
    """
    if auth.api_key is not None and auth.api_key_has_descriptors:
        raise InvalidArgument(
            "Cannot retrieve privileges for API keys with assigned role descriptors. "
            "Please use the Get API key information API https://ela.st/es-api-get-api-key"
        )
    permission = auth.permission
    descriptors = getattr(permission, "descriptors", None)
    if descriptors is None:
        descriptors = getattr(getattr(permission, "limited_by", None), "descriptors", [])
    return list(descriptors)


class PrivilegeService:
    def __init__(self, repo: PrivilegeRepository) -> None:
        self.repo = repo

    async def get(self, auth: Authentication, application: str | None, names: list[str]) -> list[dict[str, Any]]:
        """Stored application privileges, of one application (all when None), named (all when empty)."""
        _authorize(auth, GET, [application] if application is not None else [])
        return await self.repo.get(application, names)

    async def put(self, auth: Authentication, body: Any) -> list[tuple[str, str, bool]]:
        """Store the privileges of a put privileges body: (application, name, created) for each."""
        _authorize(auth, PUT, app_privileges.applications_named(body))
        out = []
        for privilege in app_privileges.parse_put(body):
            created = await self.repo.put(privilege)
            out.append((privilege["application"], privilege["name"], created))
        return out

    async def delete(self, auth: Authentication, application: str, names: list[str]) -> dict[str, bool]:
        """Delete named privileges of an application: whether each was found."""
        _authorize(auth, DELETE, [application])
        return {name: await self.repo.delete(application, name) for name in names}

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

    async def has_privileges(
        self, auth: Authentication, username: str | None, wanted: Callable[[], PrivilegeRequest]
    ) -> PrivilegeCheck:
        """Which of the privileges the caller asks about it holds. ``wanted`` reads the request's
        body, after the account check, the order in which the API has always reported its errors."""
        check_own_account(auth, username)
        request = wanted()
        defs = await self.resolver(request.applications)
        return privilege_check.check(auth.permission, request, defs)

    def user_privileges(self, auth: Authentication) -> UserPrivileges:
        """What the caller's roles grant, merged as ``GET _security/user/_privileges`` lists it."""
        return user_privileges(listed_descriptors(auth))

    async def delete_all(self) -> None:
        """Test mode's reset."""
        await self.repo.delete_all()
