"""Running the ASGI application under uvicorn: the listener's options in one place."""

from __future__ import annotations

import os

from keyplane.config import Settings


def run(settings: Settings, log_level: str) -> None:
    """Serve until interrupted."""
    import uvicorn

    from keyplane.app import create_app

    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    uvicorn.run(
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
        lifespan="on",
    )
