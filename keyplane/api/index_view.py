"""What index and document APIs share at the edge: their errors as Elasticsearch renders them, the
index expressions of a request, the ``_source`` parameters, a found document and the ``_shards``
header of a write."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from keyplane.http.errors import EsError
from keyplane.http.request import RestRequest
from keyplane.indices import core, datemath
from keyplane.indices.core import Expand, IndexMeta, StoredDoc
from keyplane.indices.mappings import StrictDynamicMapping
from keyplane.indices.service import Written
from keyplane.source_filtering import SourceFilter, source_filter

T = TypeVar("T")
_WILDCARDS = {"open", "closed", "hidden", "none", "all"}


def es_error(exc: core.IndexFailure | core.MappingFailure | StrictDynamicMapping) -> EsError:
    if isinstance(exc, StrictDynamicMapping):
        return EsError(400, "strict_dynamic_mapping_exception", str(exc))
    if isinstance(exc, core.MappingFailure):
        err = EsError(400, "mapper_parsing_exception", str(exc))
        if exc.cause is not None:
            err.caused_by = {"type": "illegal_argument_exception", "reason": exc.cause}
            err.root_cause = {"type": "mapper_parsing_exception", "reason": str(exc)}
        return err
    where = {"index_uuid": exc.uuid, "index": exc.index}
    if isinstance(exc, core.IndexMissing):
        extra = {"resource.type": "index_or_alias", "resource.id": exc.index, **where}
        return EsError(404, "index_not_found_exception", str(exc), extra=extra)
    if isinstance(exc, core.InvalidIndexName):
        return EsError(400, "invalid_index_name_exception", str(exc), extra=where)
    if isinstance(exc, core.IndexExists):
        return EsError(400, "resource_already_exists_exception", str(exc), extra=where)
    shard = {"index_uuid": exc.uuid, "shard": "0", "index": exc.index}
    if isinstance(exc, core.VersionConflict):
        return EsError(409, "version_conflict_engine_exception", str(exc), extra=shard)
    return EsError(404, "document_missing_exception", str(exc), extra=shard)


def renders_index_errors(handler: Callable[[RestRequest], Awaitable[T]]) -> Callable[[RestRequest], Awaitable[T]]:
    """Render the indices domain's errors, which name their index, in Elasticsearch's shape."""

    @functools.wraps(handler)
    async def wrapped(request: RestRequest) -> T:
        try:
            return await handler(request)
        except (core.IndexFailure, core.MappingFailure, StrictDynamicMapping) as exc:
            raise es_error(exc) from None

    return wrapped


def expressions(request: RestRequest) -> list[str]:
    """The ``{index}`` path part as a list of index expressions, date math (``<logs-{now/d}>``) resolved."""
    names = [n for n in request.path_params.get("index", "").split(",") if n]
    if not any(n.startswith("<") for n in names):
        return names
    now = datetime.now(UTC)
    return [datemath.resolve(n, now) for n in names]


def expand(request: RestRequest, *, allow_no_indices: bool = True) -> Expand:
    wildcards = set(request.list_param("expand_wildcards") or ["open"])
    unknown = sorted(wildcards - _WILDCARDS)
    if unknown:
        raise EsError(400, "illegal_argument_exception", f"No valid expand wildcard value [{unknown[0]}]")
    return Expand(
        ignore_unavailable=request.flag("ignore_unavailable"),
        allow_no_indices=request.flag("allow_no_indices", allow_no_indices),
        wildcards=frozenset(wildcards),
    )


def source_param(request: RestRequest) -> SourceFilter:
    """The ``_source``, ``_source_includes`` and ``_source_excludes`` parameters of a get."""
    value = request.param("_source")
    includes, excludes = request.list_param("_source_includes"), request.list_param("_source_excludes")
    return source_filter(value if value is not None else True, includes, excludes)


def found(index: str, doc: StoredDoc, source: SourceFilter) -> dict[str, Any]:
    """A document a get or a multi-get found, with its source as ``source`` filters it."""
    answer: dict[str, Any] = {
        "_index": index,
        "_id": doc.id,
        "_version": doc.version,
        "_seq_no": doc.seq_no,
        "_primary_term": doc.primary_term,
        "found": True,
    }
    shown = source.apply(doc.source)
    if shown is not None:
        answer["_source"] = shown
    return answer


def shards(meta: IndexMeta) -> dict[str, int]:
    """A write's ``_shards``: the primary plus its replicas, of which only the primary exists here."""
    return {"total": 1 + meta.replicas, "successful": 1, "failed": 0}


def written_view(written: Written, shown: SourceFilter | None = None, status: int | None = None) -> dict[str, Any]:
    """A document write's answer (single writes and each bulk item); with ``shown``, an update's ``get``
    block shows the document it left, as a get would; ``status`` ends a bulk item's."""
    noop = written.result == "noop"
    out: dict[str, Any] = {
        "_index": written.index.name,
        "_id": written.id,
        "_version": written.version,
        "result": written.result,
        "_shards": {"total": 0, "successful": 0, "failed": 0} if noop else shards(written.index),
        "_seq_no": written.seq_no,
        "_primary_term": written.primary_term,
    }
    if written.forced_refresh:
        out["forced_refresh"] = True
    source = shown.apply(written.source) if shown is not None and written.source is not None else None
    if source is not None:
        out["get"] = {"_seq_no": written.seq_no, "_primary_term": written.primary_term, "found": True}
        out["get"]["_source"] = source
    if status is not None:
        out["status"] = status
    return out
