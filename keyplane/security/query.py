"""The ``_query/user`` and ``_query/role`` indices on the query engine (``keyplane.query``).

Users and roles number in the hundreds, so they are filtered and sorted in memory
(``keyplane.query.memory``). Their queries parse leniently, as they always have here (see
``keyplane.query.parser``); the fields they may name are the records' own rule
(``users.queryable_field``, ``roles.queryable_field``), every one read as a keyword.

Preferred: :func:`matcher` then :func:`ordered` (or :func:`search` for both) with :data:`USER_RULES`
or :data:`ROLE_RULES`. ``QueryCompiler`` and ``sort_docs`` remain for callers that pass their own
field function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from keyplane.errors import InvalidArgument
from keyplane.query import memory
from keyplane.query.fields import NamedFields
from keyplane.query.memory import Doc, Predicate
from keyplane.query.parser import Rules, parse_query, parse_sort
from keyplane.query.tree import SortKey
from keyplane.security import roles, users

__all__ = [
    "ROLE_RULES",
    "USER_RULES",
    "Doc",
    "Predicate",
    "QueryCompiler",
    "matcher",
    "ordered",
    "search",
    "sort_docs",
]

USER_RULES = Rules(NamedFields(users.queryable_field), strict=False)
ROLE_RULES = Rules(NamedFields(roles.queryable_field), strict=False)


def matcher(rules: Rules, query: Any) -> Predicate:
    """The request's query as a predicate over records (refused queries raise here, before any read)."""
    return memory.compile_query(parse_query(query, rules))


def ordered(docs: list[Doc], rules: Rules, sort: Any, default_sort: str) -> list[Doc]:
    """Records in the order of the request's ``sort``, each then carrying its ``_sort`` values, or by
    ``default_sort`` when the request gives none."""
    if sort is None:
        return _by_default(docs, default_sort)
    return _sorted(docs, parse_sort(sort, rules))


def search(docs: Sequence[Doc], rules: Rules, query: Any, sort: Any, default_sort: str) -> list[Doc]:
    """The records ``query`` matches, ordered (see :func:`ordered`)."""
    matches = matcher(rules, query)
    return ordered([doc for doc in docs if matches(doc)], rules, sort, default_sort)


def _by_default(docs: list[Doc], field: str) -> list[Doc]:
    return sorted(docs, key=lambda d: str(d.get(field, "")))


def _sorted(docs: list[Doc], keys: list[SortKey]) -> list[Doc]:
    out = memory.sort_docs(docs, keys)
    for doc in out:
        doc["_sort"] = memory.sort_values(doc, keys)
    return out


class QueryCompiler:
    """A query as a predicate over documents, for fields allowed by ``allowed``."""

    def __init__(self, allowed: Callable[[str], str | None]) -> None:
        self.allowed = allowed
        self._rules = Rules(NamedFields(allowed), strict=False)

    def field(self, name: str) -> str:
        mapped = self.allowed(name)
        if mapped is None:
            raise InvalidArgument(f"Field [{name}] is not allowed for querying or aggregation")
        return mapped

    def compile(self, query: Any) -> Predicate:
        return matcher(self._rules, query)


def sort_docs(docs: list[Doc], sort: Any, field_of: Callable[[str], str], default: str) -> tuple[list[Doc], bool]:
    """Sort by the request's ``sort`` (strings, ``{field: order}`` or ``{field: {order}}``); whether it
    gave one."""
    return ordered(docs, Rules(NamedFields(field_of), strict=False), sort, default), sort is not None
