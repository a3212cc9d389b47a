"""The connector system indices, ``.elastic-connectors`` and ``.elastic-connectors-sync-jobs``
(concrete names ``-v1``; the short names are aliases), through the index and document APIs.

Their documents are Keyplane's connectors and sync jobs: each handler authorizes the index action,
parses, calls one ``ConnectorService`` document operation and renders Elasticsearch's answer. The
indices always exist. Handlers take the index name as the path gave it, so a generic ``/{index}``
handler can hand a system index over: ``if is_system_index(name): return await fn(request, name)``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from keyplane.api.index_view import source_param
from keyplane.connectors import system_index
from keyplane.connectors.model import Doc
from keyplane.connectors.system_index import (
    PRIMARY_TERM,
    DocumentRead,
    DocumentWrite,
    Kind,
    Precondition,
    SearchResult,
)
from keyplane.errors import Conflict, DocumentMissing, ValidationError
from keyplane.http.errors import EsError, parse_error
from keyplane.http.request import Reply, RestRequest
from keyplane.http.routing import Router
from keyplane.query.fields import FieldType
from keyplane.security import index_access
from keyplane.source_filtering import SourceFilter, source_filter

SYSTEM_INDICES: dict[str, str] = {name: kind.index for name, kind in system_index.NAMES.items()}
ONE_SHARD = {"total": 1, "successful": 1, "failed": 0}
NO_SHARDS = {"total": 0, "successful": 0, "failed": 0}


def is_system_index(name: str) -> bool:
    """Whether ``name`` is one of the connector system indices or their aliases."""
    return name in SYSTEM_INDICES


def _kind(name: str) -> Kind:
    kind = system_index.kind_of(name)
    assert kind is not None, "dispatched here for system index names only"
    return kind


def authorize(request: RestRequest, action: str, name: str, *, overwrite: bool = False) -> None:
    """Privileges on the name asked for, or on the index an alias points at (the connectors CLI's key
    holds ``all`` on ``.elastic-connectors-v1*`` and reaches the indices through their aliases)."""
    concrete = _kind(name).index
    if name != concrete and index_access.allowed(request.auth, action, concrete, overwrite=overwrite):
        return
    index_access.authorize(request.auth, action, [name], overwrite=overwrite)


def _doc_error(kind: Kind, exc: Conflict | DocumentMissing) -> EsError:
    """Document errors carry the index they happened in, as Elasticsearch's shard-level errors do."""
    extra = {"index_uuid": kind.uuid, "shard": "0", "index": kind.index}
    if isinstance(exc, Conflict):
        return EsError(409, "version_conflict_engine_exception", str(exc), extra=extra)
    return EsError(404, "document_missing_exception", str(exc), extra=extra)


def _int_param(request: RestRequest, name: str) -> int | None:
    return request.int_param(name)


def _precondition(request: RestRequest) -> Precondition | None:
    return system_index.precondition(_int_param(request, "if_seq_no"), _int_param(request, "if_primary_term"))


def _object_body(request: RestRequest) -> Doc:
    data = request.json(required=True)
    if not isinstance(data, dict):
        raise parse_error("request body is required to be an object")
    return data


# -- index level -----------------------------------------------------------------------------------------------


async def index_exists(request: RestRequest, name: str) -> Reply:
    authorize(request, index_access.GET_INDEX, name)
    return Reply(None, status=200)


def _mappings(kind: Kind) -> Doc:
    """The mapped fields as Elasticsearch's nested ``properties``."""
    fields = system_index.CONNECTOR_FIELDS if kind is Kind.CONNECTORS else system_index.SYNC_JOB_FIELDS
    properties: Doc = {}
    for path, field_type in fields.items():
        if path.startswith("_"):
            continue
        node = properties
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {"properties": {}})["properties"]
        node[leaf] = {"type": "keyword" if field_type is FieldType.FLATTENED else field_type.value}
    return {"dynamic": "false", "properties": properties}


async def get_index(request: RestRequest, name: str) -> Doc:
    authorize(request, index_access.GET_INDEX, name)
    kind = _kind(name)
    settings = {
        "index": {
            "hidden": "true",
            "number_of_shards": "1",
            "auto_expand_replicas": "0-1",
            "number_of_replicas": "0",
            "provided_name": kind.index,
            "uuid": kind.uuid,
        }
    }
    return {kind.index: {"aliases": {kind.alias: {}}, "mappings": _mappings(kind), "settings": settings}}


