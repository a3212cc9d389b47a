"""``POST /_keyplane/_reset``: exists only with KEYPLANE_TEST_MODE=1, for test harnesses."""

from __future__ import annotations

from typing import Any

from keyplane.http.request import RestRequest
from keyplane.http.routing import Router
from keyplane.security.authorization import require_superuser

ACTION = "cluster:admin/keyplane/reset"


async def reset(request: RestRequest) -> dict[str, Any]:
    require_superuser(request.auth, ACTION)
    await request.services.reset()
    return {"acknowledged": True}


def register(router: Router) -> None:
    router.add("POST", "/_keyplane/_reset", reset)
