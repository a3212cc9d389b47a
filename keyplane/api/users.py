"""``/_security/user`` and ``/_security/_authenticate``: thin translations to the user service."""

from __future__ import annotations

from typing import Any

from keyplane.api.authentication_view import render_authentication
from keyplane.api.common import page_window, record_hits, with_profile_uid
from keyplane.http.request import Reply, RestRequest
from keyplane.http.routing import Router
from keyplane.security.query import RecordQuery
from keyplane.security.users import realm_of

A = "cluster:admin/xpack/security/user/"


async def put_user(request: RestRequest) -> dict[str, Any]:
    request.param("refresh")
    created = await request.services.users.put(request.path_params["username"], request.json(required=True))
    return {"created": created}


async def get_users(request: RestRequest) -> Reply:
    names = request.path_list("username")
    users, uids = await request.services.users.get(names, with_profile_uid=request.flag("with_profile_uid"))
    body = {u.username: u.to_dict() for u in users}
    if names and not body:
        return Reply({}, status=404)
    return Reply({name: with_profile_uid(shown, uids, realm_of(shown)) for name, shown in body.items()})


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
    await request.services.users.change_password(username, request.json(required=True))
    return {}


async def query_users(request: RestRequest) -> dict[str, Any]:
    body = request.body("query_user_request") or None
    data = body.data if body else {}
    if body:
        body.check_fields({"query", "from", "size", "sort", "search_after"})
    spec = RecordQuery(data.get("query"), data.get("sort"), lambda: page_window(body))
    result = await request.services.users.query(spec, with_profile_uid=request.flag("with_profile_uid"))
    records = [with_profile_uid(record, result.profile_uids, realm_of(record)) for record in record_hits(result)]
    return {"total": result.total, "count": len(records), "users": records}


async def authenticate(request: RestRequest) -> dict[str, Any]:
    return render_authentication(request.auth)


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
    router.add("GET", "/_security/_authenticate", authenticate, action=A + "authenticate", by_caller=True)
