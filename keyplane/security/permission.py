"""Permissions compiled from role descriptors, and Elasticsearch's 403 message.

A :class:`Permission` answers three questions: may this cluster action run, is this named
privilege held (``has_privileges``), and may this user run as another. API keys intersect two
permissions (:class:`LimitedPermission`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from keyplane.security import global_privileges
from keyplane.security import privileges as privs
from keyplane.security.roles import IndicesPrivileges, RoleDescriptor


def _restricted(index: str) -> bool:
    """System indices a role reaches only with ``allow_restricted_indices``."""
    return index.startswith(".security")


def _may_reach_restricted(pattern: str) -> bool:
    """Whether a requested index pattern can name a restricted index (asked with ``allow_restricted_indices``)."""
    if pattern.startswith("/"):
        return True  # a regular expression: assume it can
    if "*" not in pattern:
        return _restricted(pattern)
    prefix = pattern.split("*", 1)[0]
    return ".security".startswith(prefix) or prefix.startswith(".security")


def _pattern_covers(pattern: str, wanted: str) -> bool:
    """Does an index name pattern (``*`` wildcards or ``/regex/``) cover the wanted name or pattern?

    A wanted pattern is covered when the held pattern matches its text with ``*`` read as a literal
    character, which is exact for the prefix and suffix patterns roles and requests use.
    """
    if pattern.startswith("/") and pattern.endswith("/") and len(pattern) > 1:
        import re

        try:
            return re.fullmatch(pattern[1:-1], wanted) is not None
        except re.error:
            return False
    return privs.glob_match(pattern, wanted)


class ApplicationActions(Protocol):
    def actions(self, application: str, privilege: str) -> list[str] | None: ...


def _universe() -> list[str]:
    """Representative actions: every action pattern of every named privilege, instantiated."""
    seen: set[str] = set()
    for p in privs.CLUSTER_PRIVILEGES.values():
        for pattern in p.actions + p.excluded:
            seen.add(pattern.replace("*", "x"))
    return sorted(seen)


_UNIVERSE = _universe()


def _sample_actions(name: str) -> list[str]:
    priv = privs.cluster_privilege(name)
    if priv is None:
        return []
    own = [a.replace("*", "x") for a in priv.actions]
    return [a for a in _UNIVERSE + own if priv.grants(a)]


_MAX_KEPT_ACTIONS = 1_024


class Permission:
    def __init__(self, descriptors: Iterable[RoleDescriptor]) -> None:
        self.descriptors = list(descriptors)
        self.cluster = [p for rd in self.descriptors for n in rd.cluster if (p := privs.cluster_privilege(n))]
        self.indices = [g for rd in self.descriptors for g in rd.indices]
        self.applications = [a for rd in self.descriptors for a in rd.applications]
        self.run_as_patterns = [n for rd in self.descriptors for n in rd.run_as]
        self.global_privileges = [rd.global_ for rd in self.descriptors if rd.global_]
        # Answers of grants_action by action: a permission is shared by every request of its role set
        # and never changes, and each request asks it once or twice (2-3 µs each, glob matching).
        self._granted: dict[str, bool] = {}

    def grants_action(self, action: str) -> bool:
        """Granted whatever the request is about."""
        granted = self._granted.get(action)
        if granted is None:
            granted = any(p.grants(action) for p in self.cluster if not p.owner_scoped)
            if len(self._granted) < _MAX_KEPT_ACTIONS:  # actions are the routes', but callers may name others
                self._granted[action] = granted
        return granted

    def grants_for_applications(self, action: str, applications: Iterable[str]) -> bool:
        """Granted outright, or by a global privilege over every application the request names.

        The application-privilege APIs and profile data updates are authorised this way.
        """
        if self.grants_action(action):
            return True
        names = list(applications)
        return any(global_privileges.grants_applications(g, action, names) for g in self.global_privileges)

    def may_manage_roles(self, action: str, roles: Iterable[RoleDescriptor] = (), names: Iterable[str] = ()) -> bool:
        """Role writes: granted outright, or by a global ``role.manage`` privilege over these roles.

        ``roles`` are the descriptors a put writes; ``names`` the roles a delete removes.
        """
        if self.grants_action(action):
            return True
        roles, names = list(roles), list(names)
        return any(_role_manage_allows(g, action, roles, names) for g in self.global_privileges)

    def grants_own(self, action: str) -> bool:
        """Granted when the request is about the caller's own resources."""
        return any(p.grants(action) for p in self.cluster)

    def has_cluster_privilege(self, name: str) -> bool:
        """True when every action of the named privilege (or action pattern) is granted."""
        samples = _sample_actions(name)
        priv = privs.cluster_privilege(name)
        check = self.grants_own if priv is not None and priv.owner_scoped else self.grants_action
        return bool(samples) and all(check(a) for a in samples)

    def has_index_privilege(self, index: str, privilege: str, allow_restricted: bool = False) -> bool:
        for group in self.indices:
            if not any(privs.index_privilege_covers(held, privilege) for held in group.privileges):
                continue
            # Without allow_restricted_indices a request is about the non-restricted part of its pattern
            # (a restricted name given in full still counts); with it, about all it names.
            reaches = _may_reach_restricted(index) if allow_restricted else _restricted(index)
            restricted_ok = group.allow_restricted_indices or not reaches
            if restricted_ok and any(_pattern_covers(p, index) for p in group.names):
                return True
        return False

    def has_application_privilege(
        self, application: str, resource: str, privilege: str, defs: ApplicationActions
    ) -> bool:
        wanted = defs.actions(application, privilege)
        if wanted is None:
            wanted = [privilege]  # an action name rather than a privilege name
        if not wanted:
            return False
        held: list[str] = []
        for app in self.applications:
            if not privs.glob_match(app.application, application):
                continue
            if not any(privs.glob_match(r, resource) for r in app.resources):
                continue
            for name in app.privileges:
                if name == privilege or name == "*":
                    held.append("*")
                    continue
                actions = defs.actions(application, name)
                held.extend(actions if actions is not None else [name])
        return all(any(privs.glob_match(h, w) for h in held) for w in wanted)

    def can_run_as(self, username: str) -> bool:
        return any(privs.glob_match(p, username) for p in self.run_as_patterns)


