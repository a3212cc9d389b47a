"""``POST /_keyplane/_reset``: exists only with KEYPLANE_TEST_MODE=1, for test harnesses."""

from __future__ import annotations

from typing import Any

from keyplane.errors import Forbidden
from keyplane.http.request import RestRequest
from keyplane.http.routing import Router

ACTION = "cluster:admin/keyplane/reset"


async def reset(request: RestRequest) -> dict[str, Any]:
    # Superusers only: the cluster privilege "all", held by a user rather than an API key.
    auth = request.auth
    if auth.api_key is not None or not auth.permission.has_cluster_privilege("all"):
        raise Forbidden(f"action [{ACTION}] is unauthorized for {auth.subject().describe()}")
    await request.services.reset()
    return {"acknowledged": True}


def register(router: Router) -> None:
    router.add("POST", "/_keyplane/_reset", reset)