async def create_index(request: RestRequest, name: str) -> Doc:
    """The indices always exist: Elasticsearch's answers for an existing index or alias name."""
    authorize(request, index_access.CREATE_INDEX, name)
    kind = _kind(name)
    if name == kind.alias:
        raise EsError(
            400,
            "invalid_index_name_exception",
            f"Invalid index name [{name}], already exists as alias",
            extra={"index_uuid": "_na_", "index": name},
        )
    raise EsError(
        400,
        "resource_already_exists_exception",
        f"index [{kind.index}/{kind.uuid}] already exists",
        extra={"index_uuid": kind.uuid, "index": kind.index},
    )


async def refresh(request: RestRequest, name: str) -> Doc:
    """Writes are visible at once; a refresh has nothing to do."""
    authorize(request, index_access.REFRESH, name)
    return {"_shards": ONE_SHARD}


# -- documents ---------------------------------------------------------------------------------------------------


def _read(kind: Kind, found: DocumentRead, source: SourceFilter) -> Doc:
    out: Doc = {
        "_index": kind.index,
        "_id": found.id,
        "_version": found.version,
        "_seq_no": found.seq_no,
        "_primary_term": PRIMARY_TERM,
        "found": True,
    }
    shown = source.apply(found.source)
    if shown is not None:
        out["_source"] = shown
    return out


def _written(kind: Kind, write: DocumentWrite) -> Doc:
    return {
        "_index": kind.index,
        "_id": write.id,
        "_version": write.version,
        "result": write.result,
        "_shards": NO_SHARDS if write.result == "noop" else ONE_SHARD,
        "_seq_no": write.seq_no,
        "_primary_term": PRIMARY_TERM,
    }


async def get_doc(request: RestRequest, name: str, doc_id: str) -> Reply:
    authorize(request, index_access.GET_DOC, name)
    kind = _kind(name)
    source = source_param(request)
    found = await request.services.connectors.get_document(kind, doc_id)
    if found is None:
        return Reply({"_index": kind.index, "_id": doc_id, "found": False}, status=404)
    return Reply(_read(kind, found, source))


async def doc_exists(request: RestRequest, name: str, doc_id: str) -> Reply:
    authorize(request, index_access.GET_DOC, name)
    found = await request.services.connectors.get_document(_kind(name), doc_id)
    return Reply(None, status=200 if found is not None else 404)


async def index_doc(request: RestRequest, name: str, doc_id: str | None = None, *, create: bool = False) -> Reply:
    """``PUT|POST /{index}/_doc/{id}``, ``PUT|POST /{index}/_create/{id}`` (``create``) and ``POST /{index}/_doc``."""
    op_type = request.param("op_type")
    if op_type not in (None, "index", "create"):
        raise EsError(400, "illegal_argument_exception", f"opType must be 'create' or 'index', found: [{op_type}]")
    create_only = create or op_type == "create" or doc_id is None
    authorize(request, index_access.INDEX_DOC, name, overwrite=not create_only)
    kind = _kind(name)
    source = _object_body(request)
    precondition = _precondition(request)
    if create_only and precondition is not None:
        raise ValidationError("create operations do not support compare and set. use index instead")
    if doc_id is not None and not doc_id:
        raise ValidationError("if _id is specified it must not be empty")
    try:
        write = await request.services.connectors.index_document(
            kind, doc_id, source, create_only=create_only, precondition=precondition
        )
    except Conflict as exc:
        raise _doc_error(kind, exc) from None
    created = write.result == "created"
    headers = {"Location": f"/{kind.index}/_doc/{write.id}"} if created else {}
    return Reply(_written(kind, write), status=201 if created else 200, headers=headers)


_UPDATE_FIELDS = frozenset(("doc", "upsert", "doc_as_upsert", "detect_noop", "_source", "scripted_upsert", "script"))


