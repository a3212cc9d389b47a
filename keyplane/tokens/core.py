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
