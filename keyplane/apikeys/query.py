"""The Query API key DSL: the API-key index's fields and rules, on the query engine (``keyplane.query``).

Only the query and aggregation types Elasticsearch allows for API keys are accepted, over the
fields it exposes (``username`` is the owner, ``realm_name`` its realm, ``metadata.*`` the key's
metadata, a flattened field). Everything else is refused with Elasticsearch's messages.
"""

from __future__ import annotations

from typing import Any

from keyplane.query import parser
from keyplane.query.aggs import Agg
from keyplane.query.fields import Field, FieldMap, FieldType
from keyplane.query.parser import Rules, search_after_message
from keyplane.query.tree import Bool, Ids, Query, SortKey, Term

__all__ = [
    "FIELDS",
    "RULES",
    "key_is",
    "owned_by",
    "parse_aggs",
    "parse_query",
    "parse_sort",
    "search_after_message",
]

K, D = FieldType.KEYWORD, FieldType.DATE
# Public name -> the key's field (canonical names are the store's column names).
FIELDS = FieldMap(
    {
        "username": Field("username", K),  # the creator's principal
        "realm_name": Field("realm", K),
        "name": Field("name", K),
        "type": Field("type", K),
        "creation": Field("creation", D),
        "expiration": Field("expiration", D),
        "invalidation": Field("invalidation", D),
        "last_used": Field("last_used", D),
        "invalidated": Field("invalidated", FieldType.BOOLEAN),
        "metadata": Field("metadata", FieldType.FLATTENED),
    }
)

RULES = Rules(
    FIELDS,
    aggregations=frozenset(
        ("terms", "range", "date_range", "missing", "cardinality", "value_count", "composite", "filter", "filters")
    ),
    unsupported_agg="Unsupported API Keys agg [{name}] of type [{kind}]",
)


def parse_query(query: Any) -> Query:
    return parser.parse_query(query, RULES)


def parse_sort(sort: Any) -> list[SortKey]:
    return parser.parse_sort(sort, RULES)


def parse_aggs(aggs: Any) -> list[Agg]:
    return parser.parse_aggs(aggs, RULES)


def key_is(key_id: str) -> Query:
    """The one key with this id."""
    return Ids((key_id,))


def owned_by(username: str, realm: str) -> Query:
    """Keys whose owner is ``username`` of ``realm``."""
    return Bool(filter=(Term(FIELDS.field("username"), username), Term(FIELDS.field("realm_name"), realm)))
