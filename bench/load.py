"""A small closed-loop HTTP/1.1 load generator: keep-alive connections on raw asyncio streams.

Each connection sends one request, reads the whole answer, then sends the next; the caller picks
each request (so a mix of kinds is possible) and gets latencies per kind. Light enough to share a
2-core machine with the server (run it pinned to the other core).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Request = tuple[str, bytes]  # (kind, raw request bytes)


def request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: bench"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def pin(cpu: int) -> None:
    """Keep this process (the load) on one core and the server on the other, when there are two."""
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {cpu})


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else float("nan")


@dataclass
class Result:
    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)

    def count(self, kind: str | None = None) -> int:
        if kind is None:
            return sum(len(v) for v in self.latencies.values())
        return len(self.latencies.get(kind, []))

    def rate(self, kind: str | None = None) -> float:
        return self.count(kind) / self.seconds


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def run(
    host: str, port: int, connections: int, seconds: float, pick: Callable[[int, int], Request], warmup: float = 1.0
) -> Result:
    """``pick(c, n)`` gives connection c's n-th request; only answers that come after warm-up count."""
    result = Result(seconds)
    start = time.perf_counter() + warmup
    stop = start + seconds

    async def one(conn: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        n = 0
        try:
            while time.perf_counter() < stop:
                kind, raw = pick(conn, n)
                n += 1
                t0 = time.perf_counter()
                writer.write(raw)
                status = await _read_response(reader)
                t1 = time.perf_counter()
                if t1 >= start and t1 < stop:
                    result.latencies.setdefault(kind, []).append(t1 - t0)
                    by_status = result.statuses.setdefault(kind, {})
                    by_status[status] = by_status.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*[one(c) for c in range(connections)])
    return result
