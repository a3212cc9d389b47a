"""Limits Elasticsearch puts on stored documents, checked before anything is written.

* A document ``_id`` is at most 512 bytes of UTF-8 (``IndexRequest`` validation).
* A query nests at most ``indices.query.bool.max_nested_depth`` (30) queries deep.
* A ``flattened`` field (API-key metadata, profile labels) nests at most 20 objects deep
  (the mapping's default ``depth_limit``); arrays do not count, the field's own object does.
"""

from __future__ import annotations

from typing import Any

from keyplane.errors import InvalidArgument, ValidationError

MAX_ID_BYTES = 512
FLATTENED_DEPTH_LIMIT = 20
MAX_QUERY_DEPTH = 30  # indices.query.bool.max_nested_depth: queries nested in queries, the outermost is 1


class FlattenedTooDeep(InvalidArgument):
    """A value too deep for a flattened field: Elasticsearch fails to index the document (400)."""

    def __init__(self, field: str, doc_id: str | None = None) -> None:
        self.field = field
        self.doc_id = doc_id
        self.cause = (
            f"The provided [flattened] field [{field}] exceeds the maximum depth limit of [{FLATTENED_DEPTH_LIMIT}]."
        )
        where = f" in document with id '{doc_id}'" if doc_id else ""
        super().__init__(f"failed to parse field [{field}] of type [flattened]{where}")


def object_depth(value: Any) -> int:
    """How many objects deep ``value`` nests, arrays being transparent (iterative, any depth)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            level += 1
            deepest = max(deepest, level)
            stack.extend((child, level) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, level) for child in node)
    return deepest


def check_flattened(field: str, value: Any, doc_id: str | None = None) -> None:
    """Refuse ``value`` for a flattened field as Elasticsearch's mapper does."""
    if object_depth(value) > FLATTENED_DEPTH_LIMIT:
        raise FlattenedTooDeep(field, doc_id)


def id_messages(doc_id: str) -> list[str]:
    """Elasticsearch's validation message for a document id longer than 512 bytes."""
    size = len(doc_id.encode("utf-8", "surrogatepass"))
    if size > MAX_ID_BYTES:
        return [f"id [{doc_id}] is too long, must be no longer than {MAX_ID_BYTES} bytes but was: {size}"]
    return []


def check_id(doc_id: str) -> None:
    messages = id_messages(doc_id)
    if messages:
        raise ValidationError(*messages)


def check_query_depth(depth: int) -> None:
    """Refuse a query object at ``depth`` (1 for the outermost) past Elasticsearch's nesting limit."""
    if depth > MAX_QUERY_DEPTH:
        raise InvalidArgument(
            "The nested depth of the query exceeds the maximum nested depth for queries set in "
            "[indices.query.bool.max_nested_depth]"
        )
