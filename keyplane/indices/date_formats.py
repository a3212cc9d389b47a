"""Date values of ``date`` and ``date_nanos`` fields in nanoseconds since the epoch, read and printed
through a mapping's or a request's ``format``: Elasticsearch's named formats used here
(``strict_date_optional_time[_nanos]``, ``date_optional_time``, ``epoch_millis``, ``epoch_second``) and
Java ``DateTimeFormatter`` patterns of the usual letters (``yyyy-MM-dd HH:mm:ss.SSS``); ``a||b`` tries each."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from keyplane.errors import InvalidArgument

NANOS_PER_MS = 1_000_000
_ISO_NAMES = frozenset(
    {"strict_date_optional_time", "strict_date_optional_time_nanos", "date_optional_time", "date_time", "date"}
)
_ISO = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?)?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?"
)
_LETTERS = {"y": r"\d{4}", "M": r"\d{1,2}", "d": r"\d{1,2}", "H": r"\d{1,2}", "m": r"\d{1,2}", "s": r"\d{1,2}"}


class DateUnparsable(InvalidArgument):
    """A value the format does not read (400, ``failed to parse date field``)."""


def _tokens(pattern: str) -> list[tuple[str, int]]:
    """A pattern as (letter, count) runs; literals as (text, 0)."""
    out: list[tuple[str, int]] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "'":
            end = pattern.find("'", i + 1)
            end = len(pattern) if end < 0 else end
            out.append((pattern[i + 1 : end], 0))
            i = end + 1
        elif ch.isalpha():
            j = i
            while j < len(pattern) and pattern[j] == ch:
                j += 1
            out.append((ch, j - i))
            i = j
        else:
            out.append((ch, 0))
            i += 1
    return out


def _nanos(year: int, month: int, day: int, hour: int, minute: int, second: int, fraction: str, zone: str) -> int:
    moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    seconds = int(moment.timestamp())
    if zone and zone != "Z":
        sign = -1 if zone[0] == "+" else 1
        digits = zone[1:].replace(":", "")
        seconds += sign * (int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60)
    return seconds * 1_000_000_000 + int((fraction or "0").ljust(9, "0")[:9])


def _parse_one(text: str, fmt: str) -> int | None:
    if fmt in _ISO_NAMES:
        m = _ISO.fullmatch(text)
        if m is None:
            return None
        y, mo, d, h, mi, s, frac, zone = m.groups()
        return _nanos(int(y), int(mo or 1), int(d or 1), int(h or 0), int(mi or 0), int(s or 0), frac or "", zone or "")
    if fmt in ("epoch_millis", "epoch_second"):
        if not re.fullmatch(r"-?\d+(\.\d+)?", text):
            return None
        scale = NANOS_PER_MS if fmt == "epoch_millis" else 1_000_000_000
        return int(float(text) * scale) if "." in text else int(text) * scale
    groups: list[str] = []
    regex = ""
    for token, count in _tokens(fmt):
        if count == 0:
            regex += re.escape(token)
        elif token == "S":
            regex += rf"(\d{{{count}}})"
            groups.append("S")
        elif token in _LETTERS:
            regex += f"({_LETTERS[token]})"
            groups.append(token)
        else:
            return None  # a letter this reader does not know
    m = re.fullmatch(regex, text)
    if m is None:
        return None
    got = dict(zip(groups, m.groups(), strict=True))
    try:
        return _nanos(
            int(got.get("y", 1970)),
            int(got.get("M", 1)),
            int(got.get("d", 1)),
            int(got.get("H", 0)),
            int(got.get("m", 0)),
            int(got.get("s", 0)),
            got.get("S", ""),
            "",
        )
    except ValueError:
        return None


def parse_nanos(value: Any, fmt: str | None = None) -> int:
    """A date value in nanoseconds: a number is epoch milliseconds; text is read by ``fmt`` (default:
    ``strict_date_optional_time||epoch_millis``, Elasticsearch's default for date fields)."""
    if isinstance(value, bool) or value is None:
        raise DateUnparsable(f"failed to parse date field [{value}] with format [{fmt}]")
    if isinstance(value, (int, float)) and not fmt:
        return int(value * NANOS_PER_MS)
    text = str(value)
    for one in (fmt or "strict_date_optional_time||epoch_millis").split("||"):
        try:
            found = _parse_one(text, one)
        except (ValueError, OverflowError):
            found = None
        if found is not None:
            return found
    raise DateUnparsable(f"failed to parse date field [{text}] with format [{fmt}]")


def format_nanos(nanos: int, fmt: str) -> str:
    """A date in ``fmt``: the named formats as Elasticsearch prints them, else the pattern's letters."""
    seconds, fraction = divmod(nanos, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    digits = f"{fraction:09d}"
    if fmt == "epoch_millis":
        return str(nanos // NANOS_PER_MS)
    if fmt == "epoch_second":
        return str(seconds)
    if fmt in _ISO_NAMES:
        shown = digits.rstrip("0").ljust(3, "0") if fmt.endswith("_nanos") else digits[:3]
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + shown + "Z"
    out = ""
    for token, count in _tokens(fmt.split("||")[0]):
        if count == 0:
            out += token
        elif token == "S":
            out += digits[:count].ljust(count, "0")
        else:
            number = {
                "y": moment.year,
                "M": moment.month,
                "d": moment.day,
                "H": moment.hour,
                "m": moment.minute,
                "s": moment.second,
            }.get(token)
            out += token * count if number is None else f"{number:0{count}d}"
    return out
