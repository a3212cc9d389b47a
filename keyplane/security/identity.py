"""Who the caller is: :class:`Authentication`, what every realm of the authentication chain produces.

The chain is ``keyplane.security.authentication``; the REST edge shows an :class:`Authentication` to
clients (``keyplane.api.authentication_view``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keyplane.security.permission import Permission, Subject
from keyplane.security.users import User


# Slots: many are built. Compared and hashed by identity (eq=False): realms hand out one per cached
# credential while nothing about it changes, and the audit trail keys its kept lines on that object.
# Never changed once handed out (a change is a new object, e.g. ``dataclasses.replace``).
@dataclass(slots=True, eq=False)
class Authentication:
    user: User  # the effective user (the run-as target when running as another)
    authenticating_user: User
    authentication_realm: dict[str, str]
    lookup_realm: dict[str, str]
    type: str  # realm | api_key | token
    roles: list[str]
    missing_roles: list[str]
    permission: Permission
    api_key: dict[str, Any] | None = None  # the key's id and name, when an API key proved the caller
    api_key_has_descriptors: bool = False  # the key was given role descriptors of its own
    token: dict[str, str] | None = None  # the service token's name and type, when one proved the caller
    # The user a run-as header named but this caller may not run as: every action is then refused.
    run_as_denied: str | None = None

    @property
    def is_run_as(self) -> bool:
        return self.user.username != self.authenticating_user.username

    def subject(self) -> Subject:
        if self.api_key is not None and not self.is_run_as:
            return Subject(self.user.username, [], [], api_key_id=self.api_key["id"])
        run_by = self.authenticating_user.username if self.is_run_as else None
        return Subject(self.user.username, self.roles, self.missing_roles, run_by=run_by)
