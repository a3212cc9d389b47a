"""``GET /_security/stats``: per-node statistics of the security features (Elasticsearch 9.2).

Elasticsearch reports the bit-set cache of document-level security there. Keyplane keeps no such
cache (no role query is evaluated against documents yet), so this node reports it empty.
"""

from __future__ import annotations

from typing import Any

from keyplane.http.request import RestRequest
from keyplane.http.routing import Router

STATS = "cluster:monitor/xpack/security/stats"

_EMPTY_BIT_SET_CACHE = {
    "count": 0,
    "memory": "0b",
    "memory_in_bytes": 0,
    "hits": 0,
    "misses": 0,
    "evictions": 0,
    "hits_time_in_millis": 0,
    "misses_time_in_millis": 0,
}


async def get_stats(request: RestRequest) -> dict[str, Any]:
    node = {"roles": {"dls": {"bit_set_cache": dict(_EMPTY_BIT_SET_CACHE)}}}
    return {"nodes": {request.services.node_id: node}}


def register(router: Router) -> None:
    router.add("GET", "/_security/stats", get_stats, action=STATS)
