"""The Query API key DSL: validated into a small tree that any backend can translate.

Only the query and aggregation types Elasticsearch allows for API keys are accepted, over the
fields it exposes (``username`` is the owner, ``realm_name`` its realm, ``metadata.*`` the
key's metadata). Everything else is refused with Elasticsearch's messages.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime
from typing import Any

from keyplane.errors import InvalidArgument, ParseError
from keyplane.limits import check_query_depth
from keyplane.timevalue import now_ms

KEYWORD_FIELDS = ("username", "realm_name", "name", "type")
DATE_FIELDS = ("creation", "expiration", "invalidation", "last_used")
BOOLEAN_FIELDS = ("invalidated",)
ALL_FIELDS = KEYWORD_FIELDS + DATE_FIELDS + BOOLEAN_FIELDS + ("metadata",)


@dataclass(frozen=True)
class Node:
    """One query clause. ``kind`` is one of: all, none, term, terms, prefix, wildcard, exists,
    range, ids, bool."""

    kind: str
    field: str = ""
    value: Any = None
    options: dict[str, Any] = dataclass_field(default_factory=dict)
    children: tuple[tuple[str, tuple[Node, ...]], ...] = ()

    def __hash__(self) -> int:  # nodes are compared structurally only in tests
        return id(self)


MATCH_ALL = Node("all")


def translate_field(name: str) -> str:
    """The canonical field name, or Elasticsearch's refusal."""
    if "*" in name:
        raise InvalidArgument(f"Field name pattern [{name}] is not allowed for querying or aggregation")
    if name in ALL_FIELDS or (name.startswith("metadata.") and len(name) > len("metadata.")):
        return name
    raise InvalidArgument(f"Field [{name}] is not allowed for querying or aggregation")


# -- values ------------------------------------------------------------------------------------------

_MATH = re.compile(r"([+-])(\d+)([yMwdhHms])")
_UNIT_MS = {
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "H": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
    "M": 2_592_000_000,
    "y": 31_536_000_000,
}


def _round(ms: int, unit: str, up: bool) -> int:
    size = _UNIT_MS.get(unit)
    if size is None:
        raise ParseError(f"unsupported rounding unit [{unit}]")
    down = ms - ms % size
    return down + size - 1 if up else down


