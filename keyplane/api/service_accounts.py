"""``/_security/service``: service accounts and their tokens."""

from __future__ import annotations

from typing import Any

from keyplane.api.common import nodes_answer
from keyplane.http.request import Reply, RestRequest
from keyplane.http.routing import Router

A = "cluster:admin/xpack/security/service_account/"


def _account(request: RestRequest) -> tuple[str, str]:
    return request.path_params["namespace"], request.path_params["service"]


async def get_accounts(request: RestRequest) -> dict[str, Any]:
    accounts = request.services.service_accounts.accounts(
        request.path_params.get("namespace"), request.path_params.get("service")
    )
    return {principal: {"role_descriptor": descriptor.to_dict()} for principal, descriptor in accounts.items()}


async def create_token(request: RestRequest) -> dict[str, Any]:
    request.param("refresh")
    token = await request.services.service_accounts.create(*_account(request), request.path_params.get("name"))
    return {"created": True, "token": {"name": token.name, "value": token.value}}


async def credentials(request: RestRequest) -> dict[str, Any]:
    principal, names = await request.services.service_accounts.credentials(*_account(request))
    # Each node reads its own service_tokens file, so it can vouch only for its own.
    file_names = request.services.service_accounts.file_credentials(*_account(request))
    nodes = nodes_answer(request)["_nodes"]
    node = request.services.settings.node_name
    return {
        "service_account": principal,
        "count": len(names) + len(file_names),
        "tokens": {name: {} for name in names},
        "nodes_credentials": {"_nodes": nodes, "file_tokens": {name: {"nodes": [node]} for name in file_names}},
    }


async def delete_token(request: RestRequest) -> Reply:
    request.param("refresh")
    found = await request.services.service_accounts.delete(*_account(request), request.path_params["name"])
    return Reply({"found": found}, status=200 if found else 404)


async def clear_cache(request: RestRequest) -> dict[str, Any]:
    request.services.service_accounts.clear_cache(*_account(request))
    return nodes_answer(request)


def register(router: Router) -> None:
    base = "/_security/service/{namespace}/{service}"
    router.add("GET", "/_security/service", get_accounts, action=A + "get")
    router.add("GET", "/_security/service/{namespace}", get_accounts, action=A + "get")
    router.add("GET", base, get_accounts, action=A + "get")
    router.add(
        ("PUT", "POST"), base + "/credential/token/{name}", create_token, action=A + "token/create", params=("refresh",)
    )
    router.add("POST", base + "/credential/token", create_token, action=A + "token/create", params=("refresh",))
    router.add("GET", base + "/credential", credentials, action=A + "credential/get")
    router.add(
        "DELETE", base + "/credential/token/{name}", delete_token, action=A + "token/delete", params=("refresh",)
    )
    router.add("POST", base + "/credential/token/{name}/_clear_cache", clear_cache, action=A + "token/cache/clear")
