"""Date math in index names, as Elasticsearch resolves them: ``<logstash-{now/M}>`` names
``logstash-2024.03.01``, ``<app-{now/d{yyyy.MM|+01:00}}>`` formats in a zone.

An expression in ``<...>`` is static text with ``{math{format|zone}}`` parts; ``\\`` escapes a brace.
The math is ``now`` followed by ``+N``/``-N`` units and ``/unit`` roundings (y M w d h H m s); the
format is a Java date pattern (``uuuu.MM.dd`` by default), of which the common letters are supported.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from keyplane.errors import ParseError

DEFAULT_FORMAT = "uuuu.MM.dd"
_OP = re.compile(r"([+-])(\d+)([yMwdhHms])|/([yMwdhHms])")
_PATTERN = re.compile(r"'([^']*)'|([a-zA-Z])\2*|.", re.S)
_OFFSET = re.compile(r"^([+-])(\d{1,2}):?(\d{2})?$")


def resolve(expression: str, now: datetime) -> str:
    """The index name ``expression`` stands for at ``now`` (an aware datetime); names outside ``<...>``
    are returned as they are."""
    if not (expression.startswith("<") and expression.endswith(">")):
        return expression
    text = expression[1:-1]
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif ch == "{":
            end = _closing(text, i, expression)
            out.append(_evaluate(text[i + 1 : end], now, expression))
            i = end + 1
        elif ch == "}":
            raise _invalid(expression, "invalid character in placeholder at position [" + str(i) + "]")
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _invalid(expression: str, why: str) -> ParseError:
    return ParseError(f"invalid dynamic name expression [{expression}]. {why}")


def _closing(text: str, start: int, expression: str) -> int:
    """The index of the ``}`` closing the placeholder opened at ``start`` (one nested ``{}`` allowed)."""
    depth = 0
    for j in range(start, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    raise _invalid(expression, "date math placeholder is open ended")


def _evaluate(placeholder: str, now: datetime, expression: str) -> str:
    pattern, zone = DEFAULT_FORMAT, "UTC"
    if "{" in placeholder:
        if not placeholder.endswith("}"):
            raise _invalid(expression, "missing closing `}` for date math format")
        math, spec = placeholder[:-1].split("{", 1)
        if not spec:
            raise _invalid(expression, "missing date format")
        pattern, _, given_zone = spec.partition("|")
        zone = given_zone or zone
    else:
        math = placeholder
    return _format(_compute(math, now.astimezone(_zone(zone, expression)), expression), pattern, expression)


def _zone(name: str, expression: str) -> tzinfo:
    if name.upper() in ("UTC", "Z"):
        return UTC
    offset = _OFFSET.match(name)
    if offset:
        sign = -1 if offset.group(1) == "-" else 1
        return timezone(sign * timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3) or 0)))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _invalid(expression, f"unknown time zone [{name}]") from None


def _compute(math: str, now: datetime, expression: str) -> datetime:
    if not math.startswith("now"):
        raise _invalid(expression, f"date math [{math}] must start with now")
    when, rest = now, math[3:]
    while rest:
        op = _OP.match(rest)
        if op is None:
            raise _invalid(expression, f"cannot parse date math [{math}]")
        sign, amount, unit, rounding = op.groups()
        when = _round(when, rounding) if rounding else _add(when, int(amount) * (-1 if sign == "-" else 1), unit)
        rest = rest[op.end() :]
    return when


def _add(when: datetime, amount: int, unit: str) -> datetime:
    if unit in "yM":
        months = when.month - 1 + amount * (12 if unit == "y" else 1)
        year, month = when.year + months // 12, months % 12 + 1
        day = min(when.day, _month_days(year, month))
        return when.replace(year=year, month=month, day=day)
    seconds = {"w": 604800, "d": 86400, "h": 3600, "H": 3600, "m": 60, "s": 1}[unit]
    return when + timedelta(seconds=amount * seconds)


def _month_days(year: int, month: int) -> int:
    following = datetime(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def _round(when: datetime, unit: str) -> datetime:
    when = when.replace(microsecond=0)
    if unit == "s":
        return when
    when = when.replace(second=0)
    if unit == "m":
        return when
    when = when.replace(minute=0)
    if unit in "hH":
        return when
    when = when.replace(hour=0)
    if unit == "w":
        return when - timedelta(days=when.weekday())
    if unit == "d":
        return when
    when = when.replace(day=1)
    return when if unit == "M" else when.replace(month=1)


def _format(when: datetime, pattern: str, expression: str) -> str:
    out: list[str] = []
    for quoted, token in _iter(pattern):
        if quoted is not None:
            out.append(quoted if quoted else "'")
            continue
        width = len(token)
        kind = token[0]
        if kind in "yuY":
            out.append(str(when.year)[-2:] if width == 2 else str(when.year).zfill(width))
        elif kind in "MdHhmsS" or kind == "D":
            value = {
                "M": when.month,
                "d": when.day,
                "H": when.hour,
                "h": (when.hour % 12) or 12,
                "m": when.minute,
                "s": when.second,
                "S": when.microsecond // 1000,
                "D": when.timetuple().tm_yday,
            }[kind]
            out.append(str(value).zfill(width))
        elif kind.isalpha():
            raise _invalid(expression, f"unsupported date format letter [{kind}] in [{pattern}]")
        else:
            out.append(token)
    return "".join(out)


def _iter(pattern: str) -> list[tuple[str | None, str]]:
    """The pattern as (quoted literal or None, token) pairs; ``''`` is a quote."""
    parts: list[tuple[str | None, str]] = []
    for match in _PATTERN.finditer(pattern):
        if match.group(1) is not None:
            parts.append((match.group(1), ""))
        else:
            parts.append((None, match.group(0)))
    return parts
