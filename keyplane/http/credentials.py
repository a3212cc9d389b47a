"""The caller's credentials as request headers carry them; ``keyplane.security.authentication`` checks them."""

from __future__ import annotations

RUN_AS_HEADER = "es-security-runas-user"


def split(header: str) -> tuple[str, str]:
    """A non-empty ``Authorization`` header's scheme (lower case) and value, as a plain tuple (the hot path)."""
    scheme, _, value = header.strip().partition(" ")
    return scheme.lower(), value.strip()
