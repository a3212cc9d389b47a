"""HTTP compression, as Elasticsearch's HTTP layer does it: gzip or deflate request bodies are
inflated, and answers are gzipped for clients that accept it (the official clients' ``http_compress``)."""

from __future__ import annotations

import zlib

from keyplane.http.body import MAX_BODY_BYTES
from keyplane.http.errors import EsError

# Small answers are sent as they are: gzip would cost more than it saves.
MIN_COMPRESSED_BYTES = 512
_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 15}


def inflate(raw: bytes, content_encoding: str | None) -> bytes:
    """The body a client compressed, inflated; unchanged when it was sent as it is."""
    encoding = (content_encoding or "").strip().lower()
    if not raw or encoding in ("", "identity"):
        return raw
    wbits = _WBITS.get(encoding)
    if wbits is None:
        raise EsError(400, "illegal_argument_exception", f"unsupported content encoding [{encoding}]")
    inflater = zlib.decompressobj(wbits)
    try:
        body = inflater.decompress(raw, MAX_BODY_BYTES + 1)
    except zlib.error:
        raise EsError(400, "illegal_argument_exception", f"request body is not valid {encoding} data") from None
    if len(body) > MAX_BODY_BYTES or inflater.unconsumed_tail:
        raise EsError(413, "content_too_long_exception", "request body is too large")
    return body


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
