"""HTTP compression, as Elasticsearch's HTTP layer does it: gzip or deflate request bodies are
inflated, and answers are gzipped for clients that accept it (the official clients' ``http_compress``)."""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

from keyplane.http.body import MAX_BODY_BYTES
from keyplane.http.errors import EsError

# Small answers are sent as they are: gzip would cost more than it saves.
MIN_COMPRESSED_BYTES = 512
# Inflated on the event loop at most: about a millisecond of work; larger bodies go on in a thread.
INLINE_BYTES = 256 * 1024
_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 15}


async def inflate(raw: bytes, content_encoding: str | None) -> bytes:
    """The body a client compressed, inflated; unchanged when it was sent as it is.

    The dispatcher calls this only once the caller is authenticated. A body that inflates to more
    than ``INLINE_BYTES`` is finished in a thread: inflating 100 MB takes long enough to hold up
    every other request if it ran on the event loop. Few such bodies are inflated at once, so a
    handful of small requests cannot make the server hold gigabytes.
    """
    encoding = (content_encoding or "").strip().lower()
    if not raw or encoding in ("", "identity"):
        return raw
    wbits = _WBITS.get(encoding)
    if wbits is None:
        raise EsError(400, "illegal_argument_exception", f"unsupported content encoding [{encoding}]")
    inflater = zlib.decompressobj(wbits)
    first = _step(inflater, raw, INLINE_BYTES, encoding)
    if len(first) < INLINE_BYTES or inflater.eof:
        return first
    async with _large_bodies():
        return await asyncio.to_thread(_inflate_rest, inflater, first, encoding)


def _inflate_rest(inflater: Any, first: bytes, encoding: str) -> bytes:
    """Inflate the rest in slices into one buffer, refusing as soon as the cap is passed."""
    out = bytearray(first)
    while not inflater.eof:
        # An empty tail still lets zlib hand out output it holds back (the rest of a long match).
        chunk = _step(inflater, inflater.unconsumed_tail, min(_SLICE, MAX_BODY_BYTES + 1 - len(out)), encoding)
        if not chunk:
            break
        out += chunk
        if len(out) > MAX_BODY_BYTES:
            raise EsError(413, "content_too_long_exception", "request body is too large")
    return bytes(out)


def _step(inflater: Any, data: bytes, limit: int, encoding: str) -> bytes:
    """Inflate at most ``limit`` bytes; what is left of the input stays in ``unconsumed_tail``."""
    try:
        return bytes(inflater.decompress(data, limit))
    except zlib.error:
        raise EsError(400, "illegal_argument_exception", f"request body is not valid {encoding} data") from None


_SLICE = 4 * 1024 * 1024
# Large bodies inflated at the same time; each may take 100 MB and a copy while it is handed on.
MAX_LARGE_INFLATIONS = 2
_semaphore: asyncio.Semaphore | None = None


def _large_bodies() -> asyncio.Semaphore:
    global _semaphore
    if _semaphore is None:
        _semaphore = asyncio.Semaphore(MAX_LARGE_INFLATIONS)
    return _semaphore


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether ``Accept-Encoding`` allows gzip (``gzip`` or ``*`` with a non-zero quality)."""
    for item in (accept_encoding or "").split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        quality = params.strip().removeprefix("q=").strip() if params.strip().startswith("q=") else "1"
        try:
            if float(quality) > 0:
                return True
        except ValueError:
            continue
    return False


def gzip(payload: bytes) -> bytes:
    deflater = zlib.compressobj(3, zlib.DEFLATED, 31)  # Elasticsearch's default level
    return deflater.compress(payload) + deflater.flush()
