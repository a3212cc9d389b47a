"""Date values in queries: epoch milliseconds, ISO dates and date math such as ``now-1d/d``."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from keyplane.errors import ParseError
from keyplane.timevalue import now_ms

_MATH = re.compile(r"([+-])(\d+)([yMwdhHms])")
_UNIT_MS = {
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "H": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
    "M": 2_592_000_000,
    "y": 31_536_000_000,
}


def _round(ms: int, unit: str, up: bool) -> int:
    size = _UNIT_MS.get(unit)
    if size is None:
        raise ParseError(f"unsupported rounding unit [{unit}]")
    down = ms - ms % size
    return down + size - 1 if up else down


def parse_date(value: Any, *, round_up: bool = False, now: int | None = None) -> int:
    """Epoch ms from a number, a numeric string, an ISO date, or date math such as ``now-1d/d``.

    ``now``: the time ``now`` stands for. Elasticsearch reads the clock once per request, so that
    every ``now`` of one query means the same instant; callers parsing a query pass theirs."""
    if isinstance(value, bool):
        raise ParseError(f"failed to parse date field [{value}]")
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if text.startswith("now"):
        base, rest = now if now is not None else now_ms(), text[3:]
    else:
        anchor, sep, rest = text.partition("||")
        try:
            parsed = datetime.fromisoformat(anchor.replace("Z", "+00:00"))
        except ValueError:
            raise ParseError(
                f"failed to parse date field [{text}] with format [strict_date_optional_time||epoch_millis]"
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        base = int(parsed.timestamp() * 1000)
        if not sep:
            return base
    rounding = None
    if "/" in rest:
        rest, rounding = rest.split("/", 1)
    pos = 0
    for match in _MATH.finditer(rest):
        if match.start() != pos:
            break
        sign = 1 if match.group(1) == "+" else -1
        base += sign * int(match.group(2)) * _UNIT_MS[match.group(3)]
        pos = match.end()
    if pos != len(rest):
        raise ParseError(f"failed to parse date field [{text}]: invalid date math")
    if rounding:
        base = _round(base, rounding, round_up)
    return base


def format_date(ms: int) -> str:
    """Elasticsearch's default rendering of a date: ``2026-01-01T00:00:00.000Z``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
