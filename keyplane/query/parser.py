"""The one parser of the query DSL: query, sort and aggregation JSON into the typed tree.

What an API accepts is given by its :class:`Rules`: the index's fields, the query and aggregation
kinds it supports, and whether it parses as Elasticsearch does (``strict``). Refusals carry
Elasticsearch's messages.

``strict`` is how the API-key query parses (Elasticsearch's parser: values converted to the
field's type, unknown options refused, ``match`` on a keyword field is a term query, a
``simple_query_string`` expanded per field with its ``+``/``-`` operators, ``_doc`` sortable).
The user and role queries parse leniently, as they always have here: malformed clauses are
illegal arguments rather than parse errors, values are kept as sent, unknown options are
ignored, and ``match`` and ``simple_query_string`` look for words.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from keyplane.errors import InvalidArgument, KeyplaneError, ParseError
from keyplane.limits import check_query_depth
from keyplane.query.aggs import (
    Agg,
    CardinalityAgg,
    CompositeAgg,
    CompositeSource,
    DateRangeAgg,
    FieldAgg,
    FilterAgg,
    FiltersAgg,
    MissingAgg,
    RangeAgg,
    TermsAgg,
    ValueCountAgg,
)
from keyplane.query.dates import parse_date
from keyplane.query.fields import DOC, Field, Fields, FieldType
from keyplane.query.tree import (
    MATCH_ALL,
    Bool,
    Exists,
    Ids,
    Match,
    MatchNone,
    Prefix,
    Query,
    Range,
    RangeOp,
    SimpleQueryString,
    SortKey,
    Term,
    Terms,
    Wildcard,
)
from keyplane.timevalue import now_ms

QUERY_KINDS = frozenset(
    (
        "bool",
        "match_all",
        "ids",
        "term",
        "terms",
        "prefix",
        "wildcard",
        "match",
        "exists",
        "range",
        "simple_query_string",
    )
)
# Pipeline aggregations, refused with a message of their own.
_PIPELINE = (
    "bucket_sort",
    "bucket_selector",
    "max_bucket",
    "avg_bucket",
    "sum_bucket",
    "derivative",
    "cumulative_sum",
    "bucket_script",
)
_FIELD_AGGS: dict[str, type[FieldAgg]] = {
    agg.kind: agg for agg in (TermsAgg, RangeAgg, DateRangeAgg, MissingAgg, CardinalityAgg, ValueCountAgg)
}
_RANGE_OPS: tuple[RangeOp, ...] = ("gt", "gte", "lt", "lte")
_RANGE_IGNORED = ("format", "time_zone", "boost", "include_lower", "include_upper")
# Field types a simple_query_string searches when a field pattern names them.
_TEXTUAL = (FieldType.KEYWORD, FieldType.TEXT, FieldType.FLATTENED)


@dataclass(frozen=True)
class Rules:
    """What one API's queries may use, and how strictly they are read (see the module's docstring)."""

    fields: Fields
    strict: bool = True
    kinds: frozenset[str] = QUERY_KINDS
    aggregations: frozenset[str] = frozenset()
    unsupported_agg: str = "Unsupported agg [{name}] of type [{kind}]"  # formatted with name and kind


# A query, sort or aggregations left out of a request (the usual list) is answered without building
# a parser (3-4 µs each).
def parse_query(query: Any, rules: Rules) -> Query:
    return MATCH_ALL if query is None else _Parser(rules).query(query, 1)


def parse_sort(sort: Any, rules: Rules) -> list[SortKey]:
    """Sort keys from ``"field"``, ``"field:desc"``, ``{field: order}`` or ``{field: {order, format}}``."""
    return [] if sort is None else _Parser(rules).sort(sort)


def parse_aggs(aggs: Any, rules: Rules) -> list[Agg]:
    return [] if aggs is None else _Parser(rules).aggs(aggs)


def search_after_message(values: list[Any]) -> str | None:
    """Elasticsearch's refusal of a ``search_after`` element that is not a scalar (None when all are)."""
    for value in values:
        if isinstance(value, (dict, list)):
            found = "START_OBJECT" if isinstance(value, dict) else "START_ARRAY"
            return (
                "Expected [VALUE_STRING] or [VALUE_NUMBER] or [VALUE_BOOLEAN] or [VALUE_NULL] "
                f"but found [{found}] inside search_after."
            )
    return None


