"""Connectors and sync jobs seen as Elasticsearch sees them: documents of two hidden indices.

The Elastic connectors service reads and writes ``.elastic-connectors`` and
``.elastic-connectors-sync-jobs`` through the document APIs. Their documents are the very records
the Connector APIs keep, so this module holds the rules of that view: the index names and aliases,
the field map queries are parsed over (from Elasticsearch's index templates), the version a
document reports, the compare-and-set check of ``if_seq_no``, ``_source`` filtering and the
in-memory search. Nothing here knows HTTP or SQL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from keyplane.connectors.model import Doc
from keyplane.errors import Conflict, InvalidArgument, KeyplaneError, ValidationError
from keyplane.query import memory
from keyplane.query.dates import parse_date
from keyplane.query.fields import Field, FieldMap, FieldType
from keyplane.query.parser import Rules, parse_query, parse_sort
from keyplane.query.tree import Bool, Query, SortKey

PRIMARY_TERM = 1  # one shard that never fails over: every document is on the first primary term
# Elasticsearch counts a search's hits exactly up to this many unless asked to count them all.
TRACK_TOTAL_HITS = 10_000
MAX_JOB_ID = 64


class Kind(Enum):
    """Which of the two indices: the connectors or their sync jobs."""

    CONNECTORS = ".elastic-connectors-v1"
    SYNC_JOBS = ".elastic-connectors-sync-jobs-v1"

    @property
    def index(self) -> str:
        """The concrete index name, which answers carry as ``_index``."""
        return self.value

    @property
    def alias(self) -> str:
        return self.value.removesuffix("-v1")

    @property
    def uuid(self) -> str:
        """A stable index uuid, 22 characters like Elasticsearch's: a hash of the concrete name."""
        return hashlib.sha256(self.value.encode()).hexdigest()[:22]


# Every name that reaches one of the indices: the concrete name and its alias.
NAMES: dict[str, Kind] = {name: kind for kind in Kind for name in (kind.index, kind.alias)}


def kind_of(name: str) -> Kind | None:
    return NAMES.get(name)


# -- fields ----------------------------------------------------------------------------------------------
# The mapped fields of Elasticsearch's templates for the two indices (elastic-connectors-mappings.json,
# elastic-connectors-sync-jobs-mappings.json). Numbers are queried as keywords (a term on a count
# matches its text); object fields are reached by their dotted paths.

K, T, D, B = FieldType.KEYWORD, FieldType.TEXT, FieldType.DATE, FieldType.BOOLEAN


def _filtering_fields(prefix: str) -> dict[str, FieldType]:
    fields: dict[str, FieldType] = {f"{prefix}.domain": K}
    for part in ("active", "draft") if prefix == "filtering" else ("",):
        base = f"{prefix}.{part}" if part else prefix
        fields |= {
            f"{base}.advanced_snippet.created_at": D,
            f"{base}.advanced_snippet.updated_at": D,
            f"{base}.rules.created_at": D,
            f"{base}.rules.updated_at": D,
            f"{base}.rules.field": K,
            f"{base}.rules.id": K,
            f"{base}.rules.order": K,
            f"{base}.rules.policy": K,
            f"{base}.rules.rule": K,
            f"{base}.rules.value": K,
        }
        if part:
            fields |= {f"{base}.validation.errors.ids": K, f"{base}.validation.errors.messages": T}
            fields[f"{base}.validation.state"] = K
    return fields


_PIPELINE = {"extract_binary_content": B, "name": K, "reduce_whitespace": B, "run_ml_inference": B}

CONNECTOR_FIELDS: dict[str, FieldType] = {
    "_id": K,
    "api_key_id": K,
    "api_key_secret_id": K,
    "connector_id": K,
    "deleted": B,
    "description": T,
    "error": K,
    "features.filtering_advanced_config": B,
    "features.filtering_rules": B,
    "features.incremental_sync.enabled": B,
    "features.sync_rules.advanced.enabled": B,
    "features.sync_rules.basic.enabled": B,
    **_filtering_fields("filtering"),
    "index_name": K,
    "is_native": B,
    "language": K,
    "last_access_control_sync_error": K,
    "last_access_control_sync_scheduled_at": D,
    "last_access_control_sync_status": K,
    "last_deleted_document_count": K,
    "last_incremental_sync_scheduled_at": D,
    "last_indexed_document_count": K,
    "last_seen": D,
    "last_sync_error": K,
    "last_sync_scheduled_at": D,
    "last_sync_status": K,
    "last_synced": D,
    "name": K,
    **{f"pipeline.{name}": kind for name, kind in _PIPELINE.items()},
    **{
        f"scheduling.{job}.{name}": kind
        for job in ("access_control", "full", "incremental")
        for name, kind in (("enabled", B), ("interval", T))
    },
    "service_type": K,
    "status": K,
    "sync_now": B,
}

