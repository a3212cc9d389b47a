"""``_query/user`` and ``_query/role``: the query engine (``keyplane.query``) over users and roles.

Both APIs take the same body (``query``, ``sort``, ``from``, ``size``) and differ only in the
fields a query may name (``users.queryable_field``, ``roles.queryable_field``, every one read as a
keyword) and their default order. Users and roles number in the hundreds, so they are filtered and
sorted in memory (``keyplane.query.memory``). Their queries parse leniently, as they always have
here (see ``keyplane.query.parser``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from keyplane.query import memory
from keyplane.query.fields import NamedFields
from keyplane.query.memory import Doc, Predicate
from keyplane.query.parser import Rules, parse_query, parse_sort
from keyplane.security import roles, users

USER_RULES = Rules(NamedFields(users.queryable_field), strict=False)
ROLE_RULES = Rules(NamedFields(roles.queryable_field), strict=False)


@dataclass(frozen=True)
class RecordQuery:
    """A query request, read. ``window`` gives ``(from, size)``; it is called only once the query
    compiled and the sort applied, the order in which the API has always reported its errors."""

    query: Any
    sort: Any
    window: Callable[[], tuple[int, int]]


@dataclass(frozen=True)
class RecordHit:
    record: Doc
    sort: list[Any] | None  # the values the request's sort ordered by; None under the default order


@dataclass(frozen=True)
class QueryPage:
    total: int  # every record that matched
    hits: list[RecordHit]  # the requested window of them, in order
    # with_profile_uid: {(username, realm name): profile uid} of the records' users that have one
    profile_uids: dict[tuple[str, str], str] = field(default_factory=dict)


def matcher(rules: Rules, query: Any) -> Predicate:
    """The request's query as a predicate over records; a refused query raises here, before any read."""
    return memory.compile_query(parse_query(query, rules))


def ordered(docs: list[Doc], rules: Rules, sort: Any, default_sort: str) -> list[RecordHit]:
    """Records in the order of the request's ``sort``, with the values they sorted by, or by
    ``default_sort`` when the request gives none."""
    if sort is None:
        return [RecordHit(doc, None) for doc in sorted(docs, key=lambda d: str(d.get(default_sort, "")))]
    keys = parse_sort(sort, rules)
    return [RecordHit(doc, memory.sort_values(doc, keys)) for doc in memory.sort_docs(docs, keys)]


def page(docs: list[Doc], predicate: Predicate, spec: RecordQuery, rules: Rules, default_sort: str) -> QueryPage:
    """The records ``predicate`` accepts, ordered, in the request's window."""
    hits = ordered([doc for doc in docs if predicate(doc)], rules, spec.sort, default_sort)
    start, size = spec.window()
    return QueryPage(len(hits), hits[start : start + size])
