"""Privileges: application privileges, built-in names, ``_has_privileges`` and ``_privileges``."""

from __future__ import annotations

from typing import Any

from keyplane.errors import Forbidden, InvalidArgument
from keyplane.http.request import Reply, RestRequest
from keyplane.http.routing import Router
from keyplane.security import privilege_check
from keyplane.security import privileges as privs
from keyplane.security.authz import denial_message
from keyplane.security.privilege_check import PrivilegeRequest
from keyplane.security.roles import REMOTE_CLUSTER_PRIVILEGES
from keyplane.security.user_privileges import user_privileges_body

A = "cluster:admin/xpack/security/privilege/"


def _authorize(request: RestRequest, action: str, applications: list[str]) -> None:
    """A cluster privilege, or a global ``application.manage`` privilege over these applications."""
    auth = request.auth
    if not auth.permission.grants_for_applications(action, applications):
        raise Forbidden(denial_message(action, auth.subject()))


async def put_privileges(request: RestRequest) -> dict[str, Any]:
    request.param("refresh")
    body = request.json(required=True)
    _authorize(request, A + "put", list(body) if isinstance(body, dict) else [])
    return await request.services.privileges.put(body)


async def get_privileges(request: RestRequest) -> Reply:
    application = request.path_params.get("application")
    names = request.path_list("name")
    _authorize(request, A + "get", [application] if application is not None else [])
    found = await request.services.privileges.get(application, names)
    body: dict[str, dict[str, Any]] = {}
    for priv in found:
        body.setdefault(priv["application"], {})[priv["name"]] = priv
    if application is not None and not body:
        return Reply({}, status=404)
    return Reply(body)


async def delete_privileges(request: RestRequest) -> Reply:
    request.param("refresh")
    application = request.path_params["application"]
    _authorize(request, A + "delete", [application])
    result = await request.services.privileges.delete(application, request.path_list("name"))
    found_any = any(v["found"] for v in result[application].values())
    return Reply(result, status=200 if found_any else 404)


async def builtin(request: RestRequest) -> dict[str, Any]:
    return {
        "cluster": sorted(privs.CLUSTER_PRIVILEGES),
        "index": sorted(privs.INDEX_PRIVILEGES),
        "remote_cluster": list(REMOTE_CLUSTER_PRIVILEGES),
    }


async def has_privileges(request: RestRequest) -> dict[str, Any]:
    auth = request.auth
    username = request.path_params.get("user")
    if username is not None and username != auth.user.username:
        raise InvalidArgument("users may only check the privileges of their own account")
    body = request.body("has_privileges_request")
    if body:
        body.check_fields({"cluster", "index", "application"})
    wanted = PrivilegeRequest.parse(body.data if body else {})
    defs = await request.services.privileges.resolver(wanted.applications)
    result = privilege_check.check(auth.permission, wanted, defs)
    return {"username": auth.user.username, **result}


async def user_privileges(request: RestRequest) -> dict[str, Any]:
    auth = request.auth
    if auth.api_key is not None and auth.extra.get("api_key_has_descriptors"):
        raise InvalidArgument(
            "Cannot retrieve privileges for API keys with assigned role descriptors. "
            "Please use the Get API key information API https://ela.st/es-api-get-api-key"
        )
    permission = auth.permission
    # An API key without role descriptors has its owner's privileges.
    descriptors = getattr(permission, "descriptors", None)
    if descriptors is None:
        descriptors = getattr(getattr(permission, "limited_by", None), "descriptors", [])
    return user_privileges_body(descriptors)


async def clear_privileges_cache(request: RestRequest) -> dict[str, Any]:
    return request.services.nodes_response()


async def clear_realm_cache(request: RestRequest) -> dict[str, Any]:
    request.services.passwords.forget_users()
    return request.services.nodes_response()


def register(router: Router) -> None:
    # Global application privileges look at the applications a request names: the handlers check.
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