async def update_doc(request: RestRequest, name: str, doc_id: str) -> Reply:
    """``POST /{index}/_update/{id}``: the partial document merged into the stored JSON, never re-validated."""
    authorize(request, index_access.UPDATE_DOC, name)
    kind = _kind(name)
    body = _object_body(request)
    for key in body:
        if key not in _UPDATE_FIELDS:
            raise EsError(400, "x_content_parse_exception", f"[1:2] [UpdateRequest] unknown field [{key}]")
    if "script" in body:
        raise EsError(400, "illegal_argument_exception", "scripts are not supported on the connector system indices")
    partial, upsert = body.get("doc"), body.get("upsert")
    if partial is None:
        raise ValidationError("script or doc is missing")
    if not isinstance(partial, dict) or (upsert is not None and not isinstance(upsert, dict)):
        raise EsError(400, "x_content_parse_exception", "[1:2] [UpdateRequest] doc and upsert must be objects")
    precondition = _precondition(request)
    try:
        write = await request.services.connectors.update_document(
            kind,
            doc_id,
            partial,
            upsert=upsert,
            doc_as_upsert=body.get("doc_as_upsert") is True,
            detect_noop=body.get("detect_noop", True) is not False,
            precondition=precondition,
        )
    except (Conflict, DocumentMissing) as exc:
        raise _doc_error(kind, exc) from None
    return Reply(_written(kind, write), status=201 if write.result == "created" else 200)


async def delete_doc(request: RestRequest, name: str, doc_id: str) -> Reply:
    authorize(request, index_access.DELETE_DOC, name)
    kind = _kind(name)
    try:
        write = await request.services.connectors.delete_document(kind, doc_id, _precondition(request))
    except Conflict as exc:
        raise _doc_error(kind, exc) from None
    return Reply(_written(kind, write), status=404 if write.result == "not_found" else 200)


# -- search -------------------------------------------------------------------------------------------------------

_SEARCH_FIELDS = frozenset(
    ("query", "from", "size", "sort", "_source", "seq_no_primary_term", "track_total_hits", "version", "timeout")
)


def _int_of(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise EsError(400, "x_content_parse_exception", f"[1:2] [{name}] expected a number")
    try:
        return int(value)
    except ValueError:
        raise EsError(400, "x_content_parse_exception", f"[1:2] [{name}] expected a number") from None


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value in ("", "true"))


async def search(request: RestRequest, name: str) -> Doc:
    """``GET|POST /{index}/_search``: what the connectors service and its CLI send (see the module docs)."""
    authorize(request, index_access.SEARCH, name)
    kind = _kind(name)
    started = time.monotonic()
    body = request.json() or {}
    if not isinstance(body, dict):
        raise parse_error("request body is required to be an object")
    for key in body:
        if key not in _SEARCH_FIELDS:
            raise EsError(400, "parsing_exception", f"Unknown key for a START_OBJECT in [{key}].")
    start = _int_of(request.param("from", body.get("from", 0)), "from")
    size = _int_of(request.param("size", body.get("size", 10)), "size")
    sort: Any = body.get("sort")
    if request.param("sort") is not None:
        sort = request.list_param("sort")
    track: Any = request.param("track_total_hits", body.get("track_total_hits", system_index.TRACK_TOTAL_HITS))
    if isinstance(track, str):
        track = track == "true" if track in ("true", "false") else _int_of(track, "track_total_hits")
    source = source_filter(
        request.param("_source", body.get("_source", True)),
        request.list_param("_source_includes"),
        request.list_param("_source_excludes"),
    )
    parsed = system_index.search_request(kind, body.get("query"), sort, start, size, track)
    seq_no = _flag(request.param("seq_no_primary_term", body.get("seq_no_primary_term", False)))
    version = _flag(request.param("version", body.get("version", False)))
    found = await request.services.connectors.search_documents(kind, parsed)
    took = int((time.monotonic() - started) * 1000)
    return _search_answer(kind, found, source, seq_no, version, took, request.flag("rest_total_hits_as_int"))


def _search_answer(
    kind: Kind, found: SearchResult, source: SourceFilter, seq_no: bool, version: bool, took: int, total_as_int: bool
) -> Doc:
    hits: list[Doc] = []
    for hit in found.hits:
        out: Doc = {"_index": kind.index, "_id": hit.document.id}
        if version:
            out["_version"] = hit.document.version
        if seq_no:
            out["_seq_no"] = hit.document.seq_no
            out["_primary_term"] = PRIMARY_TERM
        out["_score"] = hit.score
        shown = source.apply(hit.document.source)
        if shown is not None:
            out["_source"] = shown
        if hit.sort is not None:
            out["sort"] = list(hit.sort)
        hits.append(out)
    total: Any = (
        found.total if total_as_int else {"value": found.total, "relation": "eq" if found.total_is_exact else "gte"}
    )
    return {
        "took": took,
        "timed_out": False,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {"total": total, "max_score": found.max_score, "hits": hits},
    }