def parse_date(value: Any, *, round_up: bool = False) -> int:
    """Epoch ms from a number, a numeric string, an ISO date, or date math such as ``now-1d/d``."""
    if isinstance(value, bool):
        raise ParseError(f"failed to parse date field [{value}]")
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if text.startswith("now"):
        base, rest = now_ms(), text[3:]
    else:
        anchor, sep, rest = text.partition("||")
        try:
            parsed = datetime.fromisoformat(anchor.replace("Z", "+00:00"))
        except ValueError:
            raise ParseError(
                f"failed to parse date field [{text}] with format [strict_date_optional_time||epoch_millis]"
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        base = int(parsed.timestamp() * 1000)
        if not sep:
            return base
    rounding = None
    if "/" in rest:
        rest, rounding = rest.split("/", 1)
    pos = 0
    for match in _MATH.finditer(rest):
        if match.start() != pos:
            break
        sign = 1 if match.group(1) == "+" else -1
        base += sign * int(match.group(2)) * _UNIT_MS[match.group(3)]
        pos = match.end()
    if pos != len(rest):
        raise ParseError(f"failed to parse date field [{text}]: invalid date math")
    if rounding:
        base = _round(base, rounding, round_up)
    return base


def format_date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def coerce(field_name: str, value: Any) -> Any:
    """Turn a query value into the stored representation of the field."""
    if field_name in DATE_FIELDS:
        return parse_date(value)
    if field_name in BOOLEAN_FIELDS:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise ParseError(f"Can't parse boolean value [{value}], expected [true] or [false]")
    if isinstance(value, (dict, list)):
        raise ParseError(f"[{field_name}] expects a single value")
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


# -- queries -----------------------------------------------------------------------------------------

_SUPPORTED = (
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


def _single(kind: str, spec: Any) -> tuple[str, Any, dict[str, Any]]:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ParseError(f"[{kind}] query malformed, no start_object after query name")
    name, value = next(iter(spec.items()))
    options: dict[str, Any] = {}
    if isinstance(value, dict):
        options = value
        key = {"match": "query", "wildcard": "value"}.get(kind, "value")
        if key not in value and not (kind == "wildcard" and "wildcard" in value):
            raise ParseError(f"[{kind}] query does not support [{next(iter(value), '')}]")
        value = value.get(key, value.get("wildcard"))
    return name, value, options


def parse_query(query: Any, depth: int = 1) -> Node:
    if query is None:
        return MATCH_ALL
    check_query_depth(depth)
    if not isinstance(query, dict) or len(query) != 1:
        raise ParseError("query malformed, must start with start_object")
    kind, spec = next(iter(query.items()))
    if kind not in _SUPPORTED:
        raise InvalidArgument(f"Query type [{kind}] is not currently supported in this context")
    if kind == "match_all":
        return MATCH_ALL
    if kind == "ids":
        values = spec.get("values") if isinstance(spec, dict) else None
        if not isinstance(values, list):
            raise ParseError("[ids] query requires [values]")
        return Node("ids", value=tuple(str(v) for v in values))
    if kind == "bool":
        return _bool(spec, depth)
    if kind == "exists":
        if not isinstance(spec, dict) or not isinstance(spec.get("field"), str):
            raise ParseError("[exists] must be provided with a [field]")
        return Node("exists", translate_field(spec["field"]))
    if kind == "terms":
        if not isinstance(spec, dict):
            raise ParseError("[terms] query malformed")
        fields = {k: v for k, v in spec.items() if k != "boost"}
        if len(fields) != 1:
            raise ParseError("[terms] query requires exactly one field")
        name, values = next(iter(fields.items()))
        if isinstance(values, dict):
            raise InvalidArgument("terms query with terms lookup is not currently supported in this context")
        if not isinstance(values, list):
            raise ParseError("[terms] query requires an array of values")
        fname = translate_field(name)
        return Node("terms", fname, tuple(coerce(fname, v) for v in values))
    if kind == "range":
        return _range(spec)
    if kind == "simple_query_string":
        return _simple_query_string(spec)
    name, value, options = _single(kind, spec)
    fname = translate_field(name)
    ci = bool(options.get("case_insensitive", False))
    if kind in ("term", "match"):
        return Node("term", fname, coerce(fname, value), {"case_insensitive": ci})
    if kind == "prefix":
        return Node("prefix", fname, str(value), {"case_insensitive": ci})
    return Node("wildcard", fname, str(value), {"case_insensitive": ci})


def _bool(spec: Any, depth: int) -> Node:
    if not isinstance(spec, dict):
        raise ParseError("[bool] query malformed")
    groups = []
    for key in ("must", "filter", "should", "must_not"):
        value = spec.get(key, [])
        value = value if isinstance(value, list) else [value]
        groups.append((key, tuple(parse_query(q, depth + 1) for q in value)))
    for key in spec:
        if key not in ("must", "filter", "should", "must_not", "minimum_should_match", "boost", "_name"):
            raise ParseError(f"[bool] query does not support [{key}]")
    minimum = spec.get("minimum_should_match")
    options = {"minimum_should_match": int(str(minimum).rstrip("%")) if minimum is not None else None}
    return Node("bool", options=options, children=tuple(groups))


def _range(spec: Any) -> Node:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ParseError("[range] query malformed")
    name, bounds = next(iter(spec.items()))
    if not isinstance(bounds, dict):
        raise ParseError("[range] query malformed, no start_object after query name")
    if "relation" in bounds:
        raise InvalidArgument("range query with relation is not currently supported in this context")
    fname = translate_field(name)
    out: dict[str, Any] = {}
    aliases = {"from": "gte", "to": "lte"}
    for key, value in bounds.items():
        if key in ("format", "time_zone", "boost", "include_lower", "include_upper"):
            continue
        op = aliases.get(key, key)
        if op not in ("gt", "gte", "lt", "lte"):
            raise ParseError(f"[range] query does not support [{key}]")
        if value is None:
            continue
        if fname in DATE_FIELDS:
            out[op] = parse_date(value, round_up=op in ("gt", "lte"))
        else:
            out[op] = coerce(fname, value)
    return Node("range", fname, out)


def _simple_query_string(spec: Any) -> Node:
    if not isinstance(spec, dict) or not isinstance(spec.get("query"), str):
        raise ParseError("[simple_query_string] requires a [query]")
    patterns = spec.get("fields") or ["*"]
    fields: list[str] = []
    for pattern in patterns:
        pattern = pattern.split("^")[0]
        if "*" in pattern:
            fields += [f for f in KEYWORD_FIELDS + ("metadata",) if fnmatch.fnmatchcase(f, pattern)]
        else:
            fields.append(translate_field(pattern))
    if not fields:
        return Node("none")
    default_and = str(spec.get("default_operator", "or")).lower() == "and"
    must, should, must_not = [], [], []
    for token in spec["query"].split():
        negate, required = token.startswith("-"), token.startswith("+")
        text = token.lstrip("+-")
        if not text:
            continue
        per_field = [
            Node("prefix", f, text[:-1], {"case_insensitive": True})
            if text.endswith("*")
            else Node("term", f, text, {"case_insensitive": True})
            for f in fields
            if f not in DATE_FIELDS + BOOLEAN_FIELDS
        ]
        clause = Node("bool", options={"minimum_should_match": 1}, children=(("should", tuple(per_field)),))
        if negate:
            must_not.append(clause)
        elif required or default_and:
            must.append(clause)
        else:
            should.append(clause)
    minimum = 1 if should and not must else 0
    return Node(
        "bool",
        options={"minimum_should_match": minimum},
        children=(("must", tuple(must)), ("should", tuple(should)), ("must_not", tuple(must_not))),
    )


# -- sort --------------------------------------------------------------------------------------------


@dataclass
class SortKey:
    field: str
    desc: bool = False
    format: str | None = None


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


def parse_sort(sort: Any) -> list[SortKey]:
    if sort is None:
        return []
    specs = sort if isinstance(sort, list) else [sort]
    keys = []
    for spec in specs:
        if isinstance(spec, str):
            name, _, order = spec.partition(":")
            keys.append(SortKey(_sort_field(name), order == "desc"))
        elif isinstance(spec, dict) and len(spec) == 1:
            name, order = next(iter(spec.items()))
            fmt = None
            if isinstance(order, dict):
                if "nested" in order:
                    raise InvalidArgument("nested sorting is not currently supported in this context")
                fmt = order.get("format")
                order = order.get("order", "asc")
            if order not in ("asc", "desc"):
                raise ParseError(f"[sort] unknown order [{order}]")
            keys.append(SortKey(_sort_field(name), order == "desc", fmt))
        else:
            raise ParseError("mal-formatted sort object")
    return keys


def _sort_field(name: str) -> str:
    if name == "_doc":
        return "_doc"
    return translate_field(name)


# -- aggregations ------------------------------------------------------------------------------------

AGG_TYPES = ("terms", "range", "date_range", "missing", "cardinality", "value_count", "composite", "filter", "filters")


@dataclass
class CompositeSource:
    """One ``terms`` source of a composite aggregation; documents without a value are skipped
    unless ``missing_bucket`` (their bucket sorts first ascending, last descending)."""

    name: str
    field: str
    missing_bucket: bool = False
    descending: bool = False


@dataclass
class Agg:
    name: str
    type: str
    spec: dict[str, Any]
    field: str = ""
    filter: Node | None = None
    filters: list[tuple[str, Node]] = dataclass_field(default_factory=list)
    sources: list[CompositeSource] = dataclass_field(default_factory=list)
    subs: list[Agg] = dataclass_field(default_factory=list)
    keyed: bool = False


def parse_aggs(aggs: Any) -> list[Agg]:
    if aggs is None:
        return []
    if not isinstance(aggs, dict):
        raise ParseError("[aggs] must be an object")
    out = []
    for name, body in aggs.items():
        if not isinstance(body, dict):
            raise ParseError(f"Expected [START_OBJECT] under [{name}]")
        subs = body.get("aggs", body.get("aggregations"))
        kinds = [k for k in body if k not in ("aggs", "aggregations", "meta")]
        if len(kinds) != 1:
            raise ParseError(f"Expected exactly one aggregation type for [{name}]")
        kind = kinds[0]
        spec = body[kind]
        if kind not in AGG_TYPES:
            if kind in (
                "bucket_sort",
                "bucket_selector",
                "max_bucket",
                "avg_bucket",
                "sum_bucket",
                "derivative",
                "cumulative_sum",
                "bucket_script",
            ):
                raise InvalidArgument(f"Unsupported aggregation of type [{kind}]")
            raise InvalidArgument(f"Unsupported API Keys agg [{name}] of type [{kind}]")
        if not isinstance(spec, dict):
            raise ParseError(f"[{kind}] aggregation [{name}] must be an object")
        if "script" in spec:
            raise InvalidArgument(f"Unsupported script value source for [{name}] agg")
        agg = Agg(name, kind, spec, subs=parse_aggs(subs))
        if kind in ("terms", "range", "date_range", "missing", "cardinality", "value_count"):
            if not isinstance(spec.get("field"), str):
                raise ParseError(f"Required [field] for aggregation [{name}]")
            agg.field = translate_field(spec["field"])
        elif kind == "filter":
            agg.filter = parse_query(spec)
        elif kind == "filters":
            raw = spec.get("filters")
            if isinstance(raw, dict):
                agg.keyed = True
                agg.filters = [(k, parse_query(q)) for k, q in raw.items()]
            elif isinstance(raw, list):
                agg.filters = [(str(i), parse_query(q)) for i, q in enumerate(raw)]
            else:
                raise ParseError(f"[filters] aggregation [{name}] requires [filters]")
        elif kind == "composite":
            sources = spec.get("sources")
            if not isinstance(sources, list) or not sources:
                raise ParseError(f"Composite [sources] cannot be null or empty for [{name}]")
            for source in sources:
                if not isinstance(source, dict) or len(source) != 1:
                    raise ParseError("[sources] entries must have one name")
                key, value = next(iter(source.items()))
                if not isinstance(value, dict) or "terms" not in value:
                    raise InvalidArgument(
                        f"Unsupported source type in composite agg [{name}]; only [terms] is supported"
                    )
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
                field_name = translate_field(terms.get("field", ""))
                agg.sources.append(CompositeSource(key, field_name, missing, order == "desc"))
        out.append(agg)
    return out
