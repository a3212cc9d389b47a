"""Searching content indices in memory: the query over ``_source`` (the one query engine), sort keys
with Elasticsearch's missing-last rule, scores, the result window and how many hits are counted.

Hits of several indices come in index-name order, each index's documents in sequence-number order,
unless the request sorts them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from keyplane.errors import InvalidArgument, KeyplaneError, ParseError
from keyplane.indices.core import IndexMeta, StoredDoc
from keyplane.indices.date_formats import NANOS_PER_MS, DateUnparsable, format_nanos, parse_nanos
from keyplane.indices.fields import IndexFields
from keyplane.query import memory
from keyplane.query.dates import parse_date
from keyplane.query.fields import Field, FieldType
from keyplane.query.parser import Rules, parse_query
from keyplane.query.tree import Bool, Query
from keyplane.source_filtering import SourceFilter

MAX_RESULT_WINDOW = 10_000
MAX_TERMS_COUNT = 65_536  # index.max_terms_count's default
TRACK_TOTAL_HITS = 10_000  # Elasticsearch counts exactly up to this many hits by default
SortKind = Literal["field", "_doc", "_score"]


class ResultWindowTooLarge(KeyplaneError):
    """``from + size`` (a scroll's batch size) beyond ``index.max_result_window``; a shard failure in Elasticsearch."""


@dataclass(frozen=True)
class SortSpec:
    """A sort key: a field (its public name), ``_doc`` or ``_score``; missing values last unless ``missing_first``."""

    name: str
    kind: SortKind = "field"
    desc: bool = False
    missing_first: bool = False
    format: str | None = None  # a date key's values printed in this format instead of as numbers


@dataclass(frozen=True)
class HitView:
    """What each hit shows besides its index, id and score (a scroll's batches show the same)."""

    source: SourceFilter = SourceFilter()
    seq_no_primary_term: bool = False
    version: bool = False
    # ``docvalue_fields`` and ``fields``: (name, format or None), values derived from ``_source``.
    fields: tuple[tuple[str, str | None], ...] = ()


def parse_field_list(value: Any, what: str) -> tuple[tuple[str, str | None], ...]:
    """``docvalue_fields``/``fields``: names, or ``{field, format}`` objects, or a comma-separated parameter."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else [value]
    out: list[tuple[str, str | None]] = []
    for item in items:
        if isinstance(item, str) and item:
            out.append((item, None))
        elif isinstance(item, dict) and isinstance(item.get("field"), str):
            fmt = item.get("format")
            out.append((item["field"], fmt if isinstance(fmt, str) else None))
        else:
            raise ParseError(f"[{what}] expected an array of field names or objects with a [field]")
    return tuple(out)


def hit_fields(hit: Hit, view: HitView) -> dict[str, list[Any]]:
    """The ``fields`` of a hit: each requested field's values (wildcards match the mapped and source fields)."""
    fields = IndexFields(hit.index.mappings)
    out: dict[str, list[Any]] = {}
    for name, fmt in view.fields:
        names = [name]
        if "*" in name:
            known = set(fields.names()) | set(_leaf_paths(hit.doc.source))
            names = sorted(n for n in known if fnmatch.fnmatchcase(n, name))
        for one in names:
            values = fields.values(hit.doc.source, one, fmt)
            if values is not None:
                out[one] = values
    return out


def _leaf_paths(source: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in source.items():
        if isinstance(value, dict):
            yield from _leaf_paths(value, f"{prefix}{key}.")
        else:
            yield prefix + key


@dataclass(frozen=True)
class SearchRequest:
    query: Any = None  # the query DSL as sent, parsed over each index's fields
    sort: tuple[SortSpec, ...] = ()
    start: int = 0
    size: int = 10
    track_total_hits: bool | int = TRACK_TOTAL_HITS
    view: HitView = HitView()
    search_after: tuple[Any, ...] | None = None  # hits sorting after these sort values


@dataclass(frozen=True)
class Hit:
    index: IndexMeta
    doc: StoredDoc
    score: float | None
    sort: tuple[Any, ...] | None  # the hit's sort values, when the search is sorted


@dataclass(frozen=True)
class SearchResult:
    """All matching hits in order (a scroll pages through them); ``total`` as counted, None when not tracked."""

    hits: tuple[Hit, ...]
    total: int | None
    total_is_exact: bool
    max_score: float | None
    offset: int = 0  # the position of ``hits[0]`` among all hits (a result that holds one page only)

    def page(self, start: int, size: int) -> tuple[Hit, ...]:
        if size <= 0:
            return ()
        first = max(start - self.offset, 0)
        return self.hits[first : start - self.offset + size]


# -- request rules ---------------------------------------------------------------------------------------


def check_paging(start: int, size: int) -> None:
    if start < 0:
        raise InvalidArgument(f"[from] parameter cannot be negative but was [{start}]")
    if size < 0:
        raise InvalidArgument(f"[size] parameter cannot be negative, found [{size}]")


def max_result_window(meta: IndexMeta) -> int:
    return _setting(meta, "index.max_result_window", MAX_RESULT_WINDOW)


def check_window(indices: Sequence[IndexMeta], start: int, size: int, *, scroll: bool) -> None:
    """Elasticsearch's result-window limit, checked per index as each shard checks it."""
    for meta in indices:
        limit = max_result_window(meta)
        if scroll and size > limit:
            raise ResultWindowTooLarge(
                f"Batch size is too large, size must be less than or equal to: [{limit}] but was [{size}]. "
                "Scroll batch sizes cost as much memory as result windows so they are controlled by the "
                "[index.max_result_window] index level setting."
            )
        if not scroll and start + size > limit:
            raise ResultWindowTooLarge(
                f"Result window is too large, from + size must be less than or equal to: [{limit}] but was "
                f"[{start + size}]. See the scroll api for a more efficient way to request large data sets. "
                "This limit can be set by changing the [index.max_result_window] index level setting."
            )


def _setting(meta: IndexMeta, key: str, default: int) -> int:
    try:
        return int(meta.settings.get(key, default))
    except (TypeError, ValueError):
        return default


def _terms_sizes(query: Any) -> Iterator[int]:
    """How many values each ``terms`` query inside ``query`` lists."""
    if isinstance(query, list):
        for item in query:
            yield from _terms_sizes(item)
    elif isinstance(query, dict):
        for key, value in query.items():
            if key == "terms" and isinstance(value, dict):
                yield from (len(v) for v in value.values() if isinstance(v, list))
            else:
                yield from _terms_sizes(value)


def check_terms_count(meta: IndexMeta, query: Any) -> None:
    """Elasticsearch's limit on the values of one terms query (``index.max_terms_count``)."""
    limit = _setting(meta, "index.max_terms_count", MAX_TERMS_COUNT)
    for count in _terms_sizes(query):
        if count > limit:
            raise InvalidArgument(
                f"The number of terms [{count}] used in the Terms Query request has exceeded the allowed maximum "
                f"of [{limit}]. This maximum can be set by changing the [index.max_terms_count] index level setting."
            )


@dataclass(frozen=True)
class TermsLookup:
    """A terms query's ``{index, id, path}``: its values are those at ``path`` in that document."""

    index: str
    id: str
    path: str


def terms_lookups(query: Any) -> list[TermsLookup]:
    """Every terms lookup inside ``query``."""
    found: list[TermsLookup] = []
    pending = [query]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending += node
        elif isinstance(node, dict):
            for key, value in node.items():
                if key == "terms" and isinstance(value, dict):
                    found += [lookup for spec in value.values() if (lookup := _lookup(spec)) is not None]
                else:
                    pending.append(value)
    return found


def _lookup(spec: Any) -> TermsLookup | None:
    if not isinstance(spec, dict):
        return None
    index, doc_id, path = spec.get("index"), spec.get("id"), spec.get("path")
    if not (isinstance(index, str) and isinstance(doc_id, (str, int)) and isinstance(path, str)):
        raise ParseError("[terms] query lookup element requires specifying the index, the id and the path")
    return TermsLookup(index, str(doc_id), path)


def with_lookups(query: Any, values: dict[TermsLookup, list[Any]]) -> Any:
    """``query`` with each terms lookup replaced by the values it found."""
    if isinstance(query, list):
        return [with_lookups(item, values) for item in query]
    if not isinstance(query, dict):
        return query
    out: dict[str, Any] = {}
    for key, value in query.items():
        if key == "terms" and isinstance(value, dict):
            out[key] = {f: values.get(lookup, []) if (lookup := _lookup(v)) else v for f, v in value.items()}
        else:
            out[key] = with_lookups(value, values)
    return out


def lookup_values(source: dict[str, Any] | None, path: str) -> list[Any]:
    """The scalar values at ``path`` in a looked-up document (none when it is missing)."""
    if source is None:
        return []
    return [v for v in memory.values(source, path) if not isinstance(v, (dict, list))]


def track_total_hits(value: Any) -> bool | int:
    """``track_total_hits`` as a body or parameter gives it: a boolean or a count (-1: exact)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise ParseError(f"[track_total_hits] expected a boolean or a number but was [{value}]") from None
    if count == -1:
        return True
    if count < 0:
        raise InvalidArgument(f"[track_total_hits] parameter must be positive or equals to -1, got {count}")
    return count


def check_search_after(values: Any, sort: Sequence[SortSpec]) -> tuple[Any, ...]:
    """``search_after``: one scalar per sort key."""
    if not isinstance(values, list):
        raise ParseError("[search_after] must be an array")
    for value in values:
        if isinstance(value, (dict, list)):
            found = "START_OBJECT" if isinstance(value, dict) else "START_ARRAY"
            raise ParseError(
                "Expected [VALUE_STRING] or [VALUE_NUMBER] or [VALUE_BOOLEAN] or [VALUE_NULL] "
                f"but found [{found}] inside search_after."
            )
    if sort and len(values) != len(sort):
        raise InvalidArgument(f"search_after has {len(values)} value(s) but sort has {len(sort)}.")
    return tuple(values)


def _one_sort(name: str, spec: Any) -> SortSpec:
    options: dict[str, Any] = {}
    order: Any = spec
    if isinstance(spec, dict):
        options = spec
        order = spec.get("order")
    if order is not None and order not in ("asc", "desc"):
        raise ParseError(f"[sort] unknown order [{order}]")
    if name == "_id":
        raise InvalidArgument(
            "Fielddata access on the _id field is disallowed, you can re-enable it by updating the dynamic "
            "cluster setting: indices.id_field_data.enabled"
        )
    kind: SortKind = "_doc" if name == "_doc" else "_score" if name == "_score" else "field"
    default_desc = kind == "_score"
    desc = default_desc if order is None else order == "desc"
    fmt = options.get("format")
    return SortSpec(name, kind, desc, options.get("missing") == "_first", fmt if isinstance(fmt, str) else None)


def parse_sort(sort: Any) -> tuple[SortSpec, ...]:
    """Sort keys from ``"field"``, ``"field:desc"``, ``{field: order}`` or ``{field: {order, missing}}``, or a list."""
    if sort is None:
        return ()
    keys: list[SortSpec] = []
    for spec in sort if isinstance(sort, list) else [sort]:
        if isinstance(spec, str):
            name, _, order = spec.partition(":")
            keys.append(_one_sort(name, order or None))
        elif isinstance(spec, dict) and len(spec) == 1:
            name, order = next(iter(spec.items()))
            keys.append(_one_sort(name, order))
        else:
            raise ParseError("malformed sort format, within the sort array, an object, or an actual string are allowed")
    return tuple(keys)


# -- evaluation ------------------------------------------------------------------------------------------


def _scores(query: Query) -> bool:
    """Whether the query scores hits: a bool of only filter and must_not clauses gives every hit 0."""
    return not (isinstance(query, Bool) and not query.must and not query.should)


def _comparable(value: Any) -> tuple[int, Any]:
    """Numbers (booleans as 0 and 1) before text before anything else, so that sorting never fails."""
    if isinstance(value, bool):
        return 0, int(value)
    if isinstance(value, (int, float)):
        return 0, value
    if isinstance(value, str):
        return 1, value
    return 2, str(value)


def _date(value: Any) -> Any:
    try:
        return parse_date(value)
    except KeyplaneError:
        return value  # not a date: it sorts among the other values


def _sort_value(view: dict[str, Any], field: Field, desc: bool) -> Any:
    """The value a document sorts by: its least value ascending, its greatest descending (arrays);
    a date field's values as epoch milliseconds, as Elasticsearch sorts and returns them."""
    found = [v for v in memory.values(view, field.name) if not isinstance(v, (dict, list))]
    if field.type is FieldType.DATE:
        found = [_date(v) for v in found]
    if not found:
        return None
    value = (max if desc else min)(found, key=_comparable)
    return int(value) if isinstance(value, bool) else value


def _after(keys: Sequence[Any], after: Sequence[Any], sort: Sequence[SortSpec]) -> bool:
    """Whether a hit's sort values come after ``after`` in the order of the sort keys."""
    for value, bound, key in zip(keys, after, sort, strict=False):
        if value == bound:
            continue
        if value is None or bound is None:
            return (value is None) != key.missing_first
        if key.kind == "field" and isinstance(value, int) and isinstance(bound, str):
            bound = _date(bound)
        ahead, behind = _comparable(value), _comparable(bound)
        return ahead < behind if key.desc else ahead > behind
    return False


@dataclass
class _Row:
    index: IndexMeta
    doc: StoredDoc
    position: int
    score: float
    keys: list[Any]  # what the hit sorts by (a date in nanoseconds, so date and date_nanos fields compare)
    shown: list[Any]  # its sort values as the answer shows them
    after: bool = True  # whether it sorts after ``search_after``


@dataclass(frozen=True)
class _DateKey:
    """A date sort key on one index: its values' format in the mappings, and whether they are nanoseconds."""

    mapping_format: str | None
    nanos: bool

    def key(self, view: dict[str, Any], field: Field, desc: bool) -> int | None:
        found: list[int] = []
        for value in memory.values(view, field.name):
            if isinstance(value, (dict, list)):
                continue
            try:
                found.append(parse_nanos(value, self.mapping_format))
            except DateUnparsable:
                continue  # a value the field would have refused
        if not found:
            return None
        return max(found) if desc else min(found)

    def shown(self, nanos: int | None, fmt: str | None) -> Any:
        if nanos is None:
            return None
        if fmt is not None:
            return format_nanos(nanos, fmt)
        return nanos if self.nanos else nanos // NANOS_PER_MS

    def bound(self, value: Any, fmt: str | None) -> Any:
        """A ``search_after`` value as this key compares it: a number in the unit shown, or text in ``fmt``."""
        if value is None:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value) if self.nanos else int(value * NANOS_PER_MS)
        return parse_nanos(value, fmt or self.mapping_format)


def _date_key(fields: IndexFields, key: SortSpec, field: Field | None) -> _DateKey | None:
    if key.kind != "field" or field is None:
        return None
    declared = fields.declared(key.name)
    if declared not in ("date", "date_nanos") and field.type is not FieldType.DATE:
        return None
    return _DateKey(fields.date_format(key.name), declared == "date_nanos")


def parsed_query(meta: IndexMeta, request: SearchRequest, fields: IndexFields | None = None) -> Query:
    """The request's query over the index's fields (``fields``, when already built), its limits checked."""
    check_terms_count(meta, request.query)
    return parse_query(request.query, Rules(fields or IndexFields(meta.mappings), strict=False))


def pages_in_order(request: SearchRequest) -> bool:
    """Whether the hits come in index and sequence-number order and one page is all the answer needs:
    no sort key, no ``search_after`` (scores are constant, so they order nothing)."""
    return not request.sort and request.search_after is None


def page_result(
    pages: Sequence[tuple[IndexMeta, Query, Sequence[StoredDoc], int]], request: SearchRequest
) -> SearchResult:
    """The result of an unsorted search from each index's page of matches and exact count, as ``run``
    would give it for the page ``request`` asks for."""
    hits: list[Hit] = []
    total = 0
    max_score: float | None = None
    for meta, query, docs, count in pages:
        score = 1.0 if _scores(query) else 0.0
        hits += [Hit(meta, doc, score, None) for doc in docs]
        total += count
        if count:
            max_score = score if max_score is None else max(max_score, score)
    shown, exact = _reported_total(request.track_total_hits, total)
    return SearchResult(tuple(hits), shown, exact, max_score, offset=request.start)


def _reported_total(limit: bool | int, total: int) -> tuple[int | None, bool]:
    """``hits.total`` as ``track_total_hits`` asks: none, exact, or a lower bound at the limit."""
    if limit is False:
        return None, False
    exact = limit is True or total <= int(limit)
    return (total if exact else int(limit)), exact


def run(indices: Sequence[tuple[IndexMeta, Iterable[StoredDoc]]], request: SearchRequest) -> SearchResult:
    """Match, sort and count the documents of the indices (each given with its documents in sequence order)."""
    rows: list[_Row] = []
    position = 0
    for meta, documents in indices:
        fields = IndexFields(meta.mappings)
        query = parsed_query(meta, request, fields)
        match = memory.compile_query(query)
        score = 1.0 if _scores(query) else 0.0
        paths = [fields.resolve(key.name) if key.kind == "field" else None for key in request.sort]
        dates = [_date_key(fields, key, field) for key, field in zip(request.sort, paths, strict=True)]
        bounds: list[Any] | None = None
        if request.search_after is not None and request.sort:
            bounds = [
                date.bound(value, key.format) if date is not None else value
                for value, key, date in zip(request.search_after, request.sort, dates, strict=False)
            ]
        for doc in documents:
            position += 1
            view = {**doc.source, "_id": doc.id}
            if not match(view):
                continue
            keys: list[Any] = []
            printed: list[Any] = []
            for key, field, date in zip(request.sort, paths, dates, strict=True):
                if key.kind == "_doc":
                    keys.append(position)
                elif key.kind == "_score":
                    keys.append(score)
                elif date is not None and field is not None:
                    keys.append(date.key(view, field, key.desc))
                    printed.append(date.shown(keys[-1], key.format))
                    continue
                else:
                    keys.append(_sort_value(view, field or Field(key.name, FieldType.KEYWORD), key.desc))
                printed.append(keys[-1])
            after = bounds is None or _after(keys, bounds, request.sort)
            rows.append(_Row(meta, doc, position, score, keys, printed, after))
    for i in reversed(range(len(request.sort))):  # stable sorts, the last key first
        key = request.sort[i]
        present = [r for r in rows if r.keys[i] is not None]
        missing = [r for r in rows if r.keys[i] is None]
        present.sort(key=lambda r: _comparable(r.keys[i]), reverse=key.desc)
        rows = missing + present if key.missing_first else present + missing
    total = len(rows)  # search_after pages through the hits; they all count
    if request.search_after is not None and request.sort:
        rows = [r for r in rows if r.after]
    scored = not request.sort or all(key.kind == "_score" for key in request.sort)
    shown, exact = _reported_total(request.track_total_hits, total)
    hits = tuple(
        Hit(r.index, r.doc, r.score if scored else None, tuple(r.shown) if request.sort else None) for r in rows
    )
    max_score = max((r.score for r in rows), default=None) if scored else None
    return SearchResult(hits, shown, exact, max_score)
