"""What a security change changed, for Elasticsearch's ``security_config_change`` events.

Built at the edge from the route's action, its path parameters, the request body and the answer
(for ids the server chose). Each description copies named fields only (an allow-list): a password,
a password hash, an API key's secret or encoded value, a token's value or a connector secret's
value never reaches the audit log, whatever a request carries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

SECURITY = "cluster:admin/xpack/security/"
CONNECTOR_SECRET = "cluster:admin/xpack/connector/secret/"

# The fields of a role descriptor that describe it (its privileges); none of them holds a secret.
ROLE_FIELDS = (
    "cluster",
    "indices",
    "applications",
    "run_as",
    "global",
    "metadata",
    "remote_indices",
    "remote_cluster",
    "restriction",
    "description",
)


class Request(NamedTuple):
    """What a change is read from: the route and the request, and the answer it got."""

    method: str
    template: str
    path_params: Mapping[str, str]
    body: Any  # the parsed JSON body, or None
    answer: Any  # the handler's answer (a dict for the JSON APIs)


Change = tuple[str, dict[str, Any]]  # (event.action, the fields describing the change)
Describe = Callable[[Request], list[Change]]


# Keys that hold credentials wherever they appear: dropped at any depth of a copied value too (a
# role descriptor, metadata), so that a value nested under an allowed field cannot carry one in.
CREDENTIAL_KEYS = frozenset(
    {
        "password",
        "password_hash",
        "api_key",
        "encoded",
        "access_token",
        "refresh_token",
        "client_authentication",
        "secret",
        "value",
        "token",
        "credentials",
    }
)


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in CREDENTIAL_KEYS}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _pick(source: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The named fields of a JSON object (nothing when it is not one), credentials dropped from their values."""
    if not isinstance(source, dict):
        return {}
    return {name: _scrub(source[name]) for name in names if name in source}


def _obj(source: Any, name: str) -> Any:
    return source.get(name) if isinstance(source, dict) else None


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _put_user(r: Request) -> list[Change]:
    user = {"name": r.path_params.get("username"), **_pick(r.body, ("enabled", "roles", "full_name", "email"))}
    user.update(_pick(r.body, ("metadata",)))
    user["has_password"] = isinstance(r.body, dict) and ("password" in r.body or "password_hash" in r.body)
    return [("put_user", {"put": {"user": user}})]


def _change_password(r: Request) -> list[Change]:
    # Without a name in the path the caller changes their own: the trail's user.name says who.
    name = r.path_params.get("username")
    return [("change_password", {"change": {"password": {"user": {"name": name} if name else {}}}})]


def _delete_user(r: Request) -> list[Change]:
    return [("delete_user", {"delete": {"user": {"name": r.path_params.get("username")}}})]


def _set_enabled(r: Request) -> list[Change]:
    which = "enable" if r.template.endswith("_enable") else "disable"
    return [(f"change_{which}_user", {"change": {which: {"user": {"name": r.path_params.get("username")}}}})]


def _put_role(r: Request) -> list[Change]:
    name = r.path_params.get("name")
    return [("put_role", {"put": {"role": {"name": name, "role_descriptor": _pick(r.body, ROLE_FIELDS)}}})]


def _bulk_put_role(r: Request) -> list[Change]:
    roles = _obj(r.body, "roles")
    if not isinstance(roles, dict):
        return []
    return [
        ("put_role", {"put": {"role": {"name": name, "role_descriptor": _pick(descriptor, ROLE_FIELDS)}}})
        for name, descriptor in roles.items()
    ]


def _delete_role(r: Request) -> list[Change]:
    names = [r.path_params["name"]] if "name" in r.path_params else _list(_obj(r.body, "names"))
    return [("delete_role", {"delete": {"role": {"name": name}}}) for name in names]


def _put_role_mapping(r: Request) -> list[Change]:
    fields = _pick(r.body, ("roles", "role_templates", "rules", "enabled", "metadata"))
    return [("put_role_mapping", {"put": {"role_mapping": {"name": r.path_params.get("name"), **fields}}})]


