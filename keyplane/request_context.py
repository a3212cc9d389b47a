"""What is known about the request being served, for code that has no request at hand (log lines).

The dispatcher sets it when a request starts; a context variable keeps concurrent requests apart.
"""

from __future__ import annotations

from contextvars import ContextVar

# Keyplane's id of the request being served (None outside a request).
request_id: ContextVar[str | None] = ContextVar("keyplane_request_id", default=None)
# The caller's X-Opaque-Id header, when it sent one.
opaque_id: ContextVar[str | None] = ContextVar("keyplane_opaque_id", default=None)
