"""Keyplane's ASGI app started in the benchmark's own process and called without a server.

The in-process benchmarks (request_profile.py, observability_inprocess.py) time the app's own work:
no uvicorn, httptools or socket in the figure, which is steadier on a shared machine.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from common import PASSWORD


class App:
    """The app of ``Settings.from_env()``, its lifespan started by :meth:`start`."""

    def __init__(self) -> None:
        from keyplane.app import create_app
        from keyplane.config import Settings

        self.app = create_app(Settings.from_env())
        self.basic = b"Basic " + base64.b64encode(f"elastic:{PASSWORD}".encode())

    async def start(self) -> None:
        ready = asyncio.Event()
        startup = [{"type": "lifespan.startup"}]

        async def receive() -> Any:
            if startup:
                return startup.pop()
            await asyncio.sleep(3600)

        async def send(message: Any) -> None:
            if message["type"] != "lifespan.startup.complete":
                raise SystemExit(f"start-up failed: {message}")
            ready.set()

        self.lifespan = asyncio.create_task(self.app({"type": "lifespan"}, receive, send))
        await ready.wait()

    async def call(
        self, method: str, path: str, body: bytes = b"", authorization: bytes | None = None
    ) -> tuple[int, bytes]:
        """One request (``path`` may hold a query string), as ``elastic`` unless ``authorization`` is
        given; its status and body."""
        sent: list[Any] = []

        async def receive() -> Any:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Any) -> None:
            sent.append(message)

        raw_path, _, query = path.partition("?")
        headers = [(b"host", b"bench"), (b"authorization", authorization or self.basic)]
        if body:
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        scope = {
            "type": "http",
            "method": method,
            "path": raw_path,
            "raw_path": raw_path.encode(),
            "query_string": query.encode(),
            "headers": headers,
            "client": ("127.0.0.1", 50000),
        }
        await self.app(scope, receive, send)
        return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])
