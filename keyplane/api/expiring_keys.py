"""``GET /_keyplane/api_key/_expiring``: live API keys expiring within a window, soonest first.

Keyplane's own API (not Elasticsearch's), answered in the query API's shape (``total``, ``count``,
``api_keys`` with ``_sort``) so a client that renders query results renders these too.
Parameters: ``within`` (a TimeValue, default ``7d``), ``size`` (default 10), ``from``, and
``search_after``: the ``_sort`` of the previous page's last key, ``<expiration>,<id>``.
"""

from __future__ import annotations

from typing import Any

from keyplane.api.apikey_view import render_key
from keyplane.apikeys.expiring import DEFAULT_WITHIN_MS, ExpiringSpec
from keyplane.apikeys.service import QUERY
from keyplane.http.request import RestRequest
from keyplane.http.routing import Router
from keyplane.timevalue import parse_duration_ms

PATH = "/_keyplane/api_key/_expiring"


def _within(request: RestRequest) -> int:
    text = request.param("within")
    return DEFAULT_WITHIN_MS if text is None else parse_duration_ms(text, "within")


def _search_after(request: RestRequest) -> list[Any] | None:
    text = request.param("search_after")
    return None if text is None else text.split(",", 1)


async def expiring(request: RestRequest) -> dict[str, Any]:
    spec = ExpiringSpec(
        within_ms=_within(request),
        start=request.int_param("from", 0) or 0,
        size=request.int_param("size", 10) or 0,  # "size=0": the total alone
        search_after=_search_after(request),
    )
    result = await request.services.expiring_api_keys.expiring(request.auth, spec)
    keys = [{**render_key(found.key), "_sort": found.sort} for found in result.keys]
    return {"total": result.total, "count": len(keys), "api_keys": keys}


def register(router: Router) -> None:
    # self_checked: as the query API, manage_own_api_key reaches the caller's own keys only.
    router.add(
        "GET", PATH, expiring, action=QUERY, params=("within", "size", "from", "search_after"), self_checked=True
    )
