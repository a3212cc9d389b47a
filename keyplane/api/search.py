"""Search APIs on content indices: ``/{index}/_search``, ``/_search``, ``/_search/scroll`` and clear-scroll.

The system indices' ``_search`` routes are literal (``api/system_indices.py``) and answer first.
A search authorizes ``indices:data/read/search`` on each concrete name and expands wildcards over the
indices the caller may search; continuing or clearing a scroll needs no index privilege, only to be
the caller who opened it, as in Elasticsearch.
"""

from __future__ import annotations

import time
from typing import Any

from keyplane.api.index_view import expand, expressions, renders_index_errors
from keyplane.errors import InvalidArgument, KeyplaneError, ParseError, ValidationError
from keyplane.http.errors import EsError
from keyplane.http.request import Reply, RestRequest
from keyplane.http.routing import Router
from keyplane.indices import search as rules
from keyplane.indices.scroll import ScrollMissing
from keyplane.indices.search import Hit, HitView, SearchRequest, SearchResult
from keyplane.json_kinds import token_kind
from keyplane.security import index_access
from keyplane.security.identity import Authentication
from keyplane.source_filtering import SourceFilter, source_filter
from keyplane.timevalue import parse_duration_ms

Doc = dict[str, Any]
_BODY_FIELDS = frozenset(
    (
        "query",
        "from",
        "size",
        "sort",
        "_source",
        "seq_no_primary_term",
        "track_total_hits",
        "version",
        "timeout",
        "track_scores",
        "search_after",
        "docvalue_fields",
        "stored_fields",
        "fields",
    )
)


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise EsError(400, "x_content_parse_exception", f"[1:2] [{name}] failed to parse field [{name}]")
    try:
        return int(value)
    except ValueError:
        raise EsError(400, "x_content_parse_exception", f"[1:2] [{name}] failed to parse field [{name}]") from None


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value in ("", "true"))


def _uri_query(q: str) -> Doc:
    """The ``q`` parameter, read simply: ``*`` matches all, ``field:words`` matches the field, else any field."""
    text = q.strip()
    if text in ("", "*", "*:*"):
        return {"match_all": {}}
    field, sep, words = text.partition(":")
    if sep and field and words and " " not in field:
        return {"match": {field: words}}
    return {"simple_query_string": {"query": text}}


def _owner(auth: Authentication) -> str:
    """Who a scroll belongs to: the same user from the same realm, or the same API key."""
    key = auth.api_key.get("id") if auth.api_key else None
    realm = auth.authentication_realm.get("name", "")
    return f"{auth.type}\x00{realm}\x00{key or ''}\x00{auth.user.username}"


def _keep_alive(value: Any) -> int:
    return parse_duration_ms(str(value), "scroll")


def _body(request: RestRequest) -> Doc:
    body = request.json()
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ParseError("request body is required to be an object")
    return body


def _view(request: RestRequest, body: Doc) -> HitView:
    # The URI's source parameters, when any is given, replace the body's _source.
    uri = any(request.param(name) is not None for name in ("_source", "_source_includes", "_source_excludes"))
    source = source_filter(
        request.param("_source", "true") if uri else body.get("_source", True),
        request.list_param("_source_includes"),
        request.list_param("_source_excludes"),
    )
    stored: Any = request.param("stored_fields", body.get("stored_fields"))
    if stored is not None:
        names = stored.split(",") if isinstance(stored, str) else stored if isinstance(stored, list) else [stored]
        # Stored fields replace _source in hits unless they name it or the request asks for it.
        if "_source" not in names and not uri and "_source" not in body:
            source = SourceFilter(False)
    docvalues = request.param("docvalue_fields", body.get("docvalue_fields"))
    fields = rules.parse_field_list(docvalues, "docvalue_fields") + rules.parse_field_list(body.get("fields"), "fields")
    seq_no = _flag(request.param("seq_no_primary_term", body.get("seq_no_primary_term", False)))
    return HitView(source, seq_no, _flag(request.param("version", body.get("version", False))), fields)