class _Parser:
    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.strict = rules.strict
        self.now = now_ms()  # one instant for every ``now`` of the query, as in Elasticsearch
        self._kinds: dict[str, Callable[[Any, int], Query]] = {
            "match_all": lambda spec, depth: MATCH_ALL,
            "ids": self._ids,
            "bool": self._bool,
            "exists": self._exists,
            "terms": self._terms,
            "range": self._range,
            "simple_query_string": self._simple_query_string,
        }
        for kind in ("term", "match", "prefix", "wildcard"):
            self._kinds[kind] = self._single_of(kind)

    def malformed(self, message: str) -> KeyplaneError:
        return ParseError(message) if self.strict else InvalidArgument(message)

    def field(self, name: Any) -> Field:
        if self.strict and isinstance(name, str) and "*" in name:
            raise InvalidArgument(f"Field name pattern [{name}] is not allowed for querying or aggregation")
        field = self.rules.fields.resolve(name)
        if field is None:
            raise InvalidArgument(f"Field [{name}] is not allowed for querying or aggregation")
        return field

    def coerce(self, name: str, field: Field, value: Any) -> Any:
        """A query value in the field's representation (strict parsing)."""
        if field.type is FieldType.DATE:
            return parse_date(value, now=self.now)
        if field.type is FieldType.BOOLEAN:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false"):
                return str(value).lower() == "true"
            raise ParseError(f"Can't parse boolean value [{value}], expected [true] or [false]")
        if isinstance(value, (dict, list)):
            raise ParseError(f"[{name}] expects a single value")
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else str(value)

    # -- queries --------------------------------------------------------------------------------------

    def query(self, query: Any, depth: int) -> Query:
        if query is None:
            return MATCH_ALL
        if self.strict:
            check_query_depth(depth)
        if not isinstance(query, dict) or len(query) != 1:
            raise self.malformed("query malformed, must start with start_object")
        if not self.strict:  # the user and role queries have checked the shape first
            check_query_depth(depth)
        kind, spec = next(iter(query.items()))
        if kind not in self.rules.kinds:
            raise InvalidArgument(f"Query type [{kind}] is not currently supported in this context")
        return self._kinds[kind](spec, depth)

    def _ids(self, spec: Any, depth: int) -> Query:
        values = spec.get("values") if isinstance(spec, dict) else None
        if not isinstance(values, list):
            if self.strict:
                raise ParseError("[ids] query requires [values]")
            values = []
        return Ids(tuple(str(v) for v in values))

    def _bool(self, spec: Any, depth: int) -> Query:
        if not isinstance(spec, dict):
            raise self.malformed("[bool] query malformed")
        groups: dict[str, tuple[Query, ...]] = {}
        for key in ("must", "filter", "should", "must_not"):
            value = spec.get(key, [])
            value = value if isinstance(value, list) else [value]
            groups[key] = tuple(self.query(q, depth + 1) for q in value)
        if self.strict:
            for key in spec:
                if key not in ("must", "filter", "should", "must_not", "minimum_should_match", "boost", "_name"):
                    raise ParseError(f"[bool] query does not support [{key}]")
        minimum = spec.get("minimum_should_match")
        if minimum is not None:
            minimum = int(str(minimum).rstrip("%")) if self.strict else int(minimum)
        return self._normalised(Bool(**groups, minimum_should_match=minimum))

    def _normalised(self, clause: Bool) -> Bool:
        """The API-key query's reading of ``minimum_should_match``: without ``should`` clauses it says
        nothing, and ``should`` beside only ``must_not`` clauses is optional."""
        if not self.strict:
            return clause
        minimum = clause.minimum_should_match
        if not clause.should:
            minimum = None
        elif minimum is None and clause.must_not and not (clause.must or clause.filter):
            minimum = 0
        if minimum == clause.minimum_should_match:
            return clause
        return Bool(clause.must, clause.filter, clause.should, clause.must_not, minimum)

    def _exists(self, spec: Any, depth: int) -> Query:
        if self.strict:
            valid = isinstance(spec, dict) and isinstance(spec.get("field"), str)
        else:
            valid = isinstance(spec, dict) and "field" in spec
        if not valid:
            raise self.malformed("[exists] must be provided with a [field]")
        return Exists(self.field(spec["field"]))

    def _terms(self, spec: Any, depth: int) -> Query:
        if not isinstance(spec, dict) or (not self.strict and len(spec) != 1):
            raise self.malformed("[terms] query malformed")
        fields = {k: v for k, v in spec.items() if k != "boost"} if self.strict else spec
        if len(fields) != 1:
            raise ParseError("[terms] query requires exactly one field")
        name, values = next(iter(fields.items()))
        if isinstance(values, dict) or (not self.strict and not isinstance(values, list)):
            raise InvalidArgument("terms query with terms lookup is not currently supported in this context")
        if not isinstance(values, list):
            raise ParseError("[terms] query requires an array of values")
        field = self.field(name)
        if self.strict:
            return Terms(field, tuple(self.coerce(name, field, v) for v in values))
        return Terms(field, tuple(v for v in values if not isinstance(v, (dict, list))))

    def _range(self, spec: Any, depth: int) -> Query:
        if not isinstance(spec, dict) or len(spec) != 1:
            raise self.malformed("[range] query malformed")
        name, bounds = next(iter(spec.items()))
        if not isinstance(bounds, dict):
            raise self.malformed("[range] query malformed, no start_object after query name")
        if "relation" in bounds:
            raise InvalidArgument("range query with relation is not currently supported in this context")
        field = self.field(name)
        if not self.strict:
            return Range(field, tuple((op, bounds[op]) for op in _RANGE_OPS if op in bounds))
        out: dict[RangeOp, Any] = {}
        aliases: dict[str, RangeOp] = {"from": "gte", "to": "lte", "gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}
        for key, value in bounds.items():
            if key in _RANGE_IGNORED:
                continue
            op = aliases.get(key)
            if op is None:
                raise ParseError(f"[range] query does not support [{key}]")
            if value is None:
                continue
            if field.type is FieldType.DATE:
                out[op] = parse_date(value, round_up=op in ("gt", "lte"), now=self.now)
            else:
                out[op] = self.coerce(name, field, value)
        return Range(field, tuple(out.items()))

    def _simple_query_string(self, spec: Any, depth: int) -> Query:
        if not self.strict:
            if not isinstance(spec, dict) or "query" not in spec:
                raise InvalidArgument("[simple_query_string] requires a [query]")
            named = [self.field(f) for f in spec.get("fields", [])]
            return SimpleQueryString(str(spec["query"]), tuple(named) if named else None)
        if not isinstance(spec, dict) or not isinstance(spec.get("query"), str):
            raise ParseError("[simple_query_string] requires a [query]")
        fields: list[Field] = []
        for pattern in spec.get("fields") or ["*"]:
            pattern = pattern.split("^")[0]  # a boost
            if "*" in pattern:
                fields += self._matching_fields(pattern)
            else:
                fields.append(self.field(pattern))
        if not fields:
            return MatchNone()
        default_and = str(spec.get("default_operator", "or")).lower() == "and"
        must: list[Query] = []
        should: list[Query] = []
        must_not: list[Query] = []
        for token in spec["query"].split():
            negate, required = token.startswith("-"), token.startswith("+")
            text = token.lstrip("+-")
            if not text:
                continue
            # Each field holds the whole value as one term: a token matches it whole, or as a prefix.
            per_field = tuple(
                Prefix(f, text[:-1], True) if text.endswith("*") else Term(f, text, True)
                for f in fields
                if f.type not in (FieldType.DATE, FieldType.BOOLEAN)
            )
            clause = self._normalised(Bool(should=per_field, minimum_should_match=1))
            if negate:
                must_not.append(clause)
            elif required or default_and:
                must.append(clause)
            else:
                should.append(clause)
        minimum = 1 if should and not must else 0
        return self._normalised(
            Bool(must=tuple(must), should=tuple(should), must_not=tuple(must_not), minimum_should_match=minimum)
        )

    def _matching_fields(self, pattern: str) -> list[Field]:
        out = []
        for name in self.rules.fields.names():
            field = self.rules.fields.resolve(name)
            if field is not None and field.type in _TEXTUAL and fnmatch.fnmatchcase(name, pattern):
                out.append(field)
        return out

    def _single_of(self, kind: str) -> Callable[[Any, int], Query]:
        return lambda spec, depth: self._single(kind, spec)

    def _single(self, kind: str, spec: Any) -> Query:
        """term, match, prefix and wildcard: ``{field: value}`` or ``{field: {value, options}}``."""
        if not isinstance(spec, dict) or len(spec) != 1:
            raise self.malformed(f"[{kind}] query malformed, no start_object after query name")
        name, value = next(iter(spec.items()))
        options: dict[str, Any] = {}
        if isinstance(value, dict):
            options = value
            if self.strict:
                key = "query" if kind == "match" else "value"
                if key not in value and not (kind == "wildcard" and "wildcard" in value):
                    raise ParseError(f"[{kind}] query does not support [{next(iter(value), '')}]")
                value = value.get(key, value.get("wildcard"))
            else:
                value = value.get("value", value.get("query"))
        if kind == "wildcard" and value is None and not self.strict:
            value = options.get("wildcard")
        field = self.field(name)
        ci = bool(options.get("case_insensitive", False))
        if kind == "prefix":
            return Prefix(field, str(value), ci)
        if kind == "wildcard":
            return Wildcard(field, str(value), ci)
        if kind == "match" and (not self.strict or field.type is FieldType.TEXT):
            return Match(field, str(value), str(options.get("operator", "or")).lower())
        if self.strict:
            return Term(field, self.coerce(name, field, value), ci)
        return Term(field, value, ci)

    # -- sort -----------------------------------------------------------------------------------------

    def sort(self, sort: Any) -> list[SortKey]:
        if sort is None:
            return []
        keys = []
        for spec in sort if isinstance(sort, list) else [sort]:
            if isinstance(spec, str):
                name, _, order = spec.partition(":")
                keys.append(SortKey(self._sort_field(name), order == "desc"))
            elif isinstance(spec, dict) and len(spec) == 1:
                name, order = next(iter(spec.items()))
                fmt = None
                if isinstance(order, dict):
                    if "nested" in order and self.strict:
                        raise InvalidArgument("nested sorting is not currently supported in this context")
                    fmt = order.get("format")
                    order = order.get("order", "asc")
                if self.strict and order not in ("asc", "desc"):
                    raise ParseError(f"[sort] unknown order [{order}]")
                keys.append(SortKey(self._sort_field(name), str(order) == "desc", fmt))
            else:
                raise self.malformed("mal-formatted sort object" if self.strict else "malformed sort")
        return keys

    def _sort_field(self, name: str) -> Field:
        if name == "_doc" and self.strict:
            return DOC
        return self.field(name)

    # -- aggregations ---------------------------------------------------------------------------------

    def aggs(self, aggs: Any) -> list[Agg]:
        if aggs is None:
            return []
        if not isinstance(aggs, dict):
            raise ParseError("[aggs] must be an object")
        return [self._agg(name, body) for name, body in aggs.items()]

    def _agg(self, name: str, body: Any) -> Agg:
        if not isinstance(body, dict):
            raise ParseError(f"Expected [START_OBJECT] under [{name}]")
        kinds = [k for k in body if k not in ("aggs", "aggregations", "meta")]
        if len(kinds) != 1:
            raise ParseError(f"Expected exactly one aggregation type for [{name}]")
        kind = kinds[0]
        spec = body[kind]
        if kind not in self.rules.aggregations:
            if kind in _PIPELINE:
                raise InvalidArgument(f"Unsupported aggregation of type [{kind}]")
            raise InvalidArgument(self.rules.unsupported_agg.format(name=name, kind=kind))
        if not isinstance(spec, dict):
            raise ParseError(f"[{kind}] aggregation [{name}] must be an object")
        if "script" in spec:
            raise InvalidArgument(f"Unsupported script value source for [{name}] agg")
        subs = self.aggs(body.get("aggs", body.get("aggregations")))
        if kind in _FIELD_AGGS:
            if not isinstance(spec.get("field"), str):
                raise ParseError(f"Required [field] for aggregation [{name}]")
            return _FIELD_AGGS[kind](name=name, options=spec, subs=subs, field=self.field(spec["field"]))
        if kind == "filter":
            return FilterAgg(name=name, options=spec, subs=subs, query=self.query(spec, 1))
        if kind == "filters":
            raw = spec.get("filters")
            if isinstance(raw, dict):
                named = [(k, self.query(q, 1)) for k, q in raw.items()]
                return FiltersAgg(name=name, options=spec, subs=subs, filters=named, keyed=True)
            if isinstance(raw, list):
                listed = [(str(i), self.query(q, 1)) for i, q in enumerate(raw)]
                return FiltersAgg(name=name, options=spec, subs=subs, filters=listed)
            raise ParseError(f"[filters] aggregation [{name}] requires [filters]")
        if kind == "composite":
            return CompositeAgg(name=name, options=spec, subs=subs, sources=self._sources(name, spec))
        raise InvalidArgument(self.rules.unsupported_agg.format(name=name, kind=kind))

    def _sources(self, name: str, spec: dict[str, Any]) -> list[CompositeSource]:
        sources = spec.get("sources")
        if not isinstance(sources, list) or not sources:
            raise ParseError(f"Composite [sources] cannot be null or empty for [{name}]")
        out = []
        for source in sources:
            if not isinstance(source, dict) or len(source) != 1:
                raise ParseError("[sources] entries must have one name")
            key, value = next(iter(source.items()))
            if not isinstance(value, dict) or "terms" not in value:
                raise InvalidArgument(f"Unsupported source type in composite agg [{name}]; only [terms] is supported")
            terms = value["terms"]
            if "script" in terms:
                raise InvalidArgument(f"Unsupported script value source for [{key}] of composite agg [{name}]")
            if not isinstance(terms, dict):
                raise ParseError(f"[terms] source [{key}] of composite agg [{name}] must be an object")
            order = terms.get("order", "asc")
            if order not in ("asc", "desc"):
                raise ParseError(f"Unknown order [{order}] for source [{key}]; expected [asc] or [desc]")
            missing = terms.get("missing_bucket", False)
            if not isinstance(missing, bool):
                raise ParseError(f"[missing_bucket] of source [{key}] must be a boolean")
            field = self.field(terms.get("field", ""))
            out.append(CompositeSource(key, field, missing, order == "desc"))
        return out
