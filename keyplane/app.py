"""The ASGI application: services and the routes, with a lifespan."""

from __future__ import annotations

import sys

from starlette.types import Receive, Scope, Send

from keyplane import tracebacks
from keyplane.api import build_router
from keyplane.config import Settings
from keyplane.errors import KeyplaneError
from keyplane.http.dispatch import Dispatcher
from keyplane.services import Services

# Elasticsearch accepts bodies nested 1000 levels deep (about 330 nested aggregations or queries);
# evaluating such a request recursively takes a few frames per level, past Python's default 1000.
RECURSION_LIMIT = 6000


def create_app(settings: Settings | None = None) -> Dispatcher:
    settings = settings or Settings.from_env()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))
    services = Services(settings)
    app = Dispatcher(build_router(settings.test_mode), services)

    async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await services.start()
                except Exception as exc:  # noqa: BLE001 - report start-up failures to the server
                    # A database error's text can quote hashes (see keyplane.tracebacks): not logged.
                    ours = isinstance(exc, (KeyplaneError, RuntimeError, ValueError, OSError))
                    reason = str(exc) if ours else tracebacks.kind(exc)
                    await send({"type": "lifespan.startup.failed", "message": reason})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await services.stop()
                if services.upstream is not None:
                    await services.upstream.close()  # the pooled connections to the upstream cluster
                await send({"type": "lifespan.shutdown.complete"})
                return

    app.lifespan = lifespan
    return app
