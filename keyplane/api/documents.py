"""Single-document APIs: ``_doc``, ``_create``, ``_update``, ``_source`` and ``_count``.

Each handler authorizes the action on its index, parses the request, calls one ``IndexService``
operation and renders Elasticsearch's answer. A write to a missing index creates it, as
Elasticsearch does by default, if the caller may also create it.
"""

from __future__ import annotations

from typing import Any

from keyplane.api.index_view import expand, expressions, found, renders_index_errors, source_param, written_view
from keyplane.errors import InvalidArgument, ParseError, ValidationError
from keyplane.http.errors import EsError
from keyplane.http.request import Reply, RestRequest
from keyplane.http.routing import Router
from keyplane.indices import core
from keyplane.indices.core import Condition, OpType, UpdateSpec
from keyplane.indices.refresh import Refresh, parse_refresh
from keyplane.indices.service import AutoCreateGuard
from keyplane.security import index_access
from keyplane.source_filtering import SourceFilter, filter_source, source_filter

_WRITE = ("refresh", "timeout", "wait_for_active_shards", "routing", "require_alias", "if_seq_no", "if_primary_term")
_SOURCE = ("_source", "_source_includes", "_source_excludes")
_GET = ("realtime", "refresh", "routing", "preference", "stored_fields", "version", "version_type", *_SOURCE)
_UPDATE_FIELDS = frozenset({"doc", "upsert", "doc_as_upsert", "detect_noop", "_source"})


def _id(request: RestRequest) -> str:
    doc_id = request.path_params["id"]
    problem = core.id_problem(doc_id)
    if problem is not None:
        raise ValidationError(problem)
    return doc_id


def _condition(request: RestRequest) -> Condition | None:
    seq_no, term = request.int_param("if_seq_no"), request.int_param("if_primary_term")
    problem = core.condition_problem(seq_no, term)
    if problem is not None:
        raise ValidationError(problem)
    return Condition(seq_no, term or 0) if seq_no is not None else None


def _auto_create(request: RestRequest) -> AutoCreateGuard:
    return lambda name: index_access.authorize(request.auth, index_access.AUTO_CREATE, [name])


def _source(request: RestRequest) -> dict[str, Any]:
    data = request.json(required=True)
    if not isinstance(data, dict):
        raise EsError(400, "mapper_parsing_exception", "failed to parse, document is empty")
    return data


def _refresh(request: RestRequest) -> Refresh:
    return parse_refresh(request.param("refresh"))


async def _read(request: RestRequest, name: str, doc_id: str) -> tuple[core.IndexMeta, core.StoredDoc | None]:
    """A get's document: realtime unless ``realtime=false``, after a refresh with ``refresh``."""
    return await request.services.indices.get_doc(
        name,
        doc_id,
        realtime=request.flag("realtime", True),
        refresh=request.flag("refresh"),
        version=request.int_param("version"),
    )


async def _index(request: RestRequest, doc_id: str | None, op: OpType) -> Reply:
    name = request.path_params["index"]
    index_access.authorize(request.auth, index_access.INDEX_DOC, [name], overwrite=op == "index")
    cond = _condition(request)
    source = _source(request)
    if op == "create" and cond is not None:
        raise ValidationError("create operations do not support compare and set. use index instead")
    refresh = _refresh(request)
    pipeline = request.param("pipeline")
    written = await request.services.indices.index(
        name, doc_id, source, op, cond, _auto_create(request), refresh=refresh, pipeline=pipeline
    )
    return Reply(written_view(written), status=201 if written.result == "created" else 200)


def _op_type(request: RestRequest, default: OpType) -> OpType:
    value = request.param("op_type", default)
    if value == "create":
        return "create"
    if value == "index":
        return "index"
    raise InvalidArgument(f"opType must be 'create' or 'index', found: [{value}]")


@renders_index_errors
async def put_doc(request: RestRequest) -> Reply:
    return await _index(request, _id(request), _op_type(request, "index"))


@renders_index_errors
async def post_doc(request: RestRequest) -> Reply:
    # An id is generated: the request can only create.
    return await _index(request, None, _op_type(request, "create"))


@renders_index_errors
async def create_doc(request: RestRequest) -> Reply:
    return await _index(request, _id(request), "create")


@renders_index_errors
async def get_doc(request: RestRequest) -> Reply:
    name, doc_id = request.path_params["index"], _id(request)
    index_access.authorize(request.auth, index_access.GET_DOC, [name])
    meta, doc = await _read(request, name, doc_id)
    if doc is None:
        return Reply({"_index": meta.name, "_id": doc_id, "found": False}, status=404)
    return Reply(found(meta.name, doc, source_param(request)))


