"""The ASGI application: services and the routes, with a lifespan."""

from __future__ import annotations

import asyncio
import gc
import sys

from starlette.types import Receive, Scope, Send

from keyplane import tracebacks
from keyplane.api import build_router
from keyplane.audit.events import enabled_events
from keyplane.audit.trail import AuditTrail
from keyplane.config import Settings
from keyplane.errors import KeyplaneError
from keyplane.http.dispatch import Dispatcher
from keyplane.metrics.backends.sql import SqlStateCounts
from keyplane.metrics.exposition import Metrics
from keyplane.metrics.state import StateReader
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


def _audit_events(settings: Settings) -> frozenset[str]:
    """The audit event types to write; unknown names stop the start (even with the audit log off,
    so that turning it on later cannot fail on a typo made now)."""
    try:
        return enabled_events(settings.audit_include, settings.audit_exclude)
    except ValueError as exc:
        raise SystemExit(f"keyplane: {exc}") from None


def _observe(settings: Settings, services: Services, events: frozenset[str]) -> AuditTrail | None:
    """Attach the audit trail and the metrics the settings turn on; the trail's writer is started with the app."""
    trail = None
    if settings.audit_enabled:
        path = settings.audit_file or settings.data_dir / "audit.json"
        trail = services.audit = AuditTrail(path, settings.audit_buffer, events, settings.node_name, services.node_id)
    if settings.metrics_enabled:
        metrics = Metrics(StateReader(SqlStateCounts(services.db)))
        metrics.gauges.caches["api_key"] = lambda: len(services.apikeys.verified)
        passwords = services.password_realm.cache
        metrics.gauges.caches["password"] = lambda: len(passwords)
        metrics.gauges.cache_objects["api_key"] = lambda: services.apikeys.verified
        metrics.gauges.cache_objects["password"] = lambda: passwords
        if trail is not None:
            metrics.gauges.audit = trail.figures
        services.db.observer = metrics.recorder.store_call
        services.metrics = metrics
    return trail


def create_app(settings: Settings | None = None) -> Dispatcher:
    settings = settings or Settings.from_env()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))
    events = _audit_events(settings)
    services = Services(settings)
    audit = _observe(settings, services, events)
    app = Dispatcher(build_router(settings.test_mode), services)

    async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if audit is not None:
                        audit.writer.open()  # a file that cannot be written stops the start (OSError)
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
                if audit is not None:
                    audit.flush()  # the events still queued, then what is buffered, are written first
                    await asyncio.to_thread(audit.writer.close)
                if services.upstream is not None:
                    await services.upstream.close()  # the pooled connections to the upstream cluster
                await send({"type": "lifespan.shutdown.complete"})
                return

    app.lifespan = lifespan
    return app
