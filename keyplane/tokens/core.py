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


@dataclass(frozen=True)
class TokenRequest:
    """A request for an access token: the grant type and what it carries."""

    grant_type: str | None
    username: str | None = None
    password: str | None = None
    refresh_token: str | None = None


def request_messages(request: TokenRequest) -> list[str]:
    """Validation messages of a token request, by grant type."""
    if request.grant_type is None:
        return ["grant_type is missing"]
    if request.grant_type == "password":
        messages = []
        if not request.username:
            messages.append("username is missing")
        if request.password is None:
            messages.append("password is missing")
        return messages
    if request.grant_type == "refresh_token":
        return [] if request.refresh_token else ["refresh_token is missing"]
    if request.grant_type == "client_credentials":
        return []
    return [f"grant_type [{request.grant_type}] is not supported"]


def invalidation_message(
    token: str | None, refresh_token: str | None, realm: str | None, username: str | None
) -> str | None:
    """What is wrong with an invalidation request: it names tokens, or their owners, but not both."""
    if not (token or refresh_token or realm or username):
        return "one of [token, refresh_token, realm_name, username] must be specified"
    if (token or refresh_token) and (realm or username):
        return "[realm_name] and [username] may not be used with [token] or [refresh_token]"
    if token and refresh_token:
        return "only one of [token, refresh_token] may be sent per request"
    return None
