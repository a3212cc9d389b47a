"""``/_security/role``: roles one at a time, in bulk, and by query."""

from __future__ import annotations

from typing import Any

from keyplane.api.bulk import errors_body
from keyplane.api.common import nodes_answer, page_window, record_hits
from keyplane.http.request import Reply, RestRequest
from keyplane.http.routing import Router
from keyplane.security.implicit_privileges import RoleWithImplicit
from keyplane.security.query import RecordQuery
from keyplane.security.role_service import ACTIONS as A


def render_role(shown: RoleWithImplicit) -> dict[str, Any]:
    """A role of the get role answer: its display form, implicitly granted index entries last and marked."""
    out = shown.role.to_dict()
    if shown.implicit:
        out["indices"] = out["indices"] + [{**g.to_dict(), "implicitly_granted": True} for g in shown.implicit]
    return out


async def put_role(request: RestRequest) -> dict[str, Any]:
    request.param("refresh")
    created = await request.services.roles.put(request.auth, request.path_params["name"], request.json(required=True))
    return {"role": {"created": created}}


async def get_roles(request: RestRequest) -> Reply:
    names = request.path_list("name")
    shown = await request.services.roles.shown(names, request.flag("include_implicit"))
    body = {name: render_role(role) for name, role in shown.items()}
    if names and not body:
        return Reply({}, status=404)
    return Reply(body)


async def delete_role(request: RestRequest) -> Reply:
    request.param("refresh")
    found = await request.services.roles.delete(request.auth, request.path_params["name"])
    return Reply({"found": found}, status=200 if found else 404)


async def bulk_put(request: RestRequest) -> dict[str, Any]:
    body = request.body("bulk_put_roles_request", required=True)
    assert body is not None
    body.check_fields({"roles"})
    result = await request.services.roles.bulk_put(request.auth, body.obj("roles") or {})
    out: dict[str, Any] = {}
    if result.created:
        out["created"] = result.created
    if result.updated:
        out["updated"] = result.updated
    return {**out, **errors_body(result.errors)}


async def bulk_delete(request: RestRequest) -> dict[str, Any]:
    body = request.body("bulk_delete_roles_request", required=True)
    assert body is not None
    body.check_fields({"names"})
    result = await request.services.roles.bulk_delete(request.auth, body.strings("names") or [])
    out: dict[str, Any] = {}
    if result.deleted:
        out["deleted"] = result.deleted
    if result.not_found:
        out["not_found"] = result.not_found
    return {**out, **errors_body(result.errors)}


async def query_roles(request: RestRequest) -> dict[str, Any]:
    body = request.body("query_role_request")
    data = body.data if body else {}
    if body:
        body.check_fields({"query", "from", "size", "sort", "search_after"})
    result = await request.services.roles.query(
        RecordQuery(data.get("query"), data.get("sort"), lambda: page_window(body))
    )
    records = record_hits(result)
    return {"total": result.total, "count": len(records), "roles": records}


async def clear_cache(request: RestRequest) -> dict[str, Any]:
    request.services.roles.invalidate()
    return nodes_answer(request)


def register(router: Router) -> None:
    # Role writes may be granted by a global role.manage privilege over the roles written: the role service checks.
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
