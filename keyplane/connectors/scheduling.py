"""Sync schedules: the Quartz cron expressions Elasticsearch's connector scheduler accepts."""

from __future__ import annotations

from typing import Any

from keyplane.connectors.model import Doc
from keyplane.errors import InvalidArgument, ParseError

DEFAULT_INTERVAL = "0 0 0 * * ?"
SCHEDULE_KINDS = ("access_control", "full", "incremental")


def default_scheduling() -> Doc:
    """Every kind of sync off, at midnight, as a new connector starts."""
    return {kind: {"enabled": False, "interval": DEFAULT_INTERVAL} for kind in SCHEDULE_KINDS}


def parse_scheduling(raw: Doc) -> Doc:
    """The schedules of a request: each given kind needs [enabled] and a valid cron [interval]."""
    parsed: Doc = {}
    for kind in SCHEDULE_KINDS:
        if kind not in raw:
            continue
        entry = raw[kind]
        if not isinstance(entry, dict) or not isinstance(entry.get("enabled"), bool) or "interval" not in entry:
            raise ParseError(f"[{kind}] needs [enabled] and [interval]")
        check_cron(entry["interval"])
        parsed[kind] = {"enabled": entry["enabled"], "interval": entry["interval"]}
    return parsed


_MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
_DAYS = "SUN MON TUE WED THU FRI SAT".split()


def _cron_field(text: str, low: int, high: int, names: list[str] | None, specials: str) -> bool:
    if text == "*" or (text == "?" and "?" in specials):
        return True
    for part in text.split(","):
        if not part:
            return False
        base, _, step = part.partition("/")
        if step and not (step.isdigit() and int(step) > 0):
            return False
        if base in ("*", ""):
            if not step:
                return False
            continue
        if "L" in specials and base in ("L", "LW") or (base.endswith("L") and "L" in specials and len(base) > 1):
            inner = base[:-1] if base != "L" and base != "LW" else ""
            if inner and not _cron_value(inner, low, high, names):
                return False
            continue
        if "W" in specials and base.endswith("W"):
            if not _cron_value(base[:-1], low, high, names):
                return False
            continue
        if "#" in specials and "#" in base:
            day, _, nth = base.partition("#")
            if not (_cron_value(day, low, high, names) and nth.isdigit() and 1 <= int(nth) <= 5):
                return False
            continue
        start, dash, end = base.partition("-")
        if not _cron_value(start, low, high, names) or (dash and not _cron_value(end, low, high, names)):
            return False
    return True


def _cron_value(text: str, low: int, high: int, names: list[str] | None) -> bool:
    if names and text.upper() in names:
        return True
    return text.isdigit() and low <= int(text) <= high


def check_cron(expression: Any) -> None:
    """Quartz-style cron with seconds, as Elasticsearch's scheduler accepts."""
    parts = expression.split() if isinstance(expression, str) else []
    ok = len(parts) in (6, 7) and (
        _cron_field(parts[0], 0, 59, None, "")
        and _cron_field(parts[1], 0, 59, None, "")
        and _cron_field(parts[2], 0, 23, None, "")
        and _cron_field(parts[3], 1, 31, None, "?LW")
        and _cron_field(parts[4], 1, 12, _MONTHS, "")
        and _cron_field(parts[5], 1, 7, _DAYS, "?L#")
        and (len(parts) == 6 or _cron_field(parts[6], 1970, 2199, None, ""))
    )
    if ok and parts[3] != "?" and parts[5] != "?":
        ok = False  # Quartz needs one of day-of-month and day-of-week to be '?'
    if not ok:
        raise InvalidArgument(f"invalid cron expression [{expression}]")
