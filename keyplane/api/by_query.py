"""``POST /{index}/_delete_by_query`` and ``POST /{index}/_update_by_query``, on content indices and on the
connector system indices (literal routes, which the router prefers over ``{index}``).

The handler checks the parameters (``indices.by_query``), authorizes the by-query action and the search
it runs, calls one ``ByQueryService`` operation and renders Elasticsearch's ``BulkByScrollResponse``:
409 with the conflicts listed when a version conflict aborted the run. Runs end within the request:
``wait_for_completion=false`` (a background task) is refused, as Keyplane has no task API.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from keyplane.api import system_indices
from keyplane.api.index_view import expand, expressions, renders_index_errors
from keyplane.connectors import system_index
from keyplane.connectors.by_query_target import SystemIndexTarget
from keyplane.errors import InvalidArgument
from keyplane.http.errors import EsError, parse_error
from keyplane.http.request import Reply, RestRequest
from keyplane.http.routing import Handler, Router
from keyplane.indices import by_query
from keyplane.indices.by_query import Action, ByQuery, Progress
from keyplane.security import index_access
from keyplane.timevalue import parse_duration_ms

Doc = dict[str, Any]
_ACTIONS = {"delete": index_access.DELETE_BY_QUERY, "update": index_access.UPDATE_BY_QUERY}


def _parse(request: RestRequest, action: Action) -> ByQuery:
    """The request, refused before any index is looked at when its parameters or body are wrong."""
    by_query.check_remote(expressions(request))
    if not request.flag("wait_for_completion", True):
        raise InvalidArgument(
            "[wait_for_completion=false] is not supported: Keyplane runs the request to completion and has no "
            "task API to report on it later"
        )
    timeout = request.param("timeout")
    if timeout is not None:
        parse_duration_ms(timeout, "timeout")
    body = request.json()
    if body is not None and not isinstance(body, dict):
        raise parse_error("request body is required to be an object")
    try:
        return _parse_body(request, action, body)
    except by_query.UnknownKey as exc:
        raise EsError(400, "parsing_exception", str(exc)) from None


def _parse_body(request: RestRequest, action: Action, body: dict[str, Any] | None) -> ByQuery:
    return by_query.parse(
        action,
        body,
        conflicts_param=request.param("conflicts"),
        max_docs_param=request.int_param("max_docs"),
        scroll_size=request.int_param("scroll_size"),
        slices_param=request.param("slices"),
        rps_param=request.param("requests_per_second"),
        sort_param=request.list_param("sort"),
        refresh=request.flag("refresh"),
    )


def _answer(parsed: ByQuery, progress: Progress, took: int) -> Reply:
    out: Doc = {"took": took, "timed_out": False, "total": progress.total}
    if parsed.action == "update":
        out["updated"] = progress.updated
    out["deleted"] = progress.deleted
    rate = parsed.requests_per_second
    out.update(
        {
            "batches": progress.batches,
            "version_conflicts": progress.version_conflicts,
            "noops": progress.noops,
            "retries": {"bulk": 0, "search": 0},
            "throttled_millis": 0,
            "requests_per_second": -1.0 if rate is None else rate,
            "throttled_until_millis": 0,
            "failures": [
                {
                    "index": failure.index,
                    "id": failure.id,
                    "cause": {
                        "type": "version_conflict_engine_exception",
                        "reason": failure.reason,
                        "index_uuid": failure.index_uuid,
                        "shard": "0",
                        "index": failure.index,
                    },
                    "status": failure.status,
                }
                for failure in progress.failures
            ],
        }
    )
    status = max((failure.status for failure in progress.failures), default=200)
    return Reply(out, status=status)


def _on_content(action: Action) -> Handler:
    permission = _ACTIONS[action]

    @renders_index_errors
    async def handler(request: RestRequest) -> Reply:
        started = time.monotonic()
        parsed = _parse(request, action)
        names = expressions(request)
        index_access.authorize(request.auth, permission, [n for n in names if "*" not in n and n != "_all"])
        service = request.services.by_query
        found = await service.indices.resolve(
            names, expand(request), lambda n: index_access.allowed(request.auth, permission, n)
        )
        # The run's search is the caller's too: it needs read on the indices, as in Elasticsearch.
        index_access.authorize(request.auth, index_access.SEARCH, [meta.name for meta in found])
        progress = await service.run(parsed, found)
        return _answer(parsed, progress, int((time.monotonic() - started) * 1000))

    return handler


def _on_system(name: str, action: Action) -> Callable[[RestRequest], Awaitable[Reply]]:
    kind = system_index.kind_of(name)
    assert kind is not None, "registered for the system index names only"

    async def handler(request: RestRequest) -> Reply:
        started = time.monotonic()
        parsed = _parse(request, action)
        system_indices.authorize(request, _ACTIONS[action], name)
        system_indices.authorize(request, index_access.SEARCH, name)
        target = SystemIndexTarget(request.services.connectors, kind)
        progress = await request.services.by_query.run_on(parsed, target)
        return _answer(parsed, progress, int((time.monotonic() - started) * 1000))

    return handler


# Search parameters that would change which documents match (q, from, terminate_after) are not
# accepted rather than ignored: ignoring them would write documents the caller did not select.
_PARAMS = (
    "allow_no_indices",
    "conflicts",
    "expand_wildcards",
    "ignore_unavailable",
    "max_docs",
    "preference",
    "refresh",
    "request_cache",
    "requests_per_second",
    "routing",
    "scroll",
    "scroll_size",
    "search_type",
    "search_timeout",
    "slices",
    "sort",
    "stats",
    "timeout",
    "version",
    "wait_for_active_shards",
    "wait_for_completion",
    "_source",
    "_source_excludes",
    "_source_includes",
)


def register(router: Router) -> None:
    # Index privileges are checked by the handlers: the by-query action, then the search it runs.
    router.add("POST", "/{index}/_delete_by_query", _on_content("delete"), params=_PARAMS, self_checked=True)
    router.add("POST", "/{index}/_update_by_query", _on_content("update"), params=_PARAMS, self_checked=True)
    for name in system_index.NAMES:
        router.add("POST", f"/{name}/_delete_by_query", _on_system(name, "delete"), params=_PARAMS, self_checked=True)
        router.add("POST", f"/{name}/_update_by_query", _on_system(name, "update"), params=_PARAMS, self_checked=True)
