"""The Prometheus text format of Keyplane's metrics, through prometheus_client.

A collector on a registry of its own (not the process-wide default one, which would also carry
whatever else a library registers there) turns the recorder's numbers, the caches' sizes and the
state snapshot into metric families when scraped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import accumulate

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from keyplane.metrics.recorder import LATENCY_BUCKETS, Recorder, Timings
from keyplane.metrics.state import Snapshot, StateReader

# generate_latest escapes names to underscores: the classic 0.0.4 text format, which every scraper reads.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
_BOUNDS = [*(str(b) for b in LATENCY_BUCKETS), "+Inf"]


class Gauges:
    """Sizes read when scraped: each a name for the ``cache`` label and how to read it."""

    def __init__(self) -> None:
        self.caches: dict[str, Callable[[], int]] = {}
        # The caches themselves, for the hit and miss counts of those that keep them (``hits`` and
        # ``misses`` attributes: counted by the cache, where a lookup already is).
        self.cache_objects: dict[str, Callable[[], object]] = {}
        self.audit: Callable[[], tuple[int, int, int, int]] | None = None  # buffered, written, dropped, failed


class Metrics:
    def __init__(self, state: StateReader) -> None:
        self.recorder = Recorder()
        self.gauges = Gauges()
        self.state = state
        self.registry = CollectorRegistry(auto_describe=False)
        self._snapshot = Snapshot()
        self.registry.register(_Collector(self))

    async def render(self) -> bytes:
        """The text format of every metric (reads the state aggregates first when they are old)."""
        self._snapshot = await self.state.current()
        return generate_latest(self.registry)


def _buckets(timings: Iterable[Timings]) -> tuple[list[int], int, float]:
    """The cumulative buckets, count and sum of several timings together."""
    counts = [0] * (len(LATENCY_BUCKETS) + 1)
    total = 0
    seconds = 0.0
    for t in timings:
        counts = [a + b for a, b in zip(counts, t.buckets, strict=True)]
        total += t.count
        seconds += t.total
    return list(accumulate(counts)), total, seconds


class _Collector:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        recorder = self.metrics.recorder
        yield from self._requests(recorder)
        auth = CounterMetricFamily(
            "keyplane_authentications", "Authentications by credential type and outcome", labels=["type", "outcome"]
        )
        for (kind, outcome), n in sorted(recorder.authentications().items()):
            auth.add_metric([kind, outcome], n)
        yield auth
        caches = GaugeMetricFamily("keyplane_cache_entries", "Entries held by the credential caches", labels=["cache"])
        for name, size in self.metrics.gauges.caches.items():
            caches.add_metric([name], size())
        yield caches
        yield from self._cache_lookups()
        yield from self._store(recorder)
        yield from self._state(self.metrics._snapshot)
        if self.metrics.gauges.audit is not None:
            buffered, written, dropped, failed = self.metrics.gauges.audit()
            yield GaugeMetricFamily("keyplane_audit_buffered_events", "Audit events waiting for the writer", buffered)
            yield CounterMetricFamily("keyplane_audit_written_events", "Audit events appended to the file", written)
            yield CounterMetricFamily(
                "keyplane_audit_dropped_events", "Audit events dropped because the buffer was full", dropped
            )
            yield CounterMetricFamily(
                "keyplane_audit_failed_events",
                "Audit events lost to failed writes or that could not be rendered",
                failed,
            )

    def _cache_lookups(self) -> Iterator[Metric]:
        hits = CounterMetricFamily("keyplane_cache_hits", "Credential cache lookups that found", labels=["cache"])
        misses = CounterMetricFamily("keyplane_cache_misses", "Credential cache lookups that missed", labels=["cache"])
        counted = False
        for name, cache in self.metrics.gauges.cache_objects.items():
            found, missed = getattr(cache(), "hits", None), getattr(cache(), "misses", None)
            if isinstance(found, int) and isinstance(missed, int):
                hits.add_metric([name], found)
                misses.add_metric([name], missed)
                counted = True
        if counted:
            yield hits
            yield misses

    @staticmethod
    def _requests(recorder: Recorder) -> Iterator[Metric]:
        counts = CounterMetricFamily(
            "keyplane_http_requests",
            "HTTP requests by route template, method and status",
            labels=["route", "method", "status"],
        )
        by_status: dict[tuple[str, str, int], int] = {}
        by_route: dict[tuple[str, str], list[Timings]] = {}
        for (route, method, status, _, _), one in list(recorder.requests.items()):
            by_status[(route, method, status)] = by_status.get((route, method, status), 0) + one.count
            by_route.setdefault((route, method), []).append(one)
        for (route, method, status), count in sorted(by_status.items()):
            counts.add_metric([route, method, str(status)], count)
        yield counts
        latency = HistogramMetricFamily(
            "keyplane_http_request_duration_seconds",
            "Time from the request's arrival to its answer, by route template and method",
            labels=["route", "method"],
        )
        for (route, method), timings in sorted(by_route.items()):
            cumulative, _, seconds = _buckets(timings)
            latency.add_metric([route, method], list(zip(_BOUNDS, cumulative, strict=True)), seconds)
        yield latency

    @staticmethod
    def _store(recorder: Recorder) -> Iterator[Metric]:
        cumulative, _, seconds = _buckets([recorder.store])
        store = HistogramMetricFamily("keyplane_store_transaction_duration_seconds", "Store transactions' duration")
        store.add_metric([], list(zip(_BOUNDS, cumulative, strict=True)), seconds)
        yield store
        errors = CounterMetricFamily(
            "keyplane_store_errors",
            "Store transactions that failed: unavailable (503) or other errors",
            labels=["kind"],
        )
        for kind, n in sorted(recorder.store_errors.items()):
            errors.add_metric([kind], n)
        yield errors
        sweeps = recorder.sweeps
        yield SummaryMetricFamily(
            "keyplane_retention_sweep_duration_seconds",
            "Retention sweeps of invalidated and expired API keys",
            count_value=sweeps.count,
            sum_value=sweeps.seconds,
        )
        yield CounterMetricFamily(
            "keyplane_retention_swept_api_keys", "API keys deleted by retention sweeps", sweeps.deleted
        )

    @staticmethod
    def _state(snapshot: Snapshot) -> Iterator[Metric]:
        keys = GaugeMetricFamily("keyplane_api_keys", "API keys by state", labels=["state"])
        for state in ("active", "expired", "invalidated"):
            if state in snapshot.api_keys:
                keys.add_metric([state], snapshot.api_keys[state])
        yield keys
        connectors = GaugeMetricFamily("keyplane_connectors", "Connectors by status", labels=["status"])
        for status, n in sorted(snapshot.connectors.items()):
            connectors.add_metric([status], n)
        yield connectors
        jobs = GaugeMetricFamily("keyplane_sync_jobs", "Connector sync jobs by status", labels=["status"])
        for status, n in sorted(snapshot.sync_jobs.items()):
            jobs.add_metric([status], n)
        yield jobs
        yield GaugeMetricFamily(
            "keyplane_state_metrics_stale",
            "1 when the last read of the store's aggregates failed",
            int(snapshot.failed),
        )
