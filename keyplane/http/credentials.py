"""The caller's credentials as request headers carry them; ``keyplane.security.authentication`` checks them."""

from __future__ import annotations

from collections.abc import Mapping

from keyplane.security.authentication import Credential

RUN_AS_HEADER = "es-security-runas-user"


def credential(headers: Mapping[str, str]) -> Credential | None:
    """The ``Authorization`` header split into scheme and value; ``None`` when there is none."""
    header = headers.get("authorization")
    if not header:
        return None
    return Credential(*split(header))


def split(header: str) -> tuple[str, str]:
    """A non-empty ``Authorization`` header's scheme (lower case) and value, as a plain tuple (the hot path)."""
    scheme, _, value = header.strip().partition(" ")
    return scheme.lower(), value.strip()


def run_as(headers: Mapping[str, str]) -> str | None:
    """The user the caller asks to run as, if any."""
    return headers.get(RUN_AS_HEADER)
