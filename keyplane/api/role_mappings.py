"""``/_security/role_mapping``: create, get and delete role mappings."""

from __future__ import annotations

from typing import Any

from keyplane.http.request import Reply, RestRequest
from keyplane.http.routing import Router

A = "cluster:admin/xpack/security/role_mapping/"


async def put(request: RestRequest) -> dict[str, Any]:
    request.param("refresh")
    created = await request.services.role_mappings.put(request.path_params["name"], request.json(required=True))
    return {"role_mapping": {"created": created}}


async def get(request: RestRequest) -> Reply:
    names = request.path_list("name")
    found = await request.services.role_mappings.get(names)
    if names and not found:
        return Reply({}, status=404)
    return Reply(found)


async def delete(request: RestRequest) -> Reply:
    request.param("refresh")
    found = await request.services.role_mappings.delete(request.path_params["name"])
    return Reply({"found": found}, status=200 if found else 404)


def register(router: Router) -> None:
    router.add(("PUT", "POST"), "/_security/role_mapping/{name}", put, action=A + "put", params=("refresh",))
    router.add("GET", "/_security/role_mapping", get, action=A + "get")
    router.add("GET", "/_security/role_mapping/{name}", get, action=A + "get")
    router.add("DELETE", "/_security/role_mapping/{name}", delete, action=A + "delete", params=("refresh",))
