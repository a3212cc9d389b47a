"""Privileges: application privileges, built-in names, ``_has_privileges`` and ``_privileges``."""

from __future__ import annotations

from typing import Any

from keyplane.api.common import nodes_answer
from keyplane.http.request import Reply, RestRequest
from keyplane.http.routing import Router
from keyplane.security import privileges as privs
from keyplane.security.privilege_check import PrivilegeCheck, PrivilegeRequest
from keyplane.security.privilege_service import ACTIONS as A
from keyplane.security.roles import REMOTE_CLUSTER_PRIVILEGES
from keyplane.security.user_privileges import MergedIndices, UserPrivileges


def render_has_privileges(username: str, result: PrivilegeCheck) -> dict[str, Any]:
    """The ``_has_privileges`` answer for the caller."""
    return {
        "username": username,
        "has_all_requested": result.has_all_requested,
        "cluster": result.cluster,
        "index": result.index,
        "application": result.application,
    }


def _render_indices(entry: MergedIndices) -> dict[str, Any]:
    shown: dict[str, Any] = {"names": entry.names, "privileges": entry.privileges}
    # Field and document rules come as arrays here: one per merged group that had one.
    if entry.field_security:
        shown["field_security"] = entry.field_security
    if entry.query:
        shown["query"] = entry.query
    shown["allow_restricted_indices"] = entry.allow_restricted_indices
    if entry.clusters is not None:
        shown["clusters"] = entry.clusters
    return shown


def render_user_privileges(listed: UserPrivileges) -> dict[str, Any]:
    """The body of ``GET /_security/user/_privileges``; the remote parts only when granted."""
    body: dict[str, Any] = {
        "cluster": listed.cluster,
        "global": [{category: privilege} for category, privilege in listed.global_],
        "indices": [_render_indices(entry) for entry in listed.indices],
        "applications": [a.to_dict() for a in listed.applications],
        "run_as": listed.run_as,
    }
    if listed.remote_indices:
        body["remote_indices"] = [_render_indices(entry) for entry in listed.remote_indices]
    if listed.remote_cluster:
        body["remote_cluster"] = [g.to_dict() for g in listed.remote_cluster]
    return body


async def put_privileges(request: RestRequest) -> dict[str, Any]:
    request.param("refresh")
    stored = await request.services.privileges.put(request.auth, request.json(required=True))
    out: dict[str, dict[str, Any]] = {}
    for application, name, created in stored:
        out.setdefault(application, {})[name] = {"created": created}
    return out


async def get_privileges(request: RestRequest) -> Reply:
    application = request.path_params.get("application")
    found = await request.services.privileges.get(request.auth, application, request.path_list("name"))
    body: dict[str, dict[str, Any]] = {}
    for priv in found:
        body.setdefault(priv["application"], {})[priv["name"]] = priv
    if application is not None and not body:
        return Reply({}, status=404)
    return Reply(body)


async def delete_privileges(request: RestRequest) -> Reply:
    request.param("refresh")
    application = request.path_params["application"]
    found = await request.services.privileges.delete(request.auth, application, request.path_list("name"))
    body = {application: {name: {"found": was} for name, was in found.items()}}
    return Reply(body, status=200 if any(found.values()) else 404)


async def builtin(request: RestRequest) -> dict[str, Any]:
    return {
        "cluster": sorted(privs.CLUSTER_PRIVILEGES),
        "index": sorted(privs.INDEX_PRIVILEGES),
        "remote_cluster": list(REMOTE_CLUSTER_PRIVILEGES),
    }


async def has_privileges(request: RestRequest) -> dict[str, Any]:
    def wanted() -> PrivilegeRequest:
        body = request.body("has_privileges_request")
        if body:
            body.check_fields({"cluster", "index", "application"})
        return PrivilegeRequest.parse(body.data if body else {})

    auth = request.auth
    result = await request.services.privileges.has_privileges(auth, request.path_params.get("user"), wanted)
    return render_has_privileges(auth.user.username, result)


async def user_privileges(request: RestRequest) -> dict[str, Any]:
    return render_user_privileges(request.services.privileges.user_privileges(request.auth))


async def clear_privileges_cache(request: RestRequest) -> dict[str, Any]:
    return nodes_answer(request)


async def clear_realm_cache(request: RestRequest) -> dict[str, Any]:
    request.services.passwords.forget_users()
    return nodes_answer(request)


def register(router: Router) -> None:
    # Global application privileges look at the applications a request names: the privilege service checks.
    router.add(
        ("PUT", "POST"),
        "/_security/privilege",
        put_privileges,
        action=A + "put",
        params=("refresh",),
        self_checked=True,
    )
    router.add("GET", "/_security/privilege", get_privileges, action=A + "get", self_checked=True)
    router.add("GET", "/_security/privilege/{application}", get_privileges, action=A + "get", self_checked=True)
    router.add("GET", "/_security/privilege/{application}/{name}", get_privileges, action=A + "get", self_checked=True)
    router.add(
        "DELETE",
        "/_security/privilege/{application}/{name}",
        delete_privileges,
        action=A + "delete",
        params=("refresh",),
        self_checked=True,
    )
    router.add("GET", "/_security/privilege/_builtin", builtin, action=A + "builtin/get")
    router.add(
        "POST", "/_security/privilege/{application}/_clear_cache", clear_privileges_cache, action=A + "cache/clear"
    )
    router.add(
        "POST",
        "/_security/realm/{realms}/_clear_cache",
        clear_realm_cache,
        action="cluster:admin/xpack/security/realm/cache/clear",
        params=("usernames",),
    )
    hp = "cluster:admin/xpack/security/user/has_privileges"
    router.add(("GET", "POST"), "/_security/user/_has_privileges", has_privileges, action=hp)
    router.add(("GET", "POST"), "/_security/user/{user}/_has_privileges", has_privileges, action=hp)
    router.add(
        "GET",
        "/_security/user/_privileges",
        user_privileges,
        action="cluster:admin/xpack/security/user/list_privileges",
    )