SYNC_JOB_FIELDS: dict[str, FieldType] = {
    "_id": K,
    "cancelation_requested_at": D,
    "canceled_at": D,
    "completed_at": D,
    **_filtering_fields("connector.filtering"),
    "connector.filtering.warnings.ids": K,
    "connector.filtering.warnings.messages": T,
    "connector.id": K,
    "connector.index_name": K,
    "connector.language": K,
    **{f"connector.pipeline.{name}": kind for name, kind in _PIPELINE.items()},
    "connector.service_type": K,
    "created_at": D,
    "deleted_document_count": K,
    "error": K,
    "indexed_document_count": K,
    "indexed_document_volume": K,
    "job_type": K,
    "last_seen": D,
    "started_at": D,
    "status": K,
    "total_document_count": K,
    "trigger_method": K,
    "worker_hostname": K,
}


class DocumentFields(FieldMap):
    """The mapped fields, and any other path as a keyword.

    Elasticsearch maps these indices with ``dynamic: false``, so it finds nothing under an unmapped
    path; reading the stored value there instead is kinder to a query over ``configuration.*`` and
    never refuses what Elasticsearch accepts.
    """

    def resolve(self, name: str) -> Field | None:
        found = super().resolve(name)
        if found is None and isinstance(name, str) and name and not name.startswith("_"):
            return Field(name, FieldType.KEYWORD)
        return found


FIELDS = {
    Kind.CONNECTORS: DocumentFields.of(CONNECTOR_FIELDS),
    Kind.SYNC_JOBS: DocumentFields.of(SYNC_JOB_FIELDS),
}
_DATES = {
    kind: tuple(n for n, t in fields.items() if t is FieldType.DATE)
    for kind, fields in ((Kind.CONNECTORS, CONNECTOR_FIELDS), (Kind.SYNC_JOBS, SYNC_JOB_FIELDS))
}


# -- versions ----------------------------------------------------------------------------------------------
# A stored record counts its writes (1 when created). Elasticsearch's first write of a document is
# ``_seq_no`` 0, ``_version`` 1, and each write adds one to both: one counter gives both numbers, and
# the Connector APIs and the document APIs advance the same counter.


def seq_no_of(writes: int) -> int:
    return writes - 1


def version_of(writes: int) -> int:
    return writes


def writes_of(seq_no: int) -> int:
    return seq_no + 1


def version_conflict(doc_id: str, if_seq_no: int, if_primary_term: int, current: int | None) -> Conflict:
    """Elasticsearch's refusal of a write whose ``if_seq_no``/``if_primary_term`` no longer hold."""
    required = f"[{doc_id}]: version conflict, required seqNo [{if_seq_no}], primary term [{if_primary_term}]."
    if current is None:
        return Conflict(f"{required} but no document was found")
    return Conflict(f"{required} current document has seqNo [{current}] and primary term [{PRIMARY_TERM}]")


def already_exists(doc_id: str, writes: int) -> Conflict:
    return Conflict(f"[{doc_id}]: version conflict, document already exists (current version [{version_of(writes)}])")


@dataclass(frozen=True)
class Precondition:
    """``if_seq_no`` and ``if_primary_term`` of a write; both or neither are given."""

    seq_no: int
    primary_term: int

    def check(self, doc_id: str, writes: int | None) -> None:
        """Refuse the write unless the document is still at the version the caller read."""
        current = None if writes is None else seq_no_of(writes)
        if current is None or current != self.seq_no or self.primary_term != PRIMARY_TERM:
            raise version_conflict(doc_id, self.seq_no, self.primary_term, current)


def precondition(if_seq_no: int | None, if_primary_term: int | None) -> Precondition | None:
    """The compare-and-set a write asks for; Elasticsearch wants both numbers or neither."""
    if if_seq_no is None and if_primary_term is None:
        return None
    if if_primary_term is None:
        raise ValidationError("ifSeqNo is set, but primary term is [0]")
    if if_seq_no is None:
        raise ValidationError(f"ifSeqNo is unassigned, but primary term is [{if_primary_term}]")
    if if_seq_no < 0:
        raise ValidationError(f"sequence numbers must be non negative. got [{if_seq_no}].")
    if if_primary_term <= 0:
        raise ValidationError(f"primary term must be positive. got [{if_primary_term}]")
    return Precondition(if_seq_no, if_primary_term)


# -- documents as read and written --------------------------------------------------------------------------


class _Numbered:
    """The numbers Elasticsearch reports for a document, derived from its write count."""

    writes: int

    @property
    def seq_no(self) -> int:
        return seq_no_of(self.writes)

    @property
    def version(self) -> int:
        return version_of(self.writes)


