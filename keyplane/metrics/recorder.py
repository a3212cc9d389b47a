"""What the request path, the store and the background jobs count.

prometheus_client's own Counter and Histogram take a lock per update and walk the buckets in
Python: several microseconds per request on a path that costs ~40. Here an update is a dict lookup
and a few additions on the event loop's thread (no lock needed), and the exposition builds the
metric families from these numbers when scraped.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

# Upper bounds of the latency histograms, in seconds (Prometheus's le labels); +Inf is the last count.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Authentication outcomes by the scheme of the Authorization header.
SCHEMES = {"basic": "basic", "apikey": "api_key", "bearer": "bearer"}


_FIRST_BOUND = LATENCY_BUCKETS[0]


@dataclass(slots=True)
class Timings:
    """A histogram's numbers: sum, and the count per bucket (not cumulative; +Inf last)."""

    total: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))

    @property
    def count(self) -> int:
        # Added up when scraped rather than counted apart on every request.
        return sum(self.buckets)

    def add(self, seconds: float) -> None:
        self.total += seconds
        # Most take less than the first bound: a comparison instead of a bisect (~4x the cost).
        self.buckets[0 if seconds <= _FIRST_BOUND else bisect_left(LATENCY_BUCKETS, seconds)] += 1


@dataclass(slots=True)
class Sweeps:
    count: int = 0
    deleted: int = 0
    seconds: float = 0.0


class Recorder:
    def __init__(self) -> None:
        # (route template, method, status, scheme, authentication) -> timings: the route's template,
        # never the raw path. One dictionary update per request counts both the request and its
        # authentication; the exposition adds them up by the labels it shows.
        self.requests: dict[tuple[str, str, int, str | None, int], Timings] = {}
        # Requests quicker than this (most) go in the first bucket: the dispatcher counts those itself
        # (a lookup and two additions, no call) and calls :meth:`request` for the others. Read here,
        # when the recorder is made, so that a benchmark that stretches the bounds finds them stretched.
        self.first_bound = LATENCY_BUCKETS[0]
        self.store = Timings()
        self.store_errors: dict[str, int] = {"unavailable": 0, "error": 0}
        self.sweeps = Sweeps()

    def request(
        self, template: str, method: str, status: int, seconds: float, scheme: str | None, auth: int
    ) -> Timings:
        """One answered request; ``auth``: 0 not attempted, 1 authenticated, 2 refused. Returns the
        timings it counted in, which a caller may keep for the next request of the same kind."""
        key = (template, method, status, scheme, auth)
        timings = self.requests.get(key)
        if timings is None:
            timings = self.requests[key] = Timings()
        # Timings.add, inline: one call less on every request.
        timings.total += seconds
        timings.buckets[0 if seconds <= self.first_bound else bisect_left(LATENCY_BUCKETS, seconds)] += 1
        return timings

    def authentications(self) -> dict[tuple[str, str], int]:
        """(type, outcome) -> count; type: basic, api_key, bearer, anonymous, other."""
        counts: dict[tuple[str, str], int] = {}
        for (_, _, _, scheme, auth), timings in list(self.requests.items()):
            if auth:
                kind = SCHEMES.get(scheme, "other") if scheme else "anonymous"
                outcome = (kind, "success" if auth == 1 else "failure")
                counts[outcome] = counts.get(outcome, 0) + timings.count
        return counts

    def store_call(self, seconds: float, error: str | None) -> None:
        """One store transaction (the Database's observer): its time, and how it failed, if it did."""
        self.store.add(seconds)
        if error is not None:
            self.store_errors[error] = self.store_errors.get(error, 0) + 1

    def swept(self, deleted: int, seconds: float) -> None:
        self.sweeps.count += 1
        self.sweeps.deleted += deleted
        self.sweeps.seconds += seconds
