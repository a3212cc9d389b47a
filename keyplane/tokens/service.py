"""Creating, refreshing, invalidating and checking access tokens."""

from __future__ import annotations

import secrets
from typing import Any

from keyplane.errors import CredentialsRejected, InvalidGrant
from keyplane.security.authc import Authentication
from keyplane.timevalue import now_ms
from keyplane.tokens.backends.base import TokenRepository
from keyplane.tokens.core import ACCESS_TTL_MS, REFRESH_TTL_MS, Client, Token, digest, may_refresh, new_token


class TokenService:
    def __init__(self, repo: TokenRepository) -> None:
        self.repo = repo
        self._known: dict[str, Token] = {}

    async def create(self, auth: Authentication, client: Client, *, with_refresh: bool) -> dict[str, Any]:
        """A token for ``auth``, asked for by ``client`` (the caller of the token API)."""
        now = now_ms()
        token = Token(
            secrets.token_hex(16), auth.user.username, auth.lookup_realm, now, now + ACCESS_TTL_MS, client=client
        )
        access = new_token()
        refresh = new_token() if with_refresh else None
        await self.repo.insert(token, digest(access), digest(refresh) if refresh else None)
        out: dict[str, Any] = {"access_token": access, "type": "Bearer", "expires_in": ACCESS_TTL_MS // 1000}
        if refresh:
            out["refresh_token"] = refresh
        return out

    async def refresh(self, refresh_token: str, client: Client) -> Token:
        """Use a refresh token once; the token it belonged to, or InvalidGrant."""
        key = digest(refresh_token)
        known = await self.repo.by_refresh(key)
        # Checked before the refresh token is used up, so another client's attempt leaves it usable.
        if known is not None and not may_refresh(known, client):
            raise InvalidGrant("tokens must be refreshed by the creating client")
        token = await self.repo.use_refresh(key)
        if token is None or token.creation + REFRESH_TTL_MS <= now_ms():
            raise InvalidGrant("token has already been refreshed or is invalid")
        return token

    async def check(self, access_token: str) -> Token:
        """The token behind a Bearer credential, or CredentialsRejected."""
        key = digest(access_token)
        token = self._known.get(key)
        if token is None:
            token = await self.repo.by_access(key)
            if token is None:
                raise CredentialsRejected("token is not valid")
            if len(self._known) > 10_000:
                self._known.clear()
            self._known[key] = token
        if token.invalidated:
            raise CredentialsRejected("token has been invalidated")
        if token.expiration <= now_ms():
            raise CredentialsRejected("token expired")
        return token

    async def invalidate(
        self, *, token: str | None, refresh_token: str | None, username: str | None, realm: str | None
    ) -> dict[str, Any]:
        done, before = await self.repo.invalidate(
            access_hash=digest(token) if token else None,
            refresh_hash=digest(refresh_token) if refresh_token else None,
            username=username,
            realm=realm,
        )
        return {"invalidated_tokens": done, "previously_invalidated_tokens": before, "error_count": 0}

    def on_change(self, kind: str) -> None:
        if kind in ("tokens", "*"):
            self._known.clear()
