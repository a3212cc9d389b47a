"""Document-level security queries in role descriptors, checked as Elasticsearch checks them.

Elasticsearch parses a role's ``query`` when the role is stored and refuses what it cannot run
as a role query: text that is not a JSON object naming a query, unknown query kinds, and the
kinds that would read other documents at search time (terms lookup, indexed geo shapes,
``has_child``, ``has_parent``, ``percolate``). A ``template`` query is left for search time,
since it needs the user. Keyplane holds no documents, so only this validation applies.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from keyplane.errors import ParseError

_REFUSED = ("percolate", "has_child", "has_parent")

# Query kinds Elasticsearch 9 knows (core and default modules); anything else is "unknown query".
_KNOWN = frozenset(
    """
    match_all match_none match match_phrase match_phrase_prefix match_bool_prefix multi_match combined_fields
    query_string simple_query_string term terms terms_set range exists prefix wildcard regexp fuzzy ids
    bool boosting constant_score dis_max function_score script_score script nested has_child has_parent
    parent_id percolate geo_bounding_box geo_distance geo_grid geo_polygon geo_shape shape more_like_this
    distance_feature rank_feature pinned wrapper intervals span_term span_multi span_first span_near span_or
    span_not span_containing span_within span_field_masking field_masking_span knn sparse_vector
    text_expansion weighted_tokens semantic rule type
    """.split()
)

# Where compound queries hold other queries: kind -> keys whose values are a query or a list of them.
_CHILDREN = {
    "bool": ("must", "should", "filter", "must_not"),
    "constant_score": ("filter",),
    "dis_max": ("queries",),
    "boosting": ("positive", "negative"),
    "function_score": ("query",),
    "script_score": ("query",),
    "nested": ("query",),
    "pinned": ("organic",),
    "rule": ("organic",),
}


class RoleQueryError(ValueError):
    """Why one role query is refused (the cause of Elasticsearch's parse_exception)."""


def _check_query(query: Any) -> None:
    if not isinstance(query, dict) or not query:
        raise RoleQueryError("query malformed, must start with start_object")
    if len(query) > 1:
        first = next(iter(query))
        raise RoleQueryError(f"[{first}] malformed query, expected [END_OBJECT] but found [FIELD_NAME]")
    ((kind, body),) = query.items()
    if kind in _REFUSED:
        raise RoleQueryError(f"{kind} query isn't supported as part of a role query")
    if kind not in _KNOWN:
        raise RoleQueryError(f"unknown query [{kind}]")
    if not isinstance(body, dict):
        if kind == "wrapper":
            raise RoleQueryError("[wrapper] query malformed")
        return
    if kind == "terms" and any(isinstance(v, dict) for k, v in body.items() if k not in ("boost", "_name")):
        raise RoleQueryError("terms query with terms lookup isn't supported as part of a role query")
    if kind == "geo_shape" and any(isinstance(v, dict) and "indexed_shape" in v for v in body.values()):
        raise RoleQueryError("geoshape query referring to indexed shapes isn't supported as part of a role query")
    if kind == "wrapper":
        _check_query(_unwrap(body.get("query")))
        return
    for key in _CHILDREN.get(kind, ()):
        child = body.get(key)
        for item in child if isinstance(child, list) else [child] if child is not None else []:
            _check_query(item)
    if kind == "function_score":
        for function in body.get("functions") or []:
            if isinstance(function, dict) and function.get("filter") is not None:
                _check_query(function["filter"])


def _unwrap(encoded: Any) -> Any:
    """A wrapper query carries its query as base64 JSON; Elasticsearch parses what is inside too."""
    try:
        return orjson.loads(base64.b64decode(encoded if isinstance(encoded, str) else "", validate=True))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise RoleQueryError("[wrapper] query malformed") from None


def check(query: str) -> None:
    """Raise :class:`RoleQueryError` when Elasticsearch would refuse ``query`` in a role."""
    try:
        parsed = orjson.loads(query)
    except orjson.JSONDecodeError:
        raise RoleQueryError("the role query is not valid JSON") from None
    if isinstance(parsed, dict) and parsed and next(iter(parsed)) == "template":
        return  # resolved against the user at search time
    if isinstance(parsed, dict) and not parsed:
        raise RoleQueryError(
            "expected [FIELD_NAME] with value a query name or 'template' but found [END_OBJECT] instead"
        )
    _check_query(parsed)


def validate(groups: list[tuple[list[str], str | None]]) -> None:
    """Check the queries of a descriptor's ``indices`` groups, given as (names, query), in order."""
    for position, (names, query) in enumerate(groups):
        if query is None:
            continue
        try:
            check(query)
        except RoleQueryError as exc:
            raise ParseError(
                f"failed to parse field 'query' for indices [{','.join(names)}] at index privilege [{position}] "
                "of role descriptor"
            ) from exc
