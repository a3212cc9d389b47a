"""``/_security/profile``: user profiles."""

from __future__ import annotations

from typing import Any

from keyplane.api.bulk import errors_body
from keyplane.api.common import required_body
from keyplane.errors import InvalidArgument, ValidationError
from keyplane.http.request import RestRequest
from keyplane.http.routing import Router
from keyplane.profiles import core as profile_rules
from keyplane.profiles.core import Profile
from keyplane.profiles.service import UPDATE_DATA
from keyplane.security.authentication import Grant
from keyplane.security.privilege_check import PrivilegeRequest

A = "cluster:admin/xpack/security/profile/"


def render_profile(profile: Profile) -> dict[str, Any]:
    """A profile as the get and activate APIs show it, with the version a conditional update names."""
    return {
        "uid": profile.uid,
        "enabled": profile.enabled,
        "last_synchronized": profile.last_synchronized,
        "user": profile.user,
        "labels": profile.labels,
        "data": profile.data,
        "_doc": {"_primary_term": 1, "_seq_no": profile.seq_no},
    }


def render_suggested(profile: Profile) -> dict[str, Any]:
    """A profile as suggest lists it: who it is and its application parts, without state or version."""
    return {"uid": profile.uid, "user": profile.user, "labels": profile.labels, "data": profile.data}


async def activate(request: RestRequest) -> dict[str, Any]:
    body = required_body(request, "activate_profile_request", {"grant_type", "username", "password", "access_token"})
    grant_type = body.string("grant_type")
    grant = Grant(grant_type)
    if grant_type in profile_rules.GRANT_TYPES:  # an unknown type is refused before its credentials are read
        grant = Grant(grant_type, body.string("username"), body.string("password"), body.string("access_token"))
    return render_profile(await request.services.profiles.activate(grant, request.uri))


async def get(request: RestRequest) -> dict[str, Any]:
    profiles, missing = await request.services.profiles.get(request.path_list("uid"), request.list_param("data"))
    return {"profiles": [render_profile(p) for p in profiles], **errors_body(missing)}


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
    # if_seq_no is read when the service asks: a wrong update is refused before a bad if_seq_no is.
    await request.services.profiles.update_data(
        request.auth, request.path_params["uid"], labels, data, lambda: request.int_param("if_seq_no")
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
    total, shown = await request.services.profiles.suggest(name or "", size, hint, list(keys))
    return {"total": {"value": total, "relation": "eq"}, "took": 0, "profiles": [render_suggested(p) for p in shown]}


async def has_privileges(request: RestRequest) -> dict[str, Any]:
    body = required_body(request, "profile_has_privileges_request", {"uids", "privileges"})
    uids = body.strings("uids") or []
    privileges = body.obj("privileges")
    if not uids or privileges is None:
        raise ValidationError("[uids] and [privileges] are required")
    holding, missing = await request.services.profiles.has_privileges(uids, PrivilegeRequest.parse(privileges))
    return {"has_privilege_uids": holding, **errors_body(missing)}


def register(router: Router) -> None:
    router.add("POST", "/_security/profile/_activate", activate, action=profile_rules.ACTIVATE)
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
