"""``_query/user`` and ``_query/role``: one query over a small set of records, sorted and paged.

Both APIs take the same body (``query``, ``sort``, ``from``, ``size``) and differ only in the
fields a query may name and the default sort field; the query language itself is
``keyplane.security.query``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from keyplane.security.query import QueryCompiler, sort_docs

Doc = dict[str, Any]


@dataclass(frozen=True)
class RecordQuery:
    """A query request, read. ``window`` gives ``(from, size)``; it is called only once the query
    compiled and the sort applied, the order in which the API has always reported its errors."""

    query: Any
    sort: Any
    window: Callable[[], tuple[int, int]]


@dataclass(frozen=True)
class QueryPage:
    total: int  # every record that matched
    records: list[Doc]  # the requested window of them, sorted


@dataclass(frozen=True)
class Matcher:
    """A compiled query, with the field rule its sort must follow too."""

    compiler: QueryCompiler
    predicate: Callable[[Doc], bool]


def compile_query(spec: RecordQuery, field_of: Callable[[str], str | None]) -> Matcher:
    """Compile before the records are read: a refused query costs no read."""
    compiler = QueryCompiler(field_of)
    return Matcher(compiler, compiler.compile(spec.query))


def page(docs: list[Doc], matcher: Matcher, spec: RecordQuery, default_sort: str) -> QueryPage:
    """The records that match, sorted by the request's sort (else ``default_sort``), in its window."""
    matched = [d for d in docs if matcher.predicate(d)]
    matched, _ = sort_docs(matched, spec.sort, matcher.compiler.field, default_sort)
    start, size = spec.window()
    return QueryPage(len(matched), matched[start : start + size])
