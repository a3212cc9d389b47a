"""``/_security/user`` and ``/_security/_authenticate``: thin translations to the user service."""

from __future__ import annotations

from typing import Any

from keyplane.api.common import add_profile_uids, page_window
from keyplane.errors import ParseError, ValidationError
from keyplane.http.request import Reply, RestRequest
from keyplane.http.routing import Router
from keyplane.json_kinds import token_kind
from keyplane.security.query import QueryCompiler, sort_docs
from keyplane.security.users import User

A = "cluster:admin/xpack/security/user/"
_USER_FIELDS = {"username", "password", "password_hash", "roles", "full_name", "email", "metadata", "enabled"}


def _typed(data: dict[str, Any], field: str, kind: type | tuple[type, ...], label: str) -> Any:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ParseError(f"expected field [{field}] to be of type {label}, but found [{token_kind(value)}] instead")
    return value


def _roles(data: dict[str, Any]) -> list[str] | None:
    value = data.get("roles")
    if value is None:
        return None
    if isinstance(value, str):
        return [r for r in value.split(",") if r]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ParseError("expected field [roles] to be of type string array")


async def put_user(request: RestRequest) -> dict[str, Any]:
    request.param("refresh")
    username = request.path_params["username"]
    data = request.json(required=True)
    if not isinstance(data, dict):
        raise ParseError("failed to parse add user request. expected an object")
    for field in data:
        if field not in _USER_FIELDS:
            raise ParseError(f"failed to parse add user request. unexpected field [{field}]")
    body_name = _typed(data, "username", str, "string")
    if body_name is not None and body_name != username:
        raise ParseError(
            f"failed to parse add user request. username doesn't match. expected [{username}] but got [{body_name}]"
        )
    roles = _roles(data)
    existing = await request.services.users.repo.get(username)
    if roles is None and existing is None:
        raise ValidationError("roles are missing")
    enabled = _typed(data, "enabled", bool, "boolean")
    user = User(
        username,
        roles=roles if roles is not None else [],
        full_name=_typed(data, "full_name", str, "string"),
        email=_typed(data, "email", str, "string"),
        metadata=_typed(data, "metadata", dict, "object") or {},
        enabled=True if enabled is None else enabled,
    )
    created = await request.services.users.put(
        user,
        _typed(data, "password", str, "string"),
        _typed(data, "password_hash", str, "string"),
    )
    return {"created": created}


def _realm_of(user: dict[str, Any]) -> str:
    return "reserved" if user.get("metadata", {}).get("_reserved") else "default_native"


async def get_users(request: RestRequest) -> Reply:
    names = request.path_list("username")
    users = await request.services.users.get(names)
    body = {u.username: u.to_dict() for u in users}
    if names and not body:
        return Reply({}, status=404)
    if request.flag("with_profile_uid"):
        await add_profile_uids(request.services, list(body.values()), _realm_of)
    return Reply(body)


async def delete_user(request: RestRequest) -> Reply:
    request.param("refresh")
    found = await request.services.users.delete(request.path_params["username"])
    return Reply({"found": found}, status=200 if found else 404)


async def enable_user(request: RestRequest) -> dict[str, Any]:
    await request.services.users.set_enabled(request.path_params["username"], True, request.auth.user.username)
    return {}


async def disable_user(request: RestRequest) -> dict[str, Any]:
    await request.services.users.set_enabled(request.path_params["username"], False, request.auth.user.username)
    return {}


async def change_password(request: RestRequest) -> dict[str, Any]:
    username = request.path_params.get("username") or request.auth.user.username
    data = request.json(required=True)
    if not isinstance(data, dict):
        raise ParseError("failed to parse change password request. expected an object")
    for field in data:
        if field not in ("password", "password_hash"):
            raise ParseError(f"failed to parse change password request. unexpected field [{field}]")
    await request.services.users.change_password(
        username, _typed(data, "password", str, "string"), _typed(data, "password_hash", str, "string")
    )
    return {}


_QUERYABLE_USER = {"username", "roles", "enabled", "full_name", "email"}


async def query_users(request: RestRequest) -> dict[str, Any]:
    body = request.body("query_user_request") or None
    data = body.data if body else {}
    if body:
        body.check_fields({"query", "from", "size", "sort", "search_after"})
    compiler = QueryCompiler(lambda f: f if f in _QUERYABLE_USER else None)
    pred = compiler.compile(data.get("query"))
    docs = [u.to_dict() for u in await request.services.users.native()]
    matched = [d for d in docs if pred(d)]
    matched, _ = sort_docs(matched, data.get("sort"), compiler.field, "username")
    start, size = page_window(body)
    page = matched[start : start + size]
    if request.flag("with_profile_uid"):
        await add_profile_uids(request.services, page, _realm_of)
    return {"total": len(matched), "count": len(page), "users": page}


async def authenticate(request: RestRequest) -> dict[str, Any]:
    return request.auth.to_dict()


def register(router: Router) -> None:
    router.add(("PUT", "POST"), "/_security/user/{username}", put_user, action=A + "put", params=("refresh",))
    router.add("GET", "/_security/user", get_users, action=A + "get", params=("with_profile_uid",))
    router.add("GET", "/_security/user/{username}", get_users, action=A + "get", params=("with_profile_uid",))
    router.add("DELETE", "/_security/user/{username}", delete_user, action=A + "delete", params=("refresh",))
    router.add(
        ("PUT", "POST"),
        "/_security/user/{username}/_enable",
        enable_user,
        action=A + "set_enabled",
        params=("refresh",),
    )
    router.add(
        ("PUT", "POST"),
        "/_security/user/{username}/_disable",
        disable_user,
        action=A + "set_enabled",
        params=("refresh",),
    )
    router.add(
        ("PUT", "POST"),
        "/_security/user/{username}/_password",
        change_password,
        action=A + "change_password",
        params=("refresh",),
    )
    router.add(
        ("PUT", "POST"), "/_security/user/_password", change_password, action=A + "change_password", params=("refresh",)
    )
    router.add(("GET", "POST"), "/_security/_query/user", query_users, action=A + "query", params=("with_profile_uid",))
    router.add("GET", "/_security/_authenticate", authenticate, action=A + "authenticate")
