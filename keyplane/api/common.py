"""Small helpers shared by route handlers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keyplane.errors import ValidationError
from keyplane.http.body import Body
from keyplane.http.request import RestRequest
from keyplane.services import Services


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


async def add_profile_uids(
    services: Services, items: list[dict[str, Any]], realm_of: Callable[[dict[str, Any]], str]
) -> None:
    """``with_profile_uid``: add the owner's profile uid to each item whose owner has a profile."""
    uids = await services.profiles.uids(sorted({item["username"] for item in items}))
    for item in items:
        uid = uids.get((item["username"], realm_of(item)))
        if uid is not None:
            item["profile_uid"] = uid
