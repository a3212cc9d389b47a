"""Errors for a log, without the values they carry.

A database error quotes its statement's values or a whole row (PostgreSQL's ``Failing row contains
(...)``), which can hold password and API key hashes, and other errors can quote request data. So
what reaches a log is where an error happened and of which kind, never its message.
"""

from __future__ import annotations

import traceback


def without_values(exc: BaseException) -> str:
    """The exception's chain as frames and exception types, innermost cause last."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = "".join(traceback.format_tb(current.__traceback__))
        parts.append(f"Traceback (most recent call last):\n{frames}{kind(current)}")
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return "\ncaused by:\n".join(parts)


def kind(exc: BaseException) -> str:
    """The exception's class and, for a database error, its SQLSTATE: enough to tell errors apart."""
    name = f"{type(exc).__module__}.{type(exc).__qualname__}"
    state = getattr(exc, "sqlstate", None)
    return f"{name} [{state}]" if isinstance(state, str) else name
