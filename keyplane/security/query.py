"""The query DSL subset of ``_query/user`` and ``_query/role``, evaluated over small in-memory sets.

Users and roles number in the hundreds, so filtering them in Python is simpler than SQL and as
fast. Only the query types Elasticsearch allows here are accepted; the rest get its message.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

from keyplane.errors import InvalidArgument
from keyplane.limits import check_query_depth

Doc = dict[str, Any]
Predicate = Callable[[Doc], bool]

_SUPPORTED = {
    "match_all",
    "term",
    "terms",
    "prefix",
    "wildcard",
    "match",
    "exists",
    "range",
    "bool",
    "ids",
    "simple_query_string",
}


def _values(doc: Doc, field: str) -> list[Any]:
    node: Any = doc
    for part in field.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, dict) and field in node:
            node = node[field]
            break
        else:
            return []
    if node is None:
        return []
    return node if isinstance(node, list) else [node]


def _keyword(value: Any) -> Any:
    """A value as Elasticsearch indexes keyword and flattened fields: ``true`` is "true", ``3`` is "3"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _unwrap(spec: Any, key: str) -> tuple[str, Any, dict[str, Any]]:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise InvalidArgument(f"[{key}] query malformed, no start_object after query name")
    field, value = next(iter(spec.items()))
    options: dict[str, Any] = {}
    if isinstance(value, dict):
        options = value
        value = value.get("value", value.get("query"))
    return field, value, options


