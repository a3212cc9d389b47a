"""The floor: a raw ASGI app that answers every request with fixed bytes (no routing, no auth).

FLOOR_READ_BODY=1 makes it read the request body first, as a server answering a write must
(bench/cpu.py sets it; bench/throughput.py sends no body and does not).
"""

from __future__ import annotations

import os

BODY = open(os.environ["FLOOR_BODY_FILE"], "rb").read()
READ_BODY = os.environ.get("FLOOR_READ_BODY") == "1"
HEADERS = [
    (b"x-elastic-product", b"Elasticsearch"),
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BODY)).encode()),
]


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    if READ_BODY:
        while (await receive()).get("more_body"):
            pass
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
