"""Elasticsearch's TimeValue strings (``30d``, ``2h``, ``500ms``) and epoch-millisecond clocks."""

from __future__ import annotations

import re
import time

from keyplane.errors import ParseError

_UNITS_MS = {
    "nanos": 1e-6,
    "micros": 1e-3,
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
}
_PATTERN = re.compile(r"^(-?\d+)\s*(nanos|micros|ms|s|m|h|d)$", re.IGNORECASE)


def now_ms() -> int:
    return int(time.time() * 1000)


def parse_duration_ms(value: str, setting: str) -> int:
    """Milliseconds of a TimeValue; ``0`` and ``-1`` need no unit."""
    text = value.strip()
    if text in ("0", "-1"):
        return int(text)
    match = _PATTERN.match(text)
    if not match:
        raise ParseError(
            f"failed to parse setting [{setting}] with value [{value}] as a time value: unit is missing or unrecognized"
        )
    number = int(match.group(1))
    if number < 0 and number != -1:
        raise ParseError(
            f"failed to parse setting [{setting}] with value [{value}] as a time value: "
            "negative durations are not supported"
        )
    return int(number * _UNITS_MS[match.group(2).lower()])
