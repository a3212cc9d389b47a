"""Every route answers hostile input with a 4xx (or a 2xx), never a 5xx or a traceback."""

from __future__ import annotations

import itertools

import httpx

from keyplane.api import build_router
from tests.e2e.server import Server

BODIES = [
    b"",
    b"{",
    b"[]",
    b"null",
    b'"text"',
    b"12",
    b"{}",
    b'{"unknown_field": {"deep": [1, 2, {"x": null}]}}',
    b'{"name": null, "id": [], "ids": "", "value": {}, "status": 7, "query": {"bool": {"must": "x"}}}',
    b'{"role_descriptors": {"r": []}, "access": [], "configuration": [], "values": [1], "rules": {}}',
    b'{"index_name": 5, "scheduling": {"full": null}, "filtering": [null], "features": []}',
    b'{"sort": [{"x": {"order": "sideways"}}], "aggs": {"a": []}, "search_after": {}}',
    b'{"name": "\\u0000\\ud800"}',
]
PARAMS = [{}, {"size": "-5"}, {"from": "x"}, {"owner": "maybe"}, {"filter_path": "***,-,.."}]


def _routes() -> list[tuple[str, str]]:
    router = build_router(test_mode=False)
    out = []
    for routes in router._by_length.values():
        for route in routes:
            path = route.template
            for name in (
                "connector_id",
                "connector_sync_job_id",
                "id",
                "ids",
                "username",
                "name",
                "user",
                "application",
                "realms",
                "index",
            ):
                path = path.replace("{" + name + "}", "x%2Fy")
            out += [(method, path) for method in route.methods]
    return out


def test_hostile_requests_never_get_a_server_error(server: Server, http: httpx.Client) -> None:
    http.put("/_connector/x%2Fy", json={"index_name": "search-hostile", "service_type": "s"})
    failures = []
    for (method, path), body, params in itertools.product(_routes(), BODIES, PARAMS[:2]):
        res = http.request(method, path, content=body, params=params, headers={"Content-Type": "application/json"})
        if res.status_code >= 500:
            failures.append((method, path, body, params, res.status_code, res.text[:200]))
    for (method, path), params in itertools.product(_routes(), PARAMS[2:]):
        res = http.request(method, path, params=params)
        if res.status_code >= 500:
            failures.append((method, path, params, res.status_code, res.text[:200]))
    assert failures == []