class QueryCompiler:
    def __init__(self, allowed: Callable[[str], str | None]) -> None:
        # Maps a field name of the API to the document field, or None when not queryable.
        self.allowed = allowed
        self._depth = 0  # how deep the query being compiled is nested

    def field(self, name: str) -> str:
        mapped = self.allowed(name)
        if mapped is None:
            raise InvalidArgument(f"Field [{name}] is not allowed for querying or aggregation")
        return mapped

    def compile(self, query: Any) -> Predicate:
        if query is None:
            return lambda d: True
        if not isinstance(query, dict) or len(query) != 1:
            raise InvalidArgument("query malformed, must start with start_object")
        kind, spec = next(iter(query.items()))
        self._depth += 1
        try:
            check_query_depth(self._depth)
            if kind not in _SUPPORTED:
                raise InvalidArgument(f"Query type [{kind}] is not currently supported in this context")
            return getattr(self, "_" + kind)(spec)
        finally:
            self._depth -= 1

    def _match_all(self, spec: Any) -> Predicate:
        return lambda d: True

    def _term(self, spec: Any) -> Predicate:
        name, value, options = _unwrap(spec, "term")
        field = self.field(name)
        ci = bool(options.get("case_insensitive"))

        wanted = _keyword(value)

        def pred(d: Doc) -> bool:
            for v in map(_keyword, _values(d, field)):
                if ci and isinstance(v, str) and isinstance(wanted, str):
                    if v.lower() == wanted.lower():
                        return True
                elif v == wanted:
                    return True
            return False

        return pred

    def _terms(self, spec: Any) -> Predicate:
        if not isinstance(spec, dict) or len(spec) != 1:
            raise InvalidArgument("[terms] query malformed")
        name, wanted = next(iter(spec.items()))
        if not isinstance(wanted, list):
            raise InvalidArgument("terms query with terms lookup is not currently supported in this context")
        field = self.field(name)
        keywords = {_keyword(w) for w in wanted if not isinstance(w, (dict, list))}
        return lambda d: any(_keyword(v) in keywords for v in _values(d, field))

    def _prefix(self, spec: Any) -> Predicate:
        name, value, options = _unwrap(spec, "prefix")
        field = self.field(name)
        ci = bool(options.get("case_insensitive"))
        value = str(value)

        def pred(d: Doc) -> bool:
            for v in _values(d, field):
                text = str(v)
                if text.lower().startswith(value.lower()) if ci else text.startswith(value):
                    return True
            return False

        return pred

    def _wildcard(self, spec: Any) -> Predicate:
        name, value, options = _unwrap(spec, "wildcard")
        if value is None and isinstance(options, dict):
            value = options.get("wildcard")
        field = self.field(name)
        ci = bool(options.get("case_insensitive"))
        pattern = str(value)

        def pred(d: Doc) -> bool:
            for v in _values(d, field):
                text = str(v)
                if ci:
                    if fnmatch.fnmatchcase(text.lower(), pattern.lower()):
                        return True
                elif fnmatch.fnmatchcase(text, pattern):
                    return True
            return False

        return pred

    def _match(self, spec: Any) -> Predicate:
        name, value, options = _unwrap(spec, "match")
        field = self.field(name)
        tokens = str(value).lower().split()
        operator = str(options.get("operator", "or")).lower()

        def pred(d: Doc) -> bool:
            words = {w for v in _values(d, field) for w in str(v).lower().split()}
            hits = [t in words for t in tokens]
            return all(hits) if operator == "and" else any(hits)

        return pred

    def _exists(self, spec: Any) -> Predicate:
        if not isinstance(spec, dict) or "field" not in spec:
            raise InvalidArgument("[exists] must be provided with a [field]")
        field = self.field(spec["field"])
        return lambda d: bool(_values(d, field))

    def _range(self, spec: Any) -> Predicate:
        if not isinstance(spec, dict) or len(spec) != 1:
            raise InvalidArgument("[range] query malformed")
        name, bounds = next(iter(spec.items()))
        if not isinstance(bounds, dict):
            raise InvalidArgument("[range] query malformed, no start_object after query name")
        if "relation" in bounds:
            raise InvalidArgument("range query with relation is not currently supported in this context")
        field = self.field(name)

        def ok(v: Any) -> bool:
            try:
                if "gt" in bounds and not v > bounds["gt"]:
                    return False
                if "gte" in bounds and not v >= bounds["gte"]:
                    return False
                if "lt" in bounds and not v < bounds["lt"]:
                    return False
                if "lte" in bounds and not v <= bounds["lte"]:
                    return False
            except TypeError:
                return False
            return True

        return lambda d: any(ok(v) for v in _values(d, field))

    def _ids(self, spec: Any) -> Predicate:
        values = spec.get("values", []) if isinstance(spec, dict) else []
        return lambda d: d.get("_id") in values

    def _simple_query_string(self, spec: Any) -> Predicate:
        if not isinstance(spec, dict) or "query" not in spec:
            raise InvalidArgument("[simple_query_string] requires a [query]")
        fields = [self.field(f) for f in spec.get("fields", [])] or None
        tokens = [t.lower() for t in str(spec["query"]).split()]

        def pred(d: Doc) -> bool:
            texts = []
            for f in fields or [k for k in d if not k.startswith("_")]:
                texts += [str(v).lower() for v in _values(d, f)]
            words = {w for t in texts for w in t.split()}
            return any(
                (t.rstrip("*") and any(w.startswith(t.rstrip("*")) for w in words)) if t.endswith("*") else t in words
                for t in tokens
            )

        return pred

    def _bool(self, spec: Any) -> Predicate:
        if not isinstance(spec, dict):
            raise InvalidArgument("[bool] query malformed")

        def clauses(key: str) -> list[Predicate]:
            value = spec.get(key, [])
            value = value if isinstance(value, list) else [value]
            return [self.compile(q) for q in value]

        must, filt, should, must_not = clauses("must"), clauses("filter"), clauses("should"), clauses("must_not")
        minimum = spec.get("minimum_should_match")
        min_should = int(minimum) if minimum is not None else (0 if (must or filt) else (1 if should else 0))

        def pred(d: Doc) -> bool:
            if not all(p(d) for p in must + filt):
                return False
            if any(p(d) for p in must_not):
                return False
            return sum(1 for p in should if p(d)) >= min_should

        return pred


def sort_docs(docs: list[Doc], sort: Any, field_of: Callable[[str], str], default: str) -> tuple[list[Doc], bool]:
    """Sort by the request's ``sort`` (strings, ``{field: order}`` or ``{field: {order}}``)."""
    if sort is None:
        return sorted(docs, key=lambda d: str(d.get(default, ""))), False
    specs = sort if isinstance(sort, list) else [sort]
    keys: list[tuple[str, bool]] = []
    for spec in specs:
        if isinstance(spec, str):
            name, _, order = spec.partition(":")
            keys.append((name, order == "desc"))
        elif isinstance(spec, dict) and len(spec) == 1:
            name, order = next(iter(spec.items()))
            if isinstance(order, dict):
                order = order.get("order", "asc")
            keys.append((name, str(order) == "desc"))
        else:
            raise InvalidArgument("malformed sort")
    for name, desc in reversed(keys):
        field = field_of(name)
        docs = sorted(docs, key=lambda d: (_values(d, field) or [""])[0], reverse=desc)
    for d in docs:
        d["_sort"] = [(_values(d, field_of(n)) or [None])[0] for n, _ in keys]
    return docs, True