@renders_index_errors
async def get_source(request: RestRequest) -> Reply:
    name, doc_id = request.path_params["index"], _id(request)
    index_access.authorize(request.auth, index_access.GET_DOC, [name])
    meta, doc = await _read(request, name, doc_id)
    if doc is None:
        raise EsError(404, "resource_not_found_exception", f"Document not found [{meta.name}]/[{doc_id}]")
    source = source_param(request)
    return Reply(filter_source(doc.source, source.includes, source.excludes))


@renders_index_errors
async def delete_doc(request: RestRequest) -> Reply:
    name, doc_id = request.path_params["index"], _id(request)
    index_access.authorize(request.auth, index_access.DELETE_DOC, [name])
    cond, refresh = _condition(request), _refresh(request)
    written = await request.services.indices.delete_doc(name, doc_id, cond, refresh=refresh)
    return Reply(written_view(written), status=404 if written.result == "not_found" else 200)


def _update_spec(request: RestRequest) -> tuple[UpdateSpec, SourceFilter | None]:
    """The update and, when the request asks for it (``_source`` in the body or the parameters), how to
    show the updated document."""
    body = request.body("UpdateRequest", required=True)
    assert body is not None  # required
    body.check_fields(_UPDATE_FIELDS)
    doc, upsert = body.obj("doc"), body.obj("upsert")
    if doc is None:
        raise ValidationError("script or doc is missing")
    as_upsert, detect = body.boolean("doc_as_upsert"), body.boolean("detect_noop")
    spec = UpdateSpec(doc, upsert, bool(as_upsert), True if detect is None else detect)
    raw = request.json()
    shown: SourceFilter | None = None
    if isinstance(raw, dict) and "_source" in raw:
        shown = source_filter(raw["_source"])
    elif any(request.param(name) is not None for name in _SOURCE):
        shown = source_param(request)
    return spec, shown


@renders_index_errors
async def update_doc(request: RestRequest) -> Reply:
    name, doc_id = request.path_params["index"], _id(request)
    index_access.authorize(request.auth, index_access.UPDATE_DOC, [name])
    cond = _condition(request)
    spec, shown = _update_spec(request)
    refresh = _refresh(request)
    written = await request.services.indices.update(name, doc_id, spec, cond, _auto_create(request), refresh=refresh)
    return Reply(written_view(written, shown), status=201 if written.result == "created" else 200)


@renders_index_errors
async def count(request: RestRequest) -> dict[str, Any]:
    names = expressions(request)
    index_access.authorize(request.auth, index_access.SEARCH, [n for n in names if "*" not in n and n != "_all"])
    terminate_after = request.int_param("terminate_after")
    if terminate_after is not None and terminate_after < 0:
        raise InvalidArgument("terminateAfter must be > 0")
    body = request.json()
    query: Any = None
    if body is not None:
        if not isinstance(body, dict):
            raise ParseError("request body must be an object")
        for key in body:
            if key != "query":
                raise EsError(400, "parsing_exception", f"request does not support [{key}]")
        query = body.get("query")
    service = request.services.indices
    found = await service.resolve(
        names, expand(request), lambda n: index_access.allowed(request.auth, index_access.SEARCH, n)
    )
    total = await service.count(found, query)
    return {"count": total, "_shards": {"total": len(found), "successful": len(found), "skipped": 0, "failed": 0}}


def register(router: Router) -> None:
    # Index privileges, checked per index by each handler.
    indexing = (*_WRITE, "pipeline")
    router.add("PUT", "/{index}/_doc/{id}", put_doc, params=(*indexing, "op_type"), self_checked=True)
    router.add("POST", "/{index}/_doc/{id}", put_doc, params=(*indexing, "op_type"), self_checked=True)
    router.add("POST", "/{index}/_doc", post_doc, params=(*indexing, "op_type"), self_checked=True)
    router.add(("PUT", "POST"), "/{index}/_create/{id}", create_doc, params=indexing, self_checked=True)
    router.add(("GET", "HEAD"), "/{index}/_doc/{id}", get_doc, params=_GET, self_checked=True)
    router.add(("GET", "HEAD"), "/{index}/_source/{id}", get_source, params=_GET, self_checked=True)
    router.add("DELETE", "/{index}/_doc/{id}", delete_doc, params=_WRITE, self_checked=True)
    update_params = (*_WRITE, "retry_on_conflict", *_SOURCE)
    router.add("POST", "/{index}/_update/{id}", update_doc, params=update_params, self_checked=True)
    count_params = (
        "expand_wildcards",
        "ignore_unavailable",
        "allow_no_indices",
        "terminate_after",
        "routing",
        "preference",
        "min_score",
        "ignore_throttled",
    )
    router.add(("GET", "POST"), "/{index}/_count", count, params=count_params, self_checked=True)
    router.add(("GET", "POST"), "/_count", count, params=count_params, self_checked=True)
