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
    every other request if it ran on the event loop.
    """
    encoding = (content_encoding or "").strip().lower()
    if not raw or encoding in ("", "identity"):
        return raw
    wbits = _WBITS.get(encoding)
    if wbits is None:
        raise EsError(400, "illegal_argument_exception", f"unsupported content encoding [{encoding}]")
    inflater = zlib.decompressobj(wbits)
    body = _step(inflater, raw, INLINE_BYTES, encoding)
    if len(body) == INLINE_BYTES and not inflater.eof:  # stopped by the limit: more may follow
        rest = MAX_BODY_BYTES + 1 - len(body)
        body += await asyncio.to_thread(_step, inflater, inflater.unconsumed_tail, rest, encoding)
    if len(body) > MAX_BODY_BYTES:
        raise EsError(413, "content_too_long_exception", "request body is too large")
    return body


def _step(inflater: Any, data: bytes, limit: int, encoding: str) -> bytes:
    """Inflate at most ``limit`` bytes; what is left of the input stays in ``unconsumed_tail``."""
    try:
        return bytes(inflater.decompress(data, limit))
    except zlib.error:
        raise EsError(400, "illegal_argument_exception", f"request body is not valid {encoding} data") from None


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