def _grants_only_indices(rd: RoleDescriptor) -> bool:
    return not (
        rd.cluster
        or rd.applications
        or rd.global_
        or rd.remote_indices
        or rd.remote_cluster
        or rd.run_as
        or (rd.restriction or {}).get("workflows")
    )


def _role_manage_allows(canonical: dict[str, Any], action: str, roles: list[RoleDescriptor], names: list[str]) -> bool:
    """Elasticsearch's ManageRolesPrivilege: roles that grant only index privileges inside the allowed
    patterns may be written; roles whose names fall inside them (read as index names needing
    ``delete_index``) may be deleted."""
    groups = global_privileges.role_index_groups(canonical)
    if not groups or action not in global_privileges.ROLE_ACTIONS:
        return False
    scope = Permission(
        [RoleDescriptor("manage_roles", indices=[IndicesPrivileges(g["names"], g["privileges"]) for g in groups])]
    )
    if action.endswith("delete"):
        return all(scope.has_index_privilege(n, "delete_index") for n in names)
    return all(
        _grants_only_indices(rd)
        and all(scope.has_index_privilege(n, p) for g in rd.indices for n in g.names for p in g.privileges)
        for rd in roles
    )


class LimitedPermission(Permission):
    """What both permissions allow: an API key's own roles within its owner's."""

    def __init__(self, assigned: Permission, limited_by: Permission) -> None:
        self.assigned = assigned
        self.limited_by = limited_by

    def grants_action(self, action: str) -> bool:
        return self.assigned.grants_action(action) and self.limited_by.grants_action(action)

    def grants_own(self, action: str) -> bool:
        return self.assigned.grants_own(action) and self.limited_by.grants_own(action)

    def may_manage_roles(self, action: str, roles: Iterable[RoleDescriptor] = (), names: Iterable[str] = ()) -> bool:
        roles, names = list(roles), list(names)
        return self.assigned.may_manage_roles(action, roles, names) and self.limited_by.may_manage_roles(
            action, roles, names
        )

    def grants_for_applications(self, action: str, applications: Iterable[str]) -> bool:
        names = list(applications)
        return self.assigned.grants_for_applications(action, names) and self.limited_by.grants_for_applications(
            action, names
        )

    def has_cluster_privilege(self, name: str) -> bool:
        return self.assigned.has_cluster_privilege(name) and self.limited_by.has_cluster_privilege(name)

    def has_index_privilege(self, index: str, privilege: str, allow_restricted: bool = False) -> bool:
        return self.assigned.has_index_privilege(
            index, privilege, allow_restricted
        ) and self.limited_by.has_index_privilege(index, privilege, allow_restricted)

    def has_application_privilege(self, application: str, resource: str, privilege: str, defs: Any) -> bool:
        return self.assigned.has_application_privilege(
            application, resource, privilege, defs
        ) and self.limited_by.has_application_privilege(application, resource, privilege, defs)

    def can_run_as(self, username: str) -> bool:
        return self.assigned.can_run_as(username) and self.limited_by.can_run_as(username)


@dataclass
class Subject:
    """Who is asking, in the words of a 403 message."""

    principal: str
    roles: list[str]
    missing_roles: list[str]
    run_by: str | None = None  # the authenticating user when running as another
    api_key_id: str | None = None

    def describe(self) -> str:
        if self.api_key_id is not None:
            return f"API key id [{self.api_key_id}] of user [{self.principal}]"
        who = f"user [{self.run_by}] run as [{self.principal}]" if self.run_by else f"user [{self.principal}]"
        text = f"{who} with effective roles [{','.join(sorted(self.roles))}]"
        if self.missing_roles:
            text += f" (assigned roles [{','.join(sorted(self.missing_roles))}] were not found)"
        return text


def denial_message(action: str, subject: Subject, granting: list[str] | None = None) -> str:
    granting = privs.privileges_granting(action) if granting is None else granting
    text = f"action [{action}] is unauthorized for {subject.describe()}"
    if granting:
        text += f", this action is granted by the cluster privileges [{','.join(granting)}]"
    return text
