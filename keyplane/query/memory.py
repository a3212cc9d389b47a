"""The query tree evaluated over JSON documents in memory.

Used where the documents are few (users, roles): filtering them in Python is simpler than SQL and
as fast. A field's values are read at its dotted path; an array holds several values. Values
compare as Elasticsearch indexes keyword and flattened fields: ``true`` is "true", ``3`` is "3".
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from typing import Any

from keyplane.query.tree import (
    Bool,
    Exists,
    Ids,
    Match,
    MatchAll,
    MatchNone,
    Prefix,
    Query,
    Range,
    SimpleQueryString,
    SortKey,
    Term,
    Terms,
    Wildcard,
)

Doc = dict[str, Any]
Predicate = Callable[[Doc], bool]


def values(doc: Doc, path: str) -> list[Any]:
    """The values at a dotted path (a key holding the whole dotted name also counts at the top)."""
    node: Any = doc
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, dict) and path in node:
            node = node[path]
            break
        else:
            return []
    if node is None:
        return []
    return node if isinstance(node, list) else [node]


def keyword(value: Any) -> Any:
    """A value as a keyword field indexes it: ``true`` is "true", ``3`` is "3"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def compile_query(query: Query) -> Predicate:
    """A predicate over documents that is true where ``query`` matches."""
    compiler = _COMPILERS.get(type(query))
    if compiler is None:
        raise ValueError(f"unknown query clause {type(query).__name__}")
    return compiler(query)


def _match_all(query: Any) -> Predicate:
    return lambda doc: True


def _match_none(query: Any) -> Predicate:
    return lambda doc: False


def _term(query: Term) -> Predicate:
    path, wanted, ci = query.field.name, keyword(query.value), query.case_insensitive

    def pred(doc: Doc) -> bool:
        for value in map(keyword, values(doc, path)):
            if ci and isinstance(value, str) and isinstance(wanted, str):
                if value.lower() == wanted.lower():
                    return True
            elif value == wanted:
                return True
        return False

    return pred


def _terms(query: Terms) -> Predicate:
    path = query.field.name
    wanted = {keyword(v) for v in query.values if not isinstance(v, (dict, list))}

    def pred(doc: Doc) -> bool:
        return any(not isinstance(v, (dict, list)) and keyword(v) in wanted for v in values(doc, path))

    return pred


def _prefix(query: Prefix) -> Predicate:
    path, prefix, ci = query.field.name, query.value, query.case_insensitive

    def pred(doc: Doc) -> bool:
        for value in values(doc, path):
            text = str(value)
            if text.lower().startswith(prefix.lower()) if ci else text.startswith(prefix):
                return True
        return False

    return pred


def _wildcard(query: Wildcard) -> Predicate:
    path, pattern, ci = query.field.name, query.pattern, query.case_insensitive

    def pred(doc: Doc) -> bool:
        for value in values(doc, path):
            text = str(value)
            if ci:
                if fnmatch.fnmatchcase(text.lower(), pattern.lower()):
                    return True
            elif fnmatch.fnmatchcase(text, pattern):
                return True
        return False

    return pred


def _words(texts: Sequence[Any]) -> set[str]:
    return {word for text in texts for word in str(text).lower().split()}


def _match(query: Match) -> Predicate:
    path, tokens, every = query.field.name, query.text.lower().split(), query.operator == "and"

    def pred(doc: Doc) -> bool:
        words = _words(values(doc, path))
        hits = [token in words for token in tokens]
        return all(hits) if every else any(hits)

    return pred


def _simple_query_string(query: SimpleQueryString) -> Predicate:
    paths = [f.name for f in query.fields] if query.fields is not None else None
    tokens = [token.lower() for token in query.text.split()]

    def hit(token: str, words: set[str]) -> bool:
        if token.endswith("*"):
            stem = token.rstrip("*")
            return bool(stem) and any(word.startswith(stem) for word in words)
        return token in words

    def pred(doc: Doc) -> bool:
        texts: list[Any] = []
        for path in paths if paths is not None else [k for k in doc if not k.startswith("_")]:
            texts += values(doc, path)
        words = _words(texts)
        return any(hit(token, words) for token in tokens)

    return pred


def _exists(query: Exists) -> Predicate:
    path = query.field.name
    return lambda doc: bool(values(doc, path))


def _range(query: Range) -> Predicate:
    path, bounds = query.field.name, query.bounds

    def within(value: Any) -> bool:
        try:
            for op, bound in bounds:
                if op == "gt" and not value > bound:
                    return False
                if op == "gte" and not value >= bound:
                    return False
                if op == "lt" and not value < bound:
                    return False
                if op == "lte" and not value <= bound:
                    return False
        except TypeError:  # values that do not compare with the bound are outside it
            return False
        return True

    return lambda doc: any(within(v) for v in values(doc, path))


def _ids(query: Ids) -> Predicate:
    wanted = query.values
    return lambda doc: doc.get("_id") in wanted


def _bool(query: Bool) -> Predicate:
    required = [compile_query(q) for q in query.must + query.filter]
    should = [compile_query(q) for q in query.should]
    excluded = [compile_query(q) for q in query.must_not]
    minimum = query.required_should()

    def pred(doc: Doc) -> bool:
        if not all(p(doc) for p in required):
            return False
        if any(p(doc) for p in excluded):
            return False
        return sum(1 for p in should if p(doc)) >= minimum

    return pred


_COMPILERS: dict[type, Callable[[Any], Predicate]] = {
    MatchAll: _match_all,
    MatchNone: _match_none,
    Term: _term,
    Terms: _terms,
    Prefix: _prefix,
    Wildcard: _wildcard,
    Match: _match,
    SimpleQueryString: _simple_query_string,
    Exists: _exists,
    Range: _range,
    Ids: _ids,
    Bool: _bool,
}


# -- sort --------------------------------------------------------------------------------------------


def first_value(doc: Doc, path: str) -> Any:
    found = values(doc, path)
    return found[0] if found else None


def _order(value: Any) -> tuple[int, Any]:
    """A sort key that never fails: numbers (booleans too) before text before anything else, each
    group in its own order. A field whose values are all of one kind sorts by them alone."""
    if isinstance(value, (bool, int, float)):
        return 0, value
    if isinstance(value, str):
        return 1, value
    return 2, str(value)


def sort_docs(docs: Sequence[Doc], sort: Sequence[SortKey]) -> list[Doc]:
    """Documents in the order of the sort keys, by each field's first value (missing: ``""``)."""
    out = list(docs)
    for key in reversed(sort):  # stable sorts, the last key first
        path = key.field.name
        out = sorted(out, key=lambda d: _order((values(d, path) or [""])[0]), reverse=key.desc)
    return out


def sort_values(doc: Doc, sort: Sequence[SortKey]) -> list[Any]:
    """What a sorted hit reports under ``_sort``: each key's first value, or None."""
    return [first_value(doc, key.field.name) for key in sort]
