"""Scroll contexts: a search's hits kept in this process's memory, handed out a batch at a time.

Like Elasticsearch's, a context is a point-in-time view (documents written after the search are not
in it), is owned by the caller who opened it, and lapses when not used within its keep-alive.
The id is opaque text; it carries the context's number so that a lapsed context can be named in
Elasticsearch's ``No search context found for id [N]``.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from keyplane.errors import InvalidArgument, KeyplaneError
from keyplane.indices.search import Hit, SearchRequest, SearchResult

_PREFIX = "keyplane-scroll:"


class ScrollMissing(KeyplaneError):
    """A scroll id whose context lapsed, was cleared, or belongs to someone else."""

    def __init__(self, number: int) -> None:
        super().__init__(f"No search context found for id [{number}]")
        self.number = number


@dataclass
class _Context:
    owner: str
    result: SearchResult
    request: SearchRequest
    served: int
    expires_ms: int


def _encode(number: int, nonce: str) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{number}:{nonce}".encode()).decode().rstrip("=")


def parse_id(scroll_id: str) -> tuple[int, str]:
    """The context number and nonce of an id, or Elasticsearch's refusal of an unreadable one."""
    try:
        text = base64.urlsafe_b64decode(scroll_id + "=" * (-len(scroll_id) % 4)).decode()
        if not text.startswith(_PREFIX):
            raise ValueError(text)
        number, nonce = text[len(_PREFIX) :].split(":", 1)
        return int(number), nonce
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument("Cannot parse scroll id") from None


class Scrolls:
    """The open scroll contexts of this process; ``clock`` gives epoch milliseconds."""

    def __init__(self, clock: Callable[[], int]) -> None:
        self._clock = clock
        self._numbers = itertools.count(1)
        self._open: dict[str, _Context] = {}

    def _expire(self) -> None:
        now = self._clock()
        for key in [k for k, c in self._open.items() if c.expires_ms <= now]:
            del self._open[key]

    def open(self, owner: str, result: SearchResult, request: SearchRequest, keep_alive_ms: int) -> str:
        """A context over ``result`` whose first batch the search itself returned."""
        self._expire()
        scroll_id = _encode(next(self._numbers), secrets.token_urlsafe(12))
        served = request.start + request.size
        self._open[scroll_id] = _Context(owner, result, request, served, self._clock() + keep_alive_ms)
        return scroll_id

    def next(
        self, scroll_id: str, owner: str, keep_alive_ms: int | None
    ) -> tuple[SearchRequest, SearchResult, tuple[Hit, ...]]:
        """The next batch of the context (empty once every hit was served), its keep-alive renewed."""
        number, _ = parse_id(scroll_id)
        self._expire()
        context = self._open.get(scroll_id)
        if context is None or context.owner != owner:
            raise ScrollMissing(number)
        batch = context.result.page(context.served, context.request.size)
        context.served += len(batch)
        if keep_alive_ms is not None:
            context.expires_ms = self._clock() + keep_alive_ms
        return context.request, context.result, batch

    def clear(self, scroll_ids: list[str], owner: str) -> int:
        """Close the named contexts (``_all``: every context of the owner); how many were open."""
        self._expire()
        if "_all" in scroll_ids:
            mine = [k for k, c in self._open.items() if c.owner == owner]
        else:
            for scroll_id in scroll_ids:
                parse_id(scroll_id)
            mine = [k for k in dict.fromkeys(scroll_ids) if k in self._open and self._open[k].owner == owner]
        for key in mine:
            del self._open[key]
        return len(mine)

    def reset(self) -> None:
        self._open.clear()
