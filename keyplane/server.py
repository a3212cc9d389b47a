"""Running the ASGI application under uvicorn: the listener's options in one place."""

from __future__ import annotations

import os
import sys

from keyplane import tls
from keyplane.config import Settings

# uvicorn's exit status when the server did not start (a port in use, a failed lifespan start-up).
STARTUP_FAILURE = 3


def run(settings: Settings, log_level: str, *, tls_poll_seconds: float = tls.POLL_SECONDS) -> None:
    """Serve until interrupted; exits with a message (no traceback) when a TLS file cannot be used."""
    # The TLS files are checked before anything else is loaded or opened: a bad file fails the start at once.
    try:
        files = tls.TLSFiles.from_settings(settings)
        listener = None if files is None else tls.Listener(files, tls_poll_seconds)
    except tls.TLSError as exc:
        sys.exit(f"keyplane: cannot start: {exc}")
    tls.announce(listener, settings.host, settings.port)

    import uvicorn

    from keyplane.app import create_app

    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        # Keyplane reads neither the client address nor the scheme, so uvicorn's X-Forwarded-* middleware
        # (a layer every request passes through) would only cost time.
        proxy_headers=False,
        log_level=log_level,
        # uvicorn's lines go to the handler keyplane.logs set up, in the chosen format, not to its own.
        log_config=None,
        lifespan="on",
    )
    config.load()
    # Our own context rather than uvicorn's ssl_* options: it is the one whose certificate reloads.
    config.ssl = None if listener is None else listener.context
    server = uvicorn.Server(config)
    if listener is not None:
        listener.start()
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        if listener is not None:
            listener.stop()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
