"""Small helpers shared by route handlers."""

from __future__ import annotations

from typing import Any

from keyplane.errors import ValidationError
from keyplane.http.body import Body
from keyplane.http.request import RestRequest
from keyplane.security.query import QueryPage


def nodes_answer(request: RestRequest) -> dict[str, Any]:
    """The answer of cache-clearing APIs: this node. Every node drops its caches through change notices."""
    settings, node_id = request.services.settings, request.services.node_id
    return {
        "_nodes": {"total": 1, "successful": 1, "failed": 0},
        "cluster_name": settings.cluster_name,
        "nodes": {node_id: {"name": settings.node_name}},
    }


def required_body(request: RestRequest, parser: str, fields: set[str] | frozenset[str]) -> Body:
    """The request's JSON object, read by a strict parser that knows only ``fields``."""
    body = request.body(parser, required=True)
    assert body is not None  # required=True raises instead of returning None
    body.check_fields(fields)
    return body


def page_window(body: Body | None, default_size: int = 10) -> tuple[int, int]:
    """``from`` and ``size`` of a query body, with Elasticsearch's checks."""
    if body is None:
        return 0, default_size
    start = body.integer("from") or 0
    size = body.integer("size")
    size = default_size if size is None else size
    messages = []
    if start < 0:
        messages.append(f"[from] parameter cannot be negative but was [{start}]")
    if size < 0:
        messages.append(f"[size] parameter cannot be negative but was [{size}]")
    if messages:
        raise ValidationError(*messages)
    return start, size


def with_profile_uid(item: dict[str, Any], uids: dict[tuple[str, str], str], realm: str) -> dict[str, Any]:
    """``with_profile_uid``: ``item`` with its owner's profile uid last, when the owner has a profile."""
    uid = uids.get((item["username"], realm))
    if uid is not None:
        item["profile_uid"] = uid
    return item


def record_hits(page: QueryPage) -> list[dict[str, Any]]:
    """The records of a user or role query, each with the values it sorted by (``_sort``) last."""
    return [hit.record if hit.sort is None else {**hit.record, "_sort": hit.sort} for hit in page.hits]
