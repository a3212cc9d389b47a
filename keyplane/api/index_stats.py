"""Index metadata APIs: ``_mapping`` (get and put), ``_stats`` and ``_cat/indices``.

Like the other index APIs, concrete names are authorized before they are looked up and wildcards expand
over the indices the caller may see with the action's privilege.
"""

from __future__ import annotations

from typing import Any

from keyplane.api.index_view import expand, expressions, renders_index_errors
from keyplane.errors import ParseError
from keyplane.http.request import Reply, RestRequest
from keyplane.http.routing import Router
from keyplane.indices import stats
from keyplane.indices.core import IndexMeta
from keyplane.security import index_access

_OPTIONS = ("expand_wildcards", "ignore_unavailable", "allow_no_indices")


async def _resolve(request: RestRequest, *actions: str) -> list[IndexMeta]:
    names = expressions(request)
    concrete = [n for n in names if "*" not in n and n != "_all"]
    for action in actions:
        index_access.authorize(request.auth, action, concrete)
    return await request.services.indices.resolve(
        names,
        expand(request),
        lambda name: all(index_access.allowed(request.auth, action, name) for action in actions),
    )


def _sections(docs: int, size: int, wanted: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "docs" in wanted:
        out["docs"] = {"count": docs, "deleted": 0, "total_size_in_bytes": size}
    if "store" in wanted:
        out["store"] = {"size_in_bytes": size, "total_data_set_size_in_bytes": size, "reserved_in_bytes": 0}
    return out


def _stats_body(found: list[stats.IndexStats], wanted: tuple[str, ...]) -> dict[str, Any]:
    """The body of ``GET /{index}/_stats``."""
    docs = sum(s.docs for s in found)
    size = sum(s.size_bytes for s in found)
    totals = _sections(docs, size, wanted)
    return {
        "_shards": {
            "total": sum(s.shards_total for s in found),
            "successful": sum(s.meta.shards for s in found),
            "failed": 0,
        },
        "_all": {"primaries": totals, "total": totals},
        "indices": {
            s.meta.name: {
                "uuid": s.meta.uuid,
                "health": s.health,
                "status": "open",
                "primaries": _sections(s.docs, s.size_bytes, wanted),
                "total": _sections(s.docs, s.size_bytes, wanted),
            }
            for s in sorted(found, key=lambda s: s.meta.name)
        },
    }


@renders_index_errors
async def get_mapping(request: RestRequest) -> dict[str, Any]:
    found = await _resolve(request, index_access.GET_MAPPINGS)
    return {meta.name: {"mappings": meta.mappings} for meta in sorted(found, key=lambda m: m.name)}


@renders_index_errors
async def put_mapping(request: RestRequest) -> dict[str, Any]:
    body = request.json(required=True)
    if not isinstance(body, dict):
        raise ParseError("Failed to parse content to map")
    found = await _resolve(request, index_access.PUT_MAPPING)
    await request.services.indices.put_mapping(found, body)
    return {"acknowledged": True}


@renders_index_errors
async def index_stats(request: RestRequest) -> dict[str, Any]:
    wanted = stats.metrics(request.path_list("metric"), request.path)
    found = await _resolve(request, index_access.STATS)
    return _stats_body(await request.services.indices.stats(found), wanted)


@renders_index_errors
async def cat_indices(request: RestRequest) -> Any:
    health = request.param("health")
    stats.check_health(health)
    cols = stats.columns(request.list_param("h"))
    unit = request.param("bytes")
    found = await _resolve(request, index_access.GET_SETTINGS, index_access.STATS)
    measured = await request.services.indices.stats(found)
    rows = [stats.row(s, unit) for s in measured if health is None or s.health == health.lower()]
    rows = stats.sort_rows(rows, request.list_param("s"))
    if request.param("format") not in (None, "txt", "text"):
        return [{c: r[c] for c in cols} for r in rows]
    text = stats.table(rows, cols, request.flag("v")) if rows else ""
    return Reply(text.encode(), headers={"content-type": "text/plain; charset=UTF-8"})


def register(router: Router) -> None:
    # Privileges are index privileges, checked per name by each handler.
    reads = (*_OPTIONS, "master_timeout", "local")
    router.add("GET", "/_mapping", get_mapping, params=reads, self_checked=True)
    router.add("GET", "/{index}/_mapping", get_mapping, params=reads, self_checked=True)
    puts = (*_OPTIONS, "master_timeout", "timeout", "write_index_only")
    router.add(("PUT", "POST"), "/{index}/_mapping", put_mapping, params=puts, self_checked=True)
    stat_params = (
        *_OPTIONS,
        "level",
        "fields",
        "completion_fields",
        "fielddata_fields",
        "groups",
        "forbid_closed_indices",
        "include_segment_file_sizes",
        "include_unloaded_segments",
    )
    for path in ("/_stats", "/_stats/{metric}", "/{index}/_stats", "/{index}/_stats/{metric}"):
        router.add("GET", path, index_stats, params=stat_params, self_checked=True)
    cat = (
        "format",
        "h",
        "help",
        "v",
        "s",
        "bytes",
        "health",
        "pri",
        "time",
        "expand_wildcards",
        "master_timeout",
        "include_unloaded_segments",
        "local",
    )
    router.add("GET", "/_cat/indices", cat_indices, params=cat, self_checked=True)
    router.add("GET", "/_cat/indices/{index}", cat_indices, params=cat, self_checked=True)
