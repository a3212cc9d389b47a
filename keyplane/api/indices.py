"""Index-level APIs on ``/{index}``: create, exists, get, delete, refresh.

Concrete names are authorized before they are looked up (an unauthorized name is a 403 whether or
not it exists, as in Elasticsearch); wildcards expand over the indices the caller may see.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from keyplane.api.index_view import expand, expressions, renders_index_errors
from keyplane.errors import ParseError
from keyplane.http.request import Reply, RestRequest
from keyplane.http.routing import Router
from keyplane.indices import core
from keyplane.indices.core import IndexMeta
from keyplane.security import index_access

_COMMON = ("expand_wildcards", "ignore_unavailable", "allow_no_indices", "master_timeout", "timeout")
_CREATE_FIELDS = ("settings", "mappings", "aliases")


def _concrete(names: list[str]) -> list[str]:
    return [n for n in names if "*" not in n and n != "_all"]


async def _resolve(
    request: RestRequest, action: str, *, allow_no_indices: bool = True, aliases: bool = True
) -> list[IndexMeta]:
    names = expressions(request)
    index_access.authorize(request.auth, action, _concrete(names))
    options = replace(expand(request, allow_no_indices=allow_no_indices), aliases=aliases)
    return await request.services.indices.resolve(
        names, options, lambda name: index_access.allowed(request.auth, action, name)
    )


@renders_index_errors
async def create(request: RestRequest) -> dict[str, Any]:
    name = request.path_params["index"]
    index_access.authorize(request.auth, index_access.CREATE_INDEX, [name])
    body = request.json() or {}
    if not isinstance(body, dict):
        raise ParseError("Failed to parse content to map")
    for key, value in body.items():
        if key not in _CREATE_FIELDS:
            raise ParseError(f"unknown key [{key}] for create index")
        if not isinstance(value, dict):
            raise ParseError(f"key [{key}] must be an object")
    # Settings Elasticsearch 9 refuses (soft deletes off); the service checks the name and mappings.
    core.check_settings(core.flat_settings(body.get("settings") or {}))
    meta = await request.services.indices.create(name, body.get("settings"), body.get("mappings"), body.get("aliases"))
    return {"acknowledged": True, "shards_acknowledged": True, "index": meta.name}


@renders_index_errors
async def delete(request: RestRequest) -> dict[str, Any]:
    core.check_destructive(expressions(request), request.services.settings.destructive_requires_name)
    # A delete names concrete indices: an alias is refused, and wildcards do not expand over aliases.
    found = await _resolve(request, index_access.DELETE_INDEX, aliases=False)
    await request.services.indices.delete(found)
    return {"acknowledged": True}


def _view(meta: IndexMeta, flat: bool) -> dict[str, Any]:
    settings = meta.all_settings()
    return {
        "aliases": meta.aliases,
        "mappings": meta.mappings,
        "settings": settings if flat else core.nested_settings(settings),
    }


@renders_index_errors
async def get(request: RestRequest) -> dict[str, Any]:
    found = await _resolve(request, index_access.GET_INDEX)
    flat = request.flag("flat_settings")
    return {meta.name: _view(meta, flat) for meta in found}


@renders_index_errors
async def exists(request: RestRequest) -> Reply:
    try:
        found = await _resolve(request, index_access.GET_INDEX, allow_no_indices=False)
    except core.IndexMissing:
        return Reply(None, status=404)
    return Reply(None, status=200 if found else 404)


@renders_index_errors
async def refresh(request: RestRequest) -> dict[str, Any]:
    found = await _resolve(request, index_access.REFRESH)
    await request.services.indices.refresh(found)
    # The answer counts the shard copies a refresh reaches: each primary (replicas are never assigned
    # on one node).
    total = sum(meta.shards * (1 + meta.replicas) for meta in found)
    return {"_shards": {"total": total, "successful": sum(meta.shards for meta in found), "failed": 0}}


def register(router: Router) -> None:
    # Privileges are index privileges, checked per name by each handler.
    reads = (*_COMMON, "flat_settings", "include_defaults", "local")
    create_params = ("master_timeout", "timeout", "wait_for_active_shards")
    router.add("PUT", "/{index}", create, params=create_params, self_checked=True)
    router.add("DELETE", "/{index}", delete, params=_COMMON, self_checked=True)
    router.add("GET", "/{index}", get, params=(*reads, "features"), self_checked=True)
    router.add("HEAD", "/{index}", exists, params=reads, self_checked=True)
    refresh_params = ("expand_wildcards", "ignore_unavailable", "allow_no_indices")
    router.add(("GET", "POST"), "/{index}/_refresh", refresh, params=refresh_params, self_checked=True)
    router.add(("GET", "POST"), "/_refresh", refresh, params=refresh_params, self_checked=True)