def _delete_role_mapping(r: Request) -> list[Change]:
    return [("delete_role_mapping", {"delete": {"role_mapping": {"name": r.path_params.get("name")}}})]


def _key_fields(spec: Any) -> dict[str, Any]:
    return _pick(spec, ("name", "expiration", "role_descriptors", "metadata"))


def _created_key(r: Request, spec: Any, kind: str) -> dict[str, Any]:
    key: dict[str, Any] = {"id": _obj(r.answer, "id"), "type": kind, **_key_fields(spec)}
    if kind == "cross_cluster":
        key.update(_pick(spec, ("access", "certificate_identity")))
    return key


def _create_key(r: Request) -> list[Change]:
    return [("create_apikey", {"create": {"apikey": _created_key(r, r.body, "rest")}})]


def _create_cross_cluster_key(r: Request) -> list[Change]:
    return [("create_apikey", {"create": {"apikey": _created_key(r, r.body, "cross_cluster")}})]


def _grant_fields(body: Any) -> dict[str, Any]:
    """Whose credentials a grant carried: the user's name, and whether a password or token came with it."""
    grant: dict[str, Any] = {"type": _obj(body, "grant_type")}
    if isinstance(body, dict):
        if "username" in body:
            grant["user"] = {"name": body["username"], "has_password": "password" in body}
        if "access_token" in body:
            grant["has_access_token"] = True
        if "run_as" in body:
            grant["run_as"] = body["run_as"]
    return grant


def _grant_key(r: Request) -> list[Change]:
    key = _created_key(r, _obj(r.body, "api_key"), "rest")
    return [("create_apikey", {"create": {"apikey": key}, "grant": _grant_fields(r.body)})]


def _bulk_grant(r: Request) -> list[Change]:
    created = _list(_obj(r.answer, "created"))
    keys = [_pick(item, ("id", "name")) for item in created]
    return [("create_apikeys", {"create": {"apikeys": keys}, "grant": _grant_fields(r.body)})]


def _clone_key(r: Request) -> list[Change]:
    # The body's api_key is the source key's credential: never copied.
    key = {"id": _obj(r.answer, "id"), **_pick(r.body, ("name", "expiration", "metadata"))}
    return [("create_apikey", {"create": {"apikey": key, "clone": True}})]


def _update_key(r: Request) -> list[Change]:
    key = {"id": r.path_params.get("ids", r.path_params.get("id")), **_key_fields(r.body)}
    key.pop("name", None)
    key.update(_pick(r.body, ("access", "certificate_identity")))
    return [("change_apikey", {"change": {"apikey": key}})]


def _bulk_update(r: Request) -> list[Change]:
    keys = {"ids": _list(_obj(r.body, "ids")), **_pick(r.body, ("expiration", "role_descriptors", "metadata"))}
    return [("change_apikeys", {"change": {"apikeys": keys}})]


def _invalidate(r: Request) -> list[Change]:
    asked = _pick(r.body, ("ids", "name", "owner", "username", "realm_name"))
    if isinstance(r.body, dict) and "id" in r.body:
        asked["ids"] = [*_list(asked.get("ids")), r.body["id"]]
    asked["invalidated"] = _list(_obj(r.answer, "invalidated_api_keys"))
    return [("invalidate_apikeys", {"invalidate": {"apikeys": asked}})]


def _service_token(r: Request) -> dict[str, Any]:
    token = _obj(r.answer, "token")
    name = r.path_params.get("name") or _obj(token, "name")  # never the token's value
    return {"namespace": r.path_params.get("namespace"), "service": r.path_params.get("service"), "name": name}


def _create_service_token(r: Request) -> list[Change]:
    return [("create_service_token", {"create": {"service_token": _service_token(r)}})]


def _delete_service_token(r: Request) -> list[Change]:
    return [("delete_service_token", {"delete": {"service_token": _service_token(r)}})]


def _put_privileges(r: Request) -> list[Change]:
    if not isinstance(r.body, dict):
        return []
    privileges = [
        {"application": app, "name": name, **_pick(spec, ("actions", "metadata"))}
        for app, named in r.body.items()
        if isinstance(named, dict)
        for name, spec in named.items()
    ]
    return [("put_privileges", {"put": {"privileges": privileges}})]


