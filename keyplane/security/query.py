"""The ``_query/user`` and ``_query/role`` indices: their fields and rules on the query engine.

Users and roles number in the hundreds, so they are filtered in memory (``keyplane.query.memory``).
Their queries parse leniently, as they always have here (see ``keyplane.query.parser``).

Preferred: :func:`search` with :data:`USER_RULES` or :data:`ROLE_RULES`. ``QueryCompiler`` and
``sort_docs`` remain for callers that name their queryable fields with a function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from keyplane.errors import InvalidArgument
from keyplane.query import memory
from keyplane.query.fields import Field, FieldMap, FieldType
from keyplane.query.memory import Doc, Predicate
from keyplane.query.parser import Rules, parse_query, parse_sort
from keyplane.query.tree import SortKey

__all__ = ["ROLE_RULES", "USER_RULES", "Doc", "Predicate", "QueryCompiler", "search", "sort_docs"]

K = FieldType.KEYWORD
USER_FIELDS = FieldMap.of({name: K for name in ("username", "roles", "enabled", "full_name", "email")})
ROLE_FIELDS = FieldMap.of(
    {
        "name": K,
        "description": K,
        "applications.application": K,
        "applications.resources": K,
        "applications.privileges": K,
        "cluster": K,
        "run_as": K,
        "metadata": FieldType.FLATTENED,
    },
    subfields_only=frozenset({"metadata"}),
)
USER_RULES = Rules(USER_FIELDS, strict=False)
ROLE_RULES = Rules(ROLE_FIELDS, strict=False)


def search(docs: Sequence[Doc], rules: Rules, query: Any, sort: Any, default_sort: str) -> list[Doc]:
    """The documents ``query`` matches, in the order of ``sort`` (each then carrying its ``_sort``
    values), or by ``default_sort`` when the request gives none."""
    matches = memory.compile_query(parse_query(query, rules))
    found = [doc for doc in docs if matches(doc)]
    if sort is None:
        return _by_default(found, default_sort)
    return _sorted(found, parse_sort(sort, rules))


def _by_default(docs: list[Doc], field: str) -> list[Doc]:
    return sorted(docs, key=lambda d: str(d.get(field, "")))


def _sorted(docs: list[Doc], keys: list[SortKey]) -> list[Doc]:
    out = memory.sort_docs(docs, keys)
    for doc in out:
        doc["_sort"] = memory.sort_values(doc, keys)
    return out


class _Named:
    """Fields named by a function: public name -> document field, or None when not queryable."""

    def __init__(self, name_of: Callable[[str], str | None]) -> None:
        self.name_of = name_of

    def resolve(self, name: str) -> Field | None:
        if not isinstance(name, str):
            return None
        mapped = self.name_of(name)
        return Field(mapped, K) if mapped is not None else None

    def names(self) -> Sequence[str]:
        return ()


class QueryCompiler:
    """A query as a predicate over documents, for fields allowed by ``allowed``."""

    def __init__(self, allowed: Callable[[str], str | None]) -> None:
        self.allowed = allowed
        self._rules = Rules(_Named(allowed), strict=False)

    def field(self, name: str) -> str:
        mapped = self.allowed(name)
        if mapped is None:
            raise InvalidArgument(f"Field [{name}] is not allowed for querying or aggregation")
        return mapped

    def compile(self, query: Any) -> Predicate:
        return memory.compile_query(parse_query(query, self._rules))


def sort_docs(docs: list[Doc], sort: Any, field_of: Callable[[str], str], default: str) -> tuple[list[Doc], bool]:
    """Sort by the request's ``sort`` (strings, ``{field: order}`` or ``{field: {order}}``); whether it
    gave one."""
    if sort is None:
        return _by_default(docs, default), False
    return _sorted(docs, parse_sort(sort, Rules(_Named(field_of), strict=False))), True
