"""GET /_security/stats (Elasticsearch 9.2) through the official client."""

from __future__ import annotations

import pytest
from elasticsearch import AuthorizationException, Elasticsearch

from tests.e2e.server import Server

EMPTY_CACHE = {
    "count": 0,
    "memory": "0b",
    "memory_in_bytes": 0,
    "hits": 0,
    "misses": 0,
    "evictions": 0,
    "hits_time_in_millis": 0,
    "misses_time_in_millis": 0,
}


def test_stats_of_this_node_need_monitor(es: Elasticsearch, server: Server) -> None:
    stats = es.security.get_stats().body
    (only,) = stats["nodes"].values()  # no DLS bit-set cache here, so an empty one
    assert only == {"roles": {"dls": {"bit_set_cache": EMPTY_CACHE}}}
    es.security.put_role(name="monitoring", cluster=["monitor"])
    es.security.put_user(username="mona", password="mona-secret", roles=[])
    es.security.put_user(username="moe", password="moe-secret", roles=["monitoring"])
    with pytest.raises(AuthorizationException) as denied:
        Elasticsearch(server.url, basic_auth=("mona", "mona-secret")).security.get_stats()
    assert denied.value.body["error"]["reason"].endswith(
        "this action is granted by the cluster privileges [monitor,manage,all]"
    )
    assert Elasticsearch(server.url, basic_auth=("moe", "moe-secret")).security.get_stats()["nodes"]
