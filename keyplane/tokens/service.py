"""Access-token use cases: grant (password, client credentials, refresh token), check, invalidate."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from hashlib import blake2s
from typing import Protocol

from keyplane.errors import CredentialsRejected, InvalidGrant, Unauthenticated, ValidationError
from keyplane.security.identity import Authentication
from keyplane.security.users import User
from keyplane.timevalue import now_ms
from keyplane.tokens import core
from keyplane.tokens.backends.base import TokenRepository
from keyplane.tokens.core import (
    ACCESS_TTL_MS,
    REFRESH_TTL_MS,
    Client,
    Token,
    TokenRequest,
    digest,
    may_refresh,
    new_token,
)


class Owners(Protocol):
    """The native realm, which proves and finds the users tokens are issued to."""

    async def authenticate(self, username: str, password: str, uri: str) -> Authentication: ...

    async def lookup(self, username: str) -> User | None: ...

    async def for_user(self, user: User, authenticating: Authentication | None = None) -> Authentication: ...


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int  # seconds
    refresh_token: str | None
    authentication: Authentication  # the token's owner


@dataclass(frozen=True)
class Invalidated:
    invalidated: int  # tokens that were live
    previously_invalidated: int


def client_of(caller: Authentication) -> Client:
    """The client of a token request: its caller, as Elasticsearch records it (user and realm)."""
    return Client(caller.user.username, caller.lookup_realm["name"])


class TokenService:
    def __init__(self, repo: TokenRepository, owners: Owners) -> None:
        self.repo = repo
        self.owners = owners
        # Tokens already found, by a BLAKE2s digest of the access token: CPython's own hash, cheaper than
        # the stored SHA-256 (OpenSSL's set-up per call), which is computed only to look a token up.
        self._known: dict[bytes, Token] = {}

    async def grant(self, request: TokenRequest, caller: Authentication, uri: str) -> IssuedToken:
        """A token asked for by ``caller``; a refused grant raises InvalidGrant with OAuth2's description."""
        messages = core.request_messages(request)
        if messages:
            raise ValidationError(*messages)
        client = client_of(caller)
        if request.grant_type == "password":
            assert request.username is not None and request.password is not None
            try:
                owner = await self.owners.authenticate(request.username, request.password, uri)
            except Unauthenticated:
                raise InvalidGrant(f"failed to authenticate user [{request.username}]") from None
            return await self._issue(owner, client, with_refresh=True)
        if request.grant_type == "client_credentials":
            # The caller's own token, without a refresh token (OAuth2's client credentials grant).
            if caller.type == "api_key":
                raise InvalidGrant("an API key cannot create tokens")
            return await self._issue(caller, client, with_refresh=False)
        assert request.refresh_token is not None
        token = await self.refresh(request.refresh_token, client)
        user = await self.owners.lookup(token.username)
        if user is None:
            raise InvalidGrant("token has already been refreshed or is invalid")
        return await self._issue(await self.owners.for_user(user), client, with_refresh=True)

    async def _issue(self, owner: Authentication, client: Client, *, with_refresh: bool) -> IssuedToken:
        """A token for ``owner``, asked for by ``client`` (the caller of the token API)."""
        now = now_ms()
        token = Token(
            secrets.token_hex(16), owner.user.username, owner.lookup_realm, now, now + ACCESS_TTL_MS, client=client
        )
        access = new_token()
        refresh = new_token() if with_refresh else None
        await self.repo.insert(token, digest(access), digest(refresh) if refresh else None)
        return IssuedToken(access, ACCESS_TTL_MS // 1000, refresh, owner)

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
        # Tokens carry 256 random bits: an unsalted digest of one tells nothing of it.
        key = blake2s(access_token.encode()).digest()
        token = self._known.get(key)
        if token is None:
            token = await self.repo.by_access(digest(access_token))
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
    ) -> Invalidated:
        """Invalidate one token (by access or refresh token), or every token of a user or realm."""
        message = core.invalidation_message(token, refresh_token, realm, username)
        if message is not None:
            raise ValidationError(message)
        done, before = await self.repo.invalidate(
            access_hash=digest(token) if token else None,
            refresh_hash=digest(refresh_token) if refresh_token else None,
            username=username,
            realm=realm,
        )
        return Invalidated(done, before)

    async def remove_expired(self, before: int) -> None:
        await self.repo.delete_expired(before)

    async def delete_all(self) -> None:
        await self.repo.delete_all()

    def on_change(self, kind: str) -> None:
        if kind in ("tokens", "*"):
            self._known.clear()