@dataclass(frozen=True)
class DocumentRead(_Numbered):
    """A stored document with the numbers a get or a search hit reports."""

    id: str
    source: Doc
    writes: int


@dataclass(frozen=True)
class DocumentWrite(_Numbered):
    """What a write did: ``created``, ``updated``, ``deleted``, ``noop`` or ``not_found``, and the
    document's write count after it (a delete counts as one more write)."""

    id: str
    result: str
    writes: int


# -- search ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchRequest:
    """A parsed search over one of the indices."""

    query: Query
    sort: tuple[SortKey, ...] = ()
    start: int = 0
    size: int = 10
    track_total_hits: bool | int = True


@dataclass(frozen=True)
class SearchHit:
    document: DocumentRead
    score: float | None
    sort: tuple[Any, ...] | None  # the hit's sort values, when the search was sorted


@dataclass(frozen=True)
class SearchResult:
    total: int
    total_is_exact: bool
    max_score: float | None
    hits: tuple[SearchHit, ...]


def query_view(kind: Kind, doc_id: str, source: Doc) -> Doc:
    """The document as its fields are indexed: ``_id`` added and dates as epoch milliseconds."""
    view = dict(source)
    view["_id"] = doc_id
    for path in _DATES[kind]:
        _dates_to_ms(view, path.split("."))
    return view


def _dates_to_ms(node: Any, parts: list[str]) -> Any:
    """Rewrite the dates at a path (through arrays of objects) as epoch ms, copying what it changes."""
    if isinstance(node, list):
        return [_dates_to_ms(dict(item) if isinstance(item, dict) else item, parts) for item in node]
    if not isinstance(node, dict) or parts[0] not in node:
        return node
    key, rest = parts[0], parts[1:]
    if rest:
        node[key] = _dates_to_ms(dict(node[key]) if isinstance(node[key], dict) else node[key], rest)
    else:
        node[key] = _ms(node[key])
    return node


def _ms(value: Any) -> Any:
    if isinstance(value, list):
        return [_ms(v) for v in value]
    if value is None or isinstance(value, (dict, bool)):
        return value
    try:
        return parse_date(value)
    except KeyplaneError:
        return value  # not a date: it never compares with one


def _scores(query: Query) -> bool:
    """Whether the query scores hits: only filter and must_not clauses give every hit 0."""
    return not (isinstance(query, Bool) and not query.must and not query.should)


def search(kind: Kind, documents: Sequence[DocumentRead], request: SearchRequest) -> SearchResult:
    """The hits of a search, in memory: matching, sorted (by index order without sort keys), one page."""
    predicate = memory.compile_query(request.query)
    matched = [(view, d) for d in documents if predicate(view := query_view(kind, d.id, d.source))]
    sort = [key for key in request.sort if key.field.type is not FieldType.DOC]
    if sort:
        views = memory.sort_docs([view for view, _ in matched], sort)
        by_id = {d.id: d for _, d in matched}
        ordered = [(view, by_id[view["_id"]]) for view in views]
    else:
        ordered = matched
    total = len(ordered)
    limit = request.track_total_hits
    exact = limit is True or (limit is not False and total <= int(limit))
    shown_total = total if exact else int(limit)
    score: float | None = None if request.sort else (1.0 if _scores(request.query) else 0.0)
    page = ordered[request.start : request.start + request.size] if request.size > 0 else []
    hits = tuple(
        SearchHit(d, score, tuple(_sort_value(view, key) for key in request.sort) if request.sort else None)
        for view, d in page
    )
    return SearchResult(shown_total, exact, score if hits else None, hits)


def _sort_value(view: Doc, key: SortKey) -> Any:
    if key.field.type is FieldType.DOC:
        return 0
    value = memory.first_value(view, key.field.name)
    if isinstance(value, bool):
        return 1 if value else 0  # Elasticsearch sorts booleans as numbers and returns them so
    return value


def search_request(
    kind: Kind, query: Any, sort: Any, start: int, size: int, track_total_hits: bool | int = TRACK_TOTAL_HITS
) -> SearchRequest:
    """A search's query and sort parsed over the index's fields, as Elasticsearch's parser reads them."""
    rules = Rules(FIELDS[kind])
    if start < 0:
        raise InvalidArgument(f"[from] parameter cannot be negative but was [{start}]")
    if size < 0:
        raise InvalidArgument(f"[size] parameter cannot be negative, found [{size}]")
    return SearchRequest(parse_query(query, rules), tuple(parse_sort(sort, rules)), start, size, track_total_hits)


def check_job_id(doc_id: str) -> None:
    """Sync-job ids are kept in a 64-character column (generated ids have 20)."""
    if len(doc_id) > MAX_JOB_ID:
        raise InvalidArgument(
            f"id [{doc_id}] is too long, a sync job id must be no longer than {MAX_JOB_ID} characters"
        )
