"""The floor: a raw ASGI app that answers every request with fixed bytes (no routing, no auth)."""

from __future__ import annotations

import os

BODY = open(os.environ["FLOOR_BODY_FILE"], "rb").read()
HEADERS = [
    (b"x-elastic-product", b"Elasticsearch"),
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BODY)).encode()),
]


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
