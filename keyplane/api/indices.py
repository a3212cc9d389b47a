"""Index-level APIs on ``/{index}``. Keyplane holds no indices of its own yet, so every concrete name
is missing: Elasticsearch's 404 ``index_not_found_exception`` after the caller's index privileges
were checked, and wildcards that match nothing, as its default ``allow_no_indices`` allows."""

from __future__ import annotations

from typing import Any

from keyplane.http.errors import EsError
from keyplane.http.request import Reply, RestRequest
from keyplane.http.routing import Router
from keyplane.security import index_access

_COMMON = ("expand_wildcards", "ignore_unavailable", "allow_no_indices", "master_timeout", "timeout")


def _names(request: RestRequest) -> tuple[list[str], list[str]]:
    """The concrete names and the wildcard expressions of the ``{index}`` path part."""
    text = request.path_params["index"]
    names = [n for n in text.split(",") if n]
    wildcards = [n for n in names if "*" in n or n == "_all"]
    return [n for n in names if n not in wildcards], wildcards


def _missing(name: str) -> EsError:
    extra = {"resource.type": "index_or_alias", "resource.id": name, "index_uuid": "_na_", "index": name}
    return EsError(404, "index_not_found_exception", f"no such index [{name}]", extra=extra)


def _resolve(request: RestRequest, concrete: list[str], wildcards: list[str]) -> None:
    """Raise what Elasticsearch raises when the names resolve to no index (none exist here)."""
    if concrete and not request.flag("ignore_unavailable"):
        raise _missing(concrete[0])
    if wildcards and not request.flag("allow_no_indices", True):
        raise _missing(wildcards[0])


async def delete(request: RestRequest) -> dict[str, Any]:
    concrete, wildcards = _names(request)
    if wildcards:
        # action.destructive_requires_name is true by default since 8.0.
        raise EsError(400, "illegal_argument_exception", "Wildcard expressions or all indices are not allowed")
    index_access.authorize(request.auth, index_access.DELETE_INDEX, concrete)
    _resolve(request, concrete, wildcards)
    return {"acknowledged": True}


async def get(request: RestRequest) -> dict[str, Any]:
    concrete, wildcards = _names(request)
    index_access.authorize(request.auth, index_access.GET_INDEX, concrete)
    _resolve(request, concrete, wildcards)
    return {}


async def exists(request: RestRequest) -> Reply:
    concrete, _ = _names(request)
    index_access.authorize(request.auth, index_access.GET_INDEX, concrete)
    return Reply(None, status=404)  # no name resolves to an index


def register(router: Router) -> None:
    # Privileges are index privileges, checked per name by each handler.
    reads = (*_COMMON, "flat_settings", "include_defaults", "local")
    router.add("DELETE", "/{index}", delete, params=_COMMON, self_checked=True)
    router.add("GET", "/{index}", get, params=(*reads, "features"), self_checked=True)
    router.add("HEAD", "/{index}", exists, params=reads, self_checked=True)