def _request(request: RestRequest, body: Doc, scrolling: bool) -> SearchRequest:
    for key, value in body.items():
        if key in ("aggs", "aggregations"):
            raise InvalidArgument("aggregations are not supported on content indices")
        if key not in _BODY_FIELDS:
            raise EsError(400, "parsing_exception", f"Unknown key for a {token_kind(value)} in [{key}].")
    start = _int(request.param("from", body.get("from", 0)), "from")
    size = _int(request.param("size", body.get("size", 10)), "size")
    rules.check_paging(start, size)
    sort: Any = request.list_param("sort") if request.param("sort") is not None else body.get("sort")
    query: Any = body.get("query")
    q = request.param("q")
    if q is not None:
        query = _uri_query(q)
    total_as_int = request.flag("rest_total_hits_as_int")
    raw_track = request.param("track_total_hits", body.get("track_total_hits"))
    track = rules.TRACK_TOTAL_HITS if raw_track is None else rules.track_total_hits(raw_track)
    if total_as_int:
        if raw_track is None:
            track = True
        elif track is not True and track is not False:
            raise InvalidArgument(
                f"[rest_total_hits_as_int] cannot be used if the tracking of total hits is not accurate, got {track}"
            )
    problems = []
    if scrolling and request.flag("request_cache"):
        problems.append("[request_cache] cannot be used in a scroll context")
    if scrolling and size == 0:
        problems.append("[size] cannot be [0] in a scroll context")
    if problems:
        raise ValidationError(*problems)
    keys = rules.parse_sort(sort)
    after = body.get("search_after")
    after_values = rules.check_search_after(after, keys) if after is not None else None
    return SearchRequest(query, keys, start, size, track, _view(request, body), after_values)


def _hit(hit: Hit, view: HitView) -> Doc:
    out: Doc = {"_index": hit.index.name, "_id": hit.doc.id}
    if view.version:
        out["_version"] = hit.doc.version
    if view.seq_no_primary_term:
        out["_seq_no"] = hit.doc.seq_no
        out["_primary_term"] = hit.doc.primary_term
    out["_score"] = hit.score
    shown = view.source.apply(hit.doc.source)
    if shown is not None:
        out["_source"] = shown
    if view.fields:
        values = rules.hit_fields(hit, view)
        if values:
            out["fields"] = values
    if hit.sort is not None:
        out["sort"] = list(hit.sort)
    return out


def _answer(
    result: SearchResult,
    page: tuple[Hit, ...],
    shards: int,
    took: int,
    total_as_int: bool,
    view: HitView,
    scroll_id: str | None = None,
) -> Doc:
    hits: Doc = {}
    if result.total is not None:
        relation = "eq" if result.total_is_exact else "gte"
        hits["total"] = result.total if total_as_int else {"value": result.total, "relation": relation}
    elif total_as_int:
        hits["total"] = -1
    hits["max_score"] = result.max_score
    hits["hits"] = [_hit(hit, view) for hit in page]
    out: Doc = {} if scroll_id is None else {"_scroll_id": scroll_id}
    out.update(
        {
            "took": took,
            "timed_out": False,
            "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0},
            "hits": hits,
        }
    )
    return out


def _shard_failure(exc: KeyplaneError, status: int, cause_type: str) -> EsError:
    """A failure every shard reported, as Elasticsearch wraps it."""
    cause = {"type": cause_type, "reason": str(exc)}
    return EsError(
        status,
        "search_phase_execution_exception",
        "all shards failed",
        extra={"phase": "query", "grouped": True, "failed_shards": [{"shard": -1, "index": None, "reason": cause}]},
        root_cause=cause,
        caused_by=cause,
    )