# -- routes ---------------------------------------------------------------------------------------------------------

_INDEX_PARAMS = ("expand_wildcards", "ignore_unavailable", "allow_no_indices", "master_timeout", "timeout")
_GET_PARAMS = (
    "_source",
    "_source_includes",
    "_source_excludes",
    "realtime",
    "refresh",
    "routing",
    "stored_fields",
    "preference",
    "version",
    "version_type",
)
_WRITE_PARAMS = (
    "if_seq_no",
    "if_primary_term",
    "refresh",
    "routing",
    "timeout",
    "wait_for_active_shards",
    "require_alias",
    "require_data_stream",
)
_SEARCH_PARAMS = (
    *_INDEX_PARAMS,
    "from",
    "size",
    "sort",
    "_source",
    "_source_includes",
    "_source_excludes",
    "seq_no_primary_term",
    "track_total_hits",
    "rest_total_hits_as_int",
    "version",
    "typed_keys",
    "preference",
    "routing",
    "search_type",
    "request_cache",
    "allow_partial_search_results",
    "batched_reduce_size",
    "ccs_minimize_roundtrips",
    "ignore_throttled",
    "max_concurrent_shard_requests",
    "pre_filter_shard_size",
)

Handler = Callable[[RestRequest], Awaitable[Any]]


def _on_index(name: str, fn: Callable[[RestRequest, str], Awaitable[Any]]) -> Handler:
    async def handler(request: RestRequest) -> Any:
        return await fn(request, name)

    return handler


def _on_doc(name: str, fn: Callable[[RestRequest, str, str], Awaitable[Any]]) -> Handler:
    async def handler(request: RestRequest) -> Any:
        return await fn(request, name, request.path_params["id"])

    return handler


def _create_handler(name: str) -> Handler:
    async def handler(request: RestRequest) -> Reply:
        return await index_doc(request, name, request.path_params["id"], create=True)

    return handler


def register(router: Router) -> None:
    """Literal routes for the four names: the router prefers literal segments over ``{index}``, so these
    answer for the system indices whatever generic index routes exist. Privileges are checked per handler."""
    for name in SYSTEM_INDICES:
        base = f"/{name}"
        router.add(
            "HEAD",
            base,
            _on_index(name, index_exists),
            params=(*_INDEX_PARAMS, "local", "flat_settings", "include_defaults"),
            self_checked=True,
        )
        router.add(
            "GET",
            base,
            _on_index(name, get_index),
            params=(*_INDEX_PARAMS, "local", "flat_settings", "include_defaults", "features"),
            self_checked=True,
        )
        router.add(
            "PUT",
            base,
            _on_index(name, create_index),
            params=(*_INDEX_PARAMS, "wait_for_active_shards"),
            self_checked=True,
        )
        router.add(
            ("GET", "POST"), f"{base}/_refresh", _on_index(name, refresh), params=_INDEX_PARAMS, self_checked=True
        )
        router.add(
            ("GET", "POST"), f"{base}/_search", _on_index(name, search), params=_SEARCH_PARAMS, self_checked=True
        )
        router.add("GET", f"{base}/_doc/{{id}}", _on_doc(name, get_doc), params=_GET_PARAMS, self_checked=True)
        router.add("HEAD", f"{base}/_doc/{{id}}", _on_doc(name, doc_exists), params=_GET_PARAMS, self_checked=True)
        index_params = (*_WRITE_PARAMS, "op_type", "pipeline", "version", "version_type")
        router.add(
            ("PUT", "POST"), f"{base}/_doc/{{id}}", _on_doc(name, index_doc), params=index_params, self_checked=True
        )
        router.add(
            ("PUT", "POST"), f"{base}/_create/{{id}}", _create_handler(name), params=index_params, self_checked=True
        )
        router.add("POST", f"{base}/_doc", _on_index(name, index_doc), params=index_params, self_checked=True)
        update_params = (*_WRITE_PARAMS, "retry_on_conflict", "_source", "_source_includes", "_source_excludes", "lang")
        router.add("POST", f"{base}/_update/{{id}}", _on_doc(name, update_doc), params=update_params, self_checked=True)
        router.add(
            "DELETE",
            f"{base}/_doc/{{id}}",
            _on_doc(name, delete_doc),
            params=(*_WRITE_PARAMS, "version", "version_type"),
            self_checked=True,
        )
