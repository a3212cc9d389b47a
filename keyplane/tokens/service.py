"""Creating, refreshing, invalidating and checking access tokens."""

from __future__ import annotations

import secrets
from typing import Any

from keyplane.errors import CredentialsRejected
from keyplane.security.authc import Authentication
from keyplane.timevalue import now_ms
from keyplane.tokens.backends.base import TokenRepository
from keyplane.tokens.core import ACCESS_TTL_MS, REFRESH_TTL_MS, Token, digest, new_token


class TokenService:
    def __init__(self, repo: TokenRepository) -> None:
        self.repo = repo
        self._known: dict[str, Token] = {}

    async def create(self, auth: Authentication, *, with_refresh: bool) -> dict[str, Any]:
        now = now_ms()
        token = Token(secrets.token_hex(16), auth.user.username, auth.lookup_realm, now, now + ACCESS_TTL_MS)
        access = new_token()
        refresh = new_token() if with_refresh else None
        await self.repo.insert(token, digest(access), digest(refresh) if refresh else None)
        out: dict[str, Any] = {"access_token": access, "type": "Bearer", "expires_in": ACCESS_TTL_MS // 1000}
        if refresh:
            out["refresh_token"] = refresh
        return out

    async def refresh(self, refresh_token: str) -> Token | None:
        token = await self.repo.use_refresh(digest(refresh_token))
        if token is None or token.creation + REFRESH_TTL_MS <= now_ms():
            return None
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
