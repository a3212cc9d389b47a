"""Access and refresh tokens: random strings of which only SHA-256 digests are stored."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass

ACCESS_TTL_MS = 20 * 60 * 1000  # Elasticsearch's default xpack.security.authc.token.timeout
REFRESH_TTL_MS = 24 * 3600 * 1000


def new_token() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def digest(token: str) -> str:
    # Tokens carry 256 random bits; a plain SHA-256 cannot be reversed or guessed.
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Token:
    id: str
    username: str
    realm: dict[str, str]
    creation: int
    expiration: int
    invalidated: bool = False
    refreshed: bool = False
    # Who asked for the token (the caller of the token API, not necessarily its owner); only that
    # client may refresh it. ``None`` for tokens stored before clients were recorded.
    client: Client | None = None


@dataclass(frozen=True)
class Client:
    username: str
    realm: str


def may_refresh(token: Token, client: Client) -> bool:
    """Elasticsearch lets only the client that created a token refresh it (same user, same realm)."""
    return token.client is None or token.client == client
