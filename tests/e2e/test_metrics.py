"""Prometheus metrics at GET /_keyplane/metrics from a real server (issue 13 item 3)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from elasticsearch import Elasticsearch
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.server import PASSWORD, Server, on_store

MONITOR_PASSWORD = "monitor-pw-5Gh"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with on_store(tmp_path_factory.mktemp("metrics")) as srv:
        es = Elasticsearch(srv.url, basic_auth=("elastic", PASSWORD))
        es.security.put_role(name="monitoring", cluster=["monitor"])
        es.security.put_role(name="nothing", cluster=[])
        es.security.put_user(username="mon", password=MONITOR_PASSWORD, roles=["monitoring"])
        es.security.put_user(username="nobody", password=MONITOR_PASSWORD, roles=["nothing"])
        yield srv


def scrape(srv: Server, auth: tuple[str, str] = ("mon", MONITOR_PASSWORD)) -> Samples:
    answer = httpx.get(f"{srv.url}/_keyplane/metrics", auth=auth, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_requests_latency_and_authentications_are_counted(metered: Server) -> None:
    before = scrape(metered)
    key = Elasticsearch(metered.url, basic_auth=("elastic", PASSWORD)).security.create_api_key(name="m")
    for _ in range(3):
        ok = httpx.get(f"{metered.url}/_security/_authenticate", headers={"authorization": f"ApiKey {key['encoded']}"})
        assert ok.status_code == 200
    assert httpx.get(f"{metered.url}/_security/_authenticate", auth=("elastic", "wrong")).status_code == 401
    assert (
        httpx.get(f"{metered.url}/_security/user/someone-{time.time_ns()}", auth=("elastic", PASSWORD)).status_code
        == 404
    )
    after = scrape(metered)

    route = {"route": "/_security/_authenticate", "method": "GET"}
    requests = "keyplane_http_requests_total"
    assert value(after, requests, **route, status="200") - value(before, requests, **route, status="200") == 3
    assert value(after, requests, **route, status="401") - value(before, requests, **route, status="401") == 1
    # The route's template, never the raw path.
    assert value(after, requests, route="/_security/user/{username}", method="GET", status="404") >= 1
    assert not any("someone-" in str(labels) for _, labels in after)
    latency = "keyplane_http_request_duration_seconds_count"
    assert value(after, latency, **route) - value(before, latency, **route) == 4
    inf = value(after, "keyplane_http_request_duration_seconds_bucket", **route, le="+Inf")
    assert inf == value(after, latency, **route)
    auths = "keyplane_authentications_total"
    assert (
        value(after, auths, type="api_key", outcome="success") - value(before, auths, type="api_key", outcome="success")
        == 3
    )
    assert (
        value(after, auths, type="basic", outcome="failure") - value(before, auths, type="basic", outcome="failure")
        == 1
    )
    assert value(after, "keyplane_cache_entries", cache="api_key") >= 1
    assert value(after, "keyplane_cache_entries", cache="password") >= 1
    # The key's three authentications found it in the cache; the wrong secret below does not.
    hits, misses = "keyplane_cache_hits_total", "keyplane_cache_misses_total"
    assert value(after, hits, cache="api_key") - value(before, hits, cache="api_key") == 3
    wrong = base64.b64encode(f"{key['id']}:not-its-secret".encode()).decode()
    assert (
        httpx.get(f"{metered.url}/_security/_authenticate", headers={"authorization": f"ApiKey {wrong}"}).status_code
        == 401
    )
    later = scrape(metered)
    assert value(later, misses, cache="api_key") - value(after, misses, cache="api_key") == 1
    assert value(later, hits, cache="api_key") == value(after, hits, cache="api_key")
    assert value(after, "keyplane_store_transaction_duration_seconds_count") > value(
        before, "keyplane_store_transaction_duration_seconds_count"
    )
    assert value(after, "keyplane_store_errors_total", kind="unavailable") == 0
    assert ("keyplane_retention_sweep_duration_seconds_count", frozenset()) in after


def test_keys_connectors_and_sync_jobs_by_state(tmp_path: Path) -> None:
    # A server of its own: the state figures are cached for a few seconds after a scrape.
    with on_store(tmp_path, extra_env={"KEYPLANE_AUDIT_ENABLED": "true"}) as srv:
        es = Elasticsearch(srv.url, basic_auth=("elastic", PASSWORD))
        live = es.security.create_api_key(name="live")
        es.security.create_api_key(name="short", expiration="1ms")
        gone = es.security.create_api_key(name="gone")
        es.security.invalidate_api_key(ids=[gone["id"]])
        es.connector.put(connector_id="c1", index_name="search-c1", name="one", service_type="github")
        es.connector.put(connector_id="c2", index_name="search-c2", name="two", service_type="github")
        es.connector.sync_job_post(id="c1")
        time.sleep(0.01)  # "short" has expired
        got = scrape(srv, ("elastic", PASSWORD))
        assert live["id"]
        assert value(got, "keyplane_api_keys", state="active") == 1
        assert value(got, "keyplane_api_keys", state="expired") == 1
        assert value(got, "keyplane_api_keys", state="invalidated") == 1
        assert value(got, "keyplane_connectors", status="created") == 2
        assert value(got, "keyplane_sync_jobs", status="pending") == 1
        assert value(got, "keyplane_state_metrics_stale") == 0
        assert value(got, "keyplane_audit_dropped_events_total") == 0
        assert value(got, "keyplane_audit_written_events_total") + value(got, "keyplane_audit_buffered_events") > 0


def test_without_the_monitor_privilege_the_answer_is_403(metered: Server) -> None:
    answer = httpx.get(f"{metered.url}/_keyplane/metrics", auth=("nobody", MONITOR_PASSWORD))
    assert answer.status_code == 403
    error = answer.json()["error"]
    assert error["type"] == "security_exception"
    assert "cluster:monitor/keyplane/metrics" in error["reason"] and "monitor" in error["reason"]
    assert httpx.get(f"{metered.url}/_keyplane/metrics").status_code == 401


def test_disabled_metrics_answer_404(tmp_path: Path) -> None:
    with on_store(tmp_path, extra_env={"KEYPLANE_METRICS_ENABLED": "false"}) as srv:
        answer = httpx.get(f"{srv.url}/_keyplane/metrics", auth=("elastic", PASSWORD))
        assert answer.status_code == 404
        assert answer.json()["error"]["type"] == "resource_not_found_exception"
        assert httpx.get(f"{srv.url}/_security/_authenticate", auth=("elastic", PASSWORD)).status_code == 200
