"""``_bulk`` and ``_mget``: many documents in one request, each answered in its place.

The handler authorizes the request's action on some index, parses the body into items, runs them
through one service operation, and renders each item as Elasticsearch does: what it wrote, or its
error with the status it would have had on its own.
"""

from __future__ import annotations

import time
from typing import Any

from keyplane.api.index_view import es_error, found, source_param, written_view
from keyplane.errors import KeyplaneError
from keyplane.http.errors import EsError, from_domain, x_content_parse
from keyplane.http.request import RestRequest
from keyplane.http.routing import Router
from keyplane.indices import bulk as bulk_rules
from keyplane.indices import bulk_service, core
from keyplane.indices.bulk import BulkItem, GetItem
from keyplane.indices.bulk_service import DocumentUnparsable, Fetched
from keyplane.indices.refresh import parse_refresh
from keyplane.indices.service import Written
from keyplane.security import index_access
from keyplane.source_filtering import SourceFilter


def _item_error(exc: KeyplaneError) -> EsError:
    if isinstance(exc, (core.IndexFailure, core.MappingFailure)):
        return es_error(exc)
    if isinstance(exc, DocumentUnparsable):
        return EsError(400, "document_parsing_exception", str(exc))
    return from_domain(exc)


_STATUS = {"created": 201, "not_found": 404}


def _bulk_item(item: BulkItem, outcome: Written | KeyplaneError) -> dict[str, Any]:
    if isinstance(outcome, Written):
        return written_view(outcome, item.shown, _STATUS.get(outcome.result, 200))
    err = _item_error(outcome)
    return {
        "_index": item.index,
        "_id": item.id,
        "status": err.status,
        "error": {"type": err.type, "reason": err.reason, **err.extra},
    }


def _shown(request: RestRequest) -> SourceFilter | None:
    """The ``_source`` parameters of a bulk: how update items show the updated document, when given."""
    if all(request.param(name) is None for name in ("_source", "_source_includes", "_source_excludes")):
        return None
    return source_param(request)


async def bulk(request: RestRequest) -> dict[str, Any]:
    started = time.monotonic()
    index_access.authorize_somewhere(request.auth, index_access.BULK)
    default_index = request.path_params.get("index")
    try:
        items = bulk_rules.parse_bulk(
            request.raw_body,
            default_index,
            request.param("pipeline"),
            require_alias=request.flag("require_alias"),
            shown=_shown(request),
        )
    except bulk_rules.BadUpdateLine as exc:
        raise x_content_parse(str(exc)) from None

    allowed: set[tuple[str, str]] = set()  # (action, index) the request may write: asked once each

    def guard(item: BulkItem, name: str) -> None:
        if (item.action, name) not in allowed:
            index_access.authorize(request.auth, index_access.BULK_ITEM_ACTIONS[item.action], [name])
            allowed.add((item.action, name))

    def auto_create(name: str) -> None:
        index_access.authorize(request.auth, index_access.AUTO_CREATE, [name])

    refresh = parse_refresh(request.param("refresh"))
    outcomes = await bulk_service.bulk(request.services.indices, items, guard, auto_create, refresh=refresh)
    rendered = [{item.action: _bulk_item(item, out)} for item, out in zip(items, outcomes, strict=True)]
    return {
        "errors": any(isinstance(out, KeyplaneError) for out in outcomes),
        "took": int((time.monotonic() - started) * 1000),
        "items": rendered,
    }


def _mget_item(item: GetItem, outcome: Fetched | KeyplaneError, default: SourceFilter) -> Any:
    if isinstance(outcome, KeyplaneError):
        err = _item_error(outcome)
        return {"_index": item.index, "_id": item.id, "error": err.body()["error"]}
    if outcome.doc is None:
        return {"_index": outcome.index.name, "_id": item.id, "found": False}
    source = default
    if isinstance(item.source, bool):
        source = SourceFilter(item.source, default.includes, default.excludes)
    elif item.source is not None:
        source = SourceFilter(True, tuple(item.source[0]), tuple(item.source[1]))
    return found(outcome.index.name, outcome.doc, source)


async def mget(request: RestRequest) -> dict[str, Any]:
    index_access.authorize_somewhere(request.auth, index_access.MGET)
    items = bulk_rules.parse_mget(request.json(required=True), request.path_params.get("index"))

    def guard(name: str) -> None:
        index_access.authorize(request.auth, index_access.MGET_SHARD, [name])

    realtime, refresh = request.flag("realtime", True), request.flag("refresh")
    outcomes = await bulk_service.mget(request.services.indices, items, guard, realtime=realtime, refresh=refresh)
    default = source_param(request)
    return {"docs": [_mget_item(item, out, default) for item, out in zip(items, outcomes, strict=True)]}


def register(router: Router) -> None:
    # Index privileges: the request's action on some index, then each item's on its own index.
    bulk_params = (
        "refresh",
        "pipeline",
        "routing",
        "timeout",
        "wait_for_active_shards",
        "require_alias",
        "require_data_stream",
        "list_executed_pipelines",
        "include_source_on_error",
        "_source",
        "_source_includes",
        "_source_excludes",
    )
    router.add(("POST", "PUT"), "/_bulk", bulk, params=bulk_params, self_checked=True)
    router.add(("POST", "PUT"), "/{index}/_bulk", bulk, params=bulk_params, self_checked=True)
    mget_params = (
        "realtime",
        "refresh",
        "routing",
        "preference",
        "stored_fields",
        "_source",
        "_source_includes",
        "_source_excludes",
    )
    router.add(("GET", "POST"), "/_mget", mget, params=mget_params, self_checked=True)
    router.add(("GET", "POST"), "/{index}/_mget", mget, params=mget_params, self_checked=True)
