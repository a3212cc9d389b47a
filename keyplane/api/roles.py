"""``/_security/role``: roles one at a time, in bulk, and by query."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keyplane.api.common import page_window
from keyplane.errors import Forbidden, KeyplaneError
from keyplane.http.errors import from_domain
from keyplane.http.request import Reply, RestRequest
from keyplane.http.routing import Router
from keyplane.security import implicit_privileges
from keyplane.security import roles as role_mod
from keyplane.security.authz import denial_message
from keyplane.security.query import QueryCompiler, sort_docs
from keyplane.security.roles import RoleDescriptor

A = "cluster:admin/xpack/security/role/"


def _authorize(
    request: RestRequest, action: str, roles: Sequence[RoleDescriptor] = (), names: Sequence[str] = ()
) -> None:
    """``manage_security``-like cluster privileges, or a global ``role.manage`` privilege covering the roles."""
    auth = request.auth
    if not auth.permission.may_manage_roles(action, roles, names):
        raise Forbidden(denial_message(action, auth.subject()))


async def put_role(request: RestRequest) -> dict[str, Any]:
    request.param("refresh")
    action = A + "put"
    created = await request.services.roles.put(
        request.path_params["name"],
        request.json(required=True),
        authorize=lambda rd: _authorize(request, action, roles=[rd]),
    )
    return {"role": {"created": created}}


async def get_roles(request: RestRequest) -> Reply:
    names = request.path_list("name")
    include_implicit = request.flag("include_implicit")
    roles = await request.services.roles.get(names)
    if include_implicit and implicit_privileges.PROVIDERS:
        privileges = request.services.privileges
        body = {
            name: implicit_privileges.role_with_implicit(rd, await privileges.named_by(rd))
            for name, rd in roles.items()
        }
    else:
        body = {name: rd.to_dict() for name, rd in roles.items()}
    if names and not body:
        return Reply({}, status=404)
    return Reply(body)


async def delete_role(request: RestRequest) -> Reply:
    request.param("refresh")
    _authorize(request, A + "delete", names=[request.path_params["name"]])
    found = await request.services.roles.delete(request.path_params["name"])
    return Reply({"found": found}, status=200 if found else 404)


def _error_detail(exc: KeyplaneError) -> dict[str, str]:
    err = from_domain(exc)
    return {"type": err.type, "reason": err.reason}


def _parsed(roles: dict[str, Any]) -> list[RoleDescriptor]:
    """The roles of a bulk put that parse: what authorization looks at (the others fail on their own)."""
    out = []
    for name, descriptor in roles.items():
        try:
            out.append(role_mod.parse(name, descriptor, allow_restriction=False))
        except KeyplaneError:
            continue
    return out


async def bulk_put(request: RestRequest) -> dict[str, Any]:
    body = request.body("bulk_put_roles_request", required=True)
    assert body is not None
    body.check_fields({"roles"})
    roles = body.obj("roles") or {}
    _authorize(request, A + "bulk_put", roles=_parsed(roles))
    created: list[str] = []
    updated: list[str] = []
    errors: dict[str, Any] = {}
    for name, descriptor in roles.items():
        try:
            (created if await request.services.roles.put(name, descriptor) else updated).append(name)
        except KeyplaneError as exc:
            errors[name] = _error_detail(exc)
    out: dict[str, Any] = {}
    if created:
        out["created"] = created
    if updated:
        out["updated"] = updated
    if errors:
        out["errors"] = {"count": len(errors), "details": errors}
    return out


async def bulk_delete(request: RestRequest) -> dict[str, Any]:
    body = request.body("bulk_delete_roles_request", required=True)
    assert body is not None
    body.check_fields({"names"})
    deleted: list[str] = []
    not_found: list[str] = []
    errors: dict[str, Any] = {}
    names = body.strings("names") or []
    _authorize(request, A + "bulk_delete", names=names)
    for name in names:
        try:
            (deleted if await request.services.roles.delete(name) else not_found).append(name)
        except KeyplaneError as exc:
            errors[name] = _error_detail(exc)
    out: dict[str, Any] = {}
    if deleted:
        out["deleted"] = deleted
    if not_found:
        out["not_found"] = not_found
    if errors:
        out["errors"] = {"count": len(errors), "details": errors}
    return out


def _role_field(name: str) -> str | None:
    if name in (
        "name",
        "description",
        "applications.application",
        "applications.resources",
        "applications.privileges",
        "cluster",
        "run_as",
    ) or name.startswith("metadata."):
        return name
    return None


async def query_roles(request: RestRequest) -> dict[str, Any]:
    body = request.body("query_role_request")
    data = body.data if body else {}
    if body:
        body.check_fields({"query", "from", "size", "sort", "search_after"})
    compiler = QueryCompiler(_role_field)
    pred = compiler.compile(data.get("query"))
    docs = [{"name": rd.name, **rd.to_dict()} for rd in await request.services.roles.list_stored()]
    matched = [d for d in docs if pred(d)]
    matched, _ = sort_docs(matched, data.get("sort"), compiler.field, "name")
    start, size = page_window(body)
    page = matched[start : start + size]
    return {"total": len(matched), "count": len(page), "roles": page}


async def clear_cache(request: RestRequest) -> dict[str, Any]:
    request.services.roles.invalidate()
    return request.services.nodes_response()


def register(router: Router) -> None:
    # Role writes may be granted by a global role.manage privilege over the roles written: the handlers check.
    checked = {"self_checked": True}
    router.add(("PUT", "POST"), "/_security/role/{name}", put_role, action=A + "put", params=("refresh",), **checked)
    # include_implicit (9.5): index privileges implicitly granted by registered providers.
    router.add("GET", "/_security/role", get_roles, action=A + "get", params=("include_implicit",))
    router.add("GET", "/_security/role/{name}", get_roles, action=A + "get", params=("include_implicit",))
    router.add("DELETE", "/_security/role/{name}", delete_role, action=A + "delete", params=("refresh",), **checked)
    router.add("POST", "/_security/role", bulk_put, action=A + "bulk_put", params=("refresh",), **checked)
    router.add("DELETE", "/_security/role", bulk_delete, action=A + "bulk_delete", params=("refresh",), **checked)
    router.add(("GET", "POST"), "/_security/_query/role", query_roles, action=A + "query")
    router.add(
        "POST",
        "/_security/role/{name}/_clear_cache",
        clear_cache,
        action="cluster:admin/xpack/security/roles/cache/clear",
    )