def _delete_privileges(r: Request) -> list[Change]:
    names = r.path_params.get("name", "").split(",")
    return [
        (
            "delete_privileges",
            {"delete": {"privileges": {"application": r.path_params.get("application"), "privileges": names}}},
        )
    ]


def _activate_profile(r: Request) -> list[Change]:
    profile = {"uid": _obj(r.answer, "uid")}
    return [("activate_user_profile", {"put": {"profile": profile}, "grant": _grant_fields(r.body)})]


def _profile_data(r: Request) -> list[Change]:
    # Which keys changed, not their values: profile data is the applications' own.
    changed = {part: sorted(v) for part in ("labels", "data") if isinstance(v := _obj(r.body, part), dict)}
    return [("update_user_profile_data", {"put": {"profile": {"uid": r.path_params.get("uid"), **changed}}})]


def _profile_enabled(r: Request) -> list[Change]:
    which = "enable" if r.template.endswith("_enable") else "disable"
    return [(f"change_{which}_user_profile", {"change": {which: {"profile": {"uid": r.path_params.get("uid")}}}})]


def _secret_id(r: Request) -> dict[str, Any]:
    return {"connector_secret": {"id": r.path_params.get("id") or _obj(r.answer, "id")}}


def _post_secret(r: Request) -> list[Change]:
    return [("create_connector_secret", {"create": _secret_id(r)})]


def _put_secret(r: Request) -> list[Change]:
    return [("put_connector_secret", {"put": _secret_id(r)})]


def _delete_secret(r: Request) -> list[Change]:
    return [("delete_connector_secret", {"delete": _secret_id(r)})]


def _get_secret(r: Request) -> list[Change]:
    # A read, but of a credential: recorded with the changes so that excluding access_granted keeps it.
    return [("get_connector_secret", {"get": _secret_id(r)})]


# Route actions whose requests change security state (or read a connector secret), and how to describe them.
CHANGES: dict[str, Describe] = {
    SECURITY + "user/put": _put_user,
    SECURITY + "user/change_password": _change_password,
    SECURITY + "user/delete": _delete_user,
    SECURITY + "user/set_enabled": _set_enabled,
    SECURITY + "role/put": _put_role,
    SECURITY + "role/bulk_put": _bulk_put_role,
    SECURITY + "role/delete": _delete_role,
    SECURITY + "role/bulk_delete": _delete_role,
    SECURITY + "role_mapping/put": _put_role_mapping,
    SECURITY + "role_mapping/delete": _delete_role_mapping,
    SECURITY + "api_key/create": _create_key,
    SECURITY + "api_key/grant": _grant_key,
    SECURITY + "api_key/grant/bulk": _bulk_grant,
    SECURITY + "api_key/clone": _clone_key,
    SECURITY + "api_key/update": _update_key,
    SECURITY + "api_key/bulk_update": _bulk_update,
    SECURITY + "api_key/invalidate": _invalidate,
    SECURITY + "cross_cluster/api_key/create": _create_cross_cluster_key,
    SECURITY + "cross_cluster/api_key/update": _update_key,
    SECURITY + "service_account/token/create": _create_service_token,
    SECURITY + "service_account/token/delete": _delete_service_token,
    SECURITY + "privilege/put": _put_privileges,
    SECURITY + "privilege/delete": _delete_privileges,
    SECURITY + "profile/activate": _activate_profile,
    SECURITY + "profile/put/data": _profile_data,
    SECURITY + "profile/set_enabled": _profile_enabled,
    CONNECTOR_SECRET + "post": _post_secret,
    CONNECTOR_SECRET + "put": _put_secret,
    CONNECTOR_SECRET + "delete": _delete_secret,
    CONNECTOR_SECRET + "get": _get_secret,
}


def describe(action: str, request: Request) -> list[Change]:
    """The changes a request to a route of ``action`` made (empty for any other action)."""
    found = CHANGES.get(action)
    return found(request) if found is not None else []
