"""The ASGI application: services and the routes, with a lifespan."""

from __future__ import annotations

import gc
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

# The collector's young generation: a request allocates thousands of containers that reference
# counting frees; collecting every 700 (the default) examines and promotes many still in use.
GC_YOUNG_THRESHOLD = 2_000


def settle_memory() -> None:
    """After start-up: what it built (modules, routes, services) lives as long as the process, so it
    is moved out of the collector's sight (``gc.freeze``), and full collections walk only what came
    after it. Young collections run less often (:data:`GC_YOUNG_THRESHOLD`)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


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
                settle_memory()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await services.stop()
                if services.upstream is not None:
                    await services.upstream.close()  # the pooled connections to the upstream cluster
                await send({"type": "lifespan.shutdown.complete"})
                return

    app.lifespan = lifespan
    return app
