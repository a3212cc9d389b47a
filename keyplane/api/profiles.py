"""``/_security/profile``: user profiles."""

from __future__ import annotations

from typing import Any

from keyplane.api.common import required_body
from keyplane.errors import InvalidArgument, ValidationError
from keyplane.http.request import RestRequest
from keyplane.http.routing import Router
from keyplane.profiles.service import UPDATE_DATA
from keyplane.security.privilege_check import PrivilegeRequest

A = "cluster:admin/xpack/security/profile/"


async def activate(request: RestRequest) -> dict[str, Any]:
    body = required_body(request, "activate_profile_request", {"grant_type", "username", "password", "access_token"})
    grant_type = body.string("grant_type")
    if grant_type not in ("password", "access_token"):
        message = f"grant_type [{grant_type}] is not supported" if grant_type else "[grant_type] is required"
        raise ValidationError(message)
    username, password, token = body.string("username"), body.string("password"), body.string("access_token")
    if grant_type == "password" and (username is None or password is None):
        raise ValidationError("[username] and [password] are required for grant_type [password]")
    if grant_type == "access_token" and token is None:
        raise ValidationError("[access_token] is required for grant_type [access_token]")
    owner = await request.services.guard.grant_credentials(
        grant_type, username, password, token, None, request.uri, failure="Failed to authenticate user profile grant"
    )
    return await request.services.profiles.activate(owner)


async def get(request: RestRequest) -> dict[str, Any]:
    return await request.services.profiles.get(request.path_list("uid"), request.list_param("data"))


async def enable(request: RestRequest) -> dict[str, Any]:
    request.param("refresh")
    await request.services.profiles.set_enabled(request.path_params["uid"], True)
    return {}


async def disable(request: RestRequest) -> dict[str, Any]:
    request.param("refresh")
    await request.services.profiles.set_enabled(request.path_params["uid"], False)
    return {}


async def update_data(request: RestRequest) -> dict[str, Any]:
    request.param("refresh")
    request.int_param("if_primary_term")
    body = required_body(request, "update_profile_data_request", {"labels", "data"})
    labels, data = body.obj("labels"), body.obj("data")
    if labels is None and data is None:
        raise ValidationError("update request is empty")
    for value in (labels, data):
        if value and any(k.startswith("_") for k in value):
            raise ValidationError("data keys cannot start with a [_]")
    await request.services.profiles.update_data(
        request.auth, request.path_params["uid"], labels, data, request.int_param("if_seq_no")
    )
    return {"acknowledged": True}


async def suggest(request: RestRequest) -> dict[str, Any]:
    body = request.body("suggest_profiles_request")
    data = body.data if body else {}
    if body:
        body.check_fields({"name", "size", "data", "hint"})
    size = body.integer("size") if body else None
    size = 10 if size is None else size
    if size < 0:
        raise InvalidArgument("[size] parameter cannot be negative but was [" + str(size) + "]")
    hint = data.get("hint") or {}
    if not isinstance(hint, dict):
        raise InvalidArgument("[hint] must be an object")
    body_keys = data.get("data") or []
    keys = request.list_param("data") or ([body_keys] if isinstance(body_keys, str) else body_keys)
    name = body.string("name") if body else None
    return await request.services.profiles.suggest(name or "", size, hint, list(keys))


async def has_privileges(request: RestRequest) -> dict[str, Any]:
    body = required_body(request, "profile_has_privileges_request", {"uids", "privileges"})
    uids = body.strings("uids") or []
    privileges = body.obj("privileges")
    if not uids or privileges is None:
        raise ValidationError("[uids] and [privileges] are required")
    return await request.services.profiles.has_privileges(uids, PrivilegeRequest.parse(privileges))


def register(router: Router) -> None:
    router.add("POST", "/_security/profile/_activate", activate, action=A + "activate")
    router.add("GET", "/_security/profile/{uid}", get, action=A + "get", params=("data",))
    router.add(
        ("PUT", "POST"), "/_security/profile/{uid}/_enable", enable, action=A + "set_enabled", params=("refresh",)
    )
    router.add(
        ("PUT", "POST"), "/_security/profile/{uid}/_disable", disable, action=A + "set_enabled", params=("refresh",)
    )
    router.add(
        ("PUT", "POST"),
        "/_security/profile/{uid}/_data",
        update_data,
        action=UPDATE_DATA,
        params=("if_seq_no", "if_primary_term", "refresh"),
        self_checked=True,  # the profile service checks it: global profile.write may allow some applications
    )
    router.add(("GET", "POST"), "/_security/profile/_suggest", suggest, action=A + "suggest", params=("data",))
    router.add(("GET", "POST"), "/_security/profile/_has_privileges", has_privileges, action=A + "has_privileges")
