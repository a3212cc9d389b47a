"""The connector clock (strictly increasing, so consecutive writes order) and dates printed and parsed as
Elasticsearch does. Query date math lives apart, in ``keyplane.query.dates``."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from keyplane.errors import ParseError

_last_stamp = 0


def now_ns() -> int:
    """Strictly increasing nanoseconds on this node, so consecutive writes always order."""
    global _last_stamp
    stamp = max(time.time_ns() // 1000 * 1000, _last_stamp + 1000)
    _last_stamp = stamp
    return stamp


def format_ns(ns: int) -> str:
    """ISO-8601 UTC with at least millisecond precision, as Elasticsearch prints dates."""
    seconds, rest = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{rest:09d}".rstrip("0")
    return f"{base}.{fraction.ljust(3, '0')}Z"


def now_iso() -> str:
    return format_ns(now_ns())


_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}(?::\d{2})?)(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$")


def parse_timestamp(value: Any, field: str) -> str:
    """A date field of a request, re-printed the way Elasticsearch stores it."""
    if isinstance(value, bool) or value is None:
        raise ParseError(f"failed to parse date field [{value}] for [{field}]")
    if isinstance(value, (int, float)):
        return format_ns(int(value) * 1_000_000)
    match = _ISO.match(str(value))
    if not match:
        raise ParseError(f"failed to parse date field [{value}] for [{field}]")
    day, clock, fraction, zone = match.groups()
    if clock.count(":") == 1:
        clock += ":00"
    try:
        parsed = datetime.fromisoformat(f"{day}T{clock}{_zone(zone)}")
    except ValueError:
        raise ParseError(f"failed to parse date field [{value}] for [{field}]") from None
    nanos = int((fraction or "0").ljust(9, "0"))
    return format_ns(int(parsed.timestamp()) * 1_000_000_000 + nanos)


def _zone(zone: str | None) -> str:
    if zone in (None, "Z"):
        return "+00:00"
    assert zone is not None
    return zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
