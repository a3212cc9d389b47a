"""``/_security/settings``: read and tune the replica settings of the security indices."""

from __future__ import annotations

from typing import Any

from keyplane.http.request import RestRequest
from keyplane.http.routing import Router
from keyplane.security import index_settings

A = "cluster:admin/xpack/security/settings/"


async def get(request: RestRequest) -> dict[str, Any]:
    request.param("master_timeout")
    flat = request.flag("flat_settings")
    found = await request.services.security_settings.get()
    return found if flat else {name: index_settings.nested(settings) for name, settings in found.items()}


async def update(request: RestRequest) -> dict[str, Any]:
    request.param("master_timeout")
    request.param("timeout")
    body = request.body("update_security_settings_request", required=True)
    assert body is not None
    body.check_fields(set(index_settings.INDICES))
    given = {name: body.obj(name) or {} for name in index_settings.INDICES if body.has(name)}
    await request.services.security_settings.update(given)
    return {"acknowledged": True}


def register(router: Router) -> None:
    router.add("GET", "/_security/settings", get, action=A + "get", params=("master_timeout", "flat_settings"))
    router.add("PUT", "/_security/settings", update, action=A + "update", params=("master_timeout", "timeout"))