@renders_index_errors
async def search(request: RestRequest) -> Doc:
    started = time.monotonic()
    names = expressions(request)
    index_access.authorize(request.auth, index_access.SEARCH, [n for n in names if "*" not in n and n != "_all"])
    body = _body(request)
    scroll = request.param("scroll")
    keep_alive = _keep_alive(scroll) if scroll is not None else None
    parsed = _request(request, body, keep_alive is not None)
    # A terms lookup reads its document as a get by the caller would, so it needs that privilege.
    lookups = rules.terms_lookups(parsed.query)
    index_access.authorize(request.auth, index_access.GET_DOC, sorted({lookup.index for lookup in lookups}))
    service = request.services.indices
    found = await service.resolve(
        names, expand(request), lambda n: index_access.allowed(request.auth, index_access.SEARCH, n)
    )
    try:
        rules.check_window(found, parsed.start, parsed.size, scroll=keep_alive is not None)
    except rules.ResultWindowTooLarge as exc:
        raise _shard_failure(exc, 400, "illegal_argument_exception") from None
    owner = (_owner(request.auth), keep_alive) if keep_alive is not None else None
    result, scroll_id = await service.search(found, parsed, owner)
    took = int((time.monotonic() - started) * 1000)
    page = result.page(parsed.start, parsed.size)
    total_as_int = request.flag("rest_total_hits_as_int")
    return _answer(result, page, len(found), took, total_as_int, parsed.view, scroll_id)


def _scroll_ids(request: RestRequest, body: Doc) -> list[str]:
    value: Any = body.get("scroll_id")
    if value is None:
        return request.path_list("scroll_id") or request.list_param("scroll_id")
    if isinstance(value, str):
        return [v for v in value.split(",") if v]
    if isinstance(value, list):
        return [str(v) for v in value]
    raise EsError(400, "parsing_exception", "scroll_id must be a string or an array of strings")


async def scroll(request: RestRequest) -> Doc:
    started = time.monotonic()
    body = _body(request)
    ids = _scroll_ids(request, body)
    if not ids:
        raise ValidationError("scrollId is missing")
    keep: Any = body.get("scroll", request.param("scroll"))
    keep_alive = _keep_alive(keep) if keep is not None else None
    try:
        opened, result, batch = request.services.indices.scrolls.next(ids[0], _owner(request.auth), keep_alive)
    except ScrollMissing as exc:
        raise _shard_failure(exc, 404, "search_context_missing_exception") from None
    took = int((time.monotonic() - started) * 1000)
    shards = len({hit.index.name for hit in result.hits}) or 1
    return _answer(result, batch, shards, took, request.flag("rest_total_hits_as_int"), opened.view, ids[0])


async def clear_scroll(request: RestRequest) -> Reply:
    ids = _scroll_ids(request, _body(request))
    if not ids:
        raise ValidationError("no scroll ids specified")
    freed = request.services.indices.scrolls.clear(ids, _owner(request.auth))
    return Reply({"succeeded": True, "num_freed": freed}, status=200 if freed else 404)


_SEARCH_PARAMS = (
    "expand_wildcards",
    "ignore_unavailable",
    "allow_no_indices",
    "from",
    "size",
    "sort",
    "q",
    "df",
    "default_operator",
    "analyzer",
    "analyze_wildcard",
    "lenient",
    "_source",
    "_source_includes",
    "_source_excludes",
    "seq_no_primary_term",
    "track_total_hits",
    "track_scores",
    "rest_total_hits_as_int",
    "version",
    "scroll",
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
    "timeout",
    "terminate_after",
    "stats",
    "explain",
    "include_named_queries_score",
    "docvalue_fields",
    "stored_fields",
)


def register(router: Router) -> None:
    # Index privileges are checked per index by the handler; scrolls by their owner.
    router.add(("GET", "POST"), "/{index}/_search", search, params=_SEARCH_PARAMS, self_checked=True)
    router.add(("GET", "POST"), "/_search", search, params=_SEARCH_PARAMS, self_checked=True)
    scroll_params = ("scroll", "scroll_id", "rest_total_hits_as_int")
    router.add(("GET", "POST"), "/_search/scroll", scroll, params=scroll_params, self_checked=True)
    router.add(("GET", "POST"), "/_search/scroll/{scroll_id}", scroll, params=scroll_params, self_checked=True)
    router.add("DELETE", "/_search/scroll", clear_scroll, params=("scroll_id",), self_checked=True)
    router.add("DELETE", "/_search/scroll/{scroll_id}", clear_scroll, params=("scroll_id",), self_checked=True)
