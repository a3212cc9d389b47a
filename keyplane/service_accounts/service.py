"""Service-account tokens: create, list, delete and verify."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from keyplane import ids
from keyplane.apikeys import hashing
from keyplane.errors import Conflict, CredentialsRejected, InvalidArgument, ValidationError
from keyplane.service_accounts import core
from keyplane.service_accounts.backends.base import ServiceTokenRepository
from keyplane.service_accounts.core import TokenId
from keyplane.timevalue import now_ms


class ServiceAccountService:
    def __init__(self, repo: ServiceTokenRepository) -> None:
        self.repo = repo
        self._verified: dict[str, tuple[bytes, str]] = {}  # token key -> (digest of secret, principal)
        self._salt = secrets.token_bytes(16)

    @staticmethod
    def account(namespace: str, service: str) -> str:
        principal = f"{namespace}/{service}"
        if principal not in core.ACCOUNTS:
            raise InvalidArgument(f"service account [{principal}] does not exist")
        return principal

    def accounts(self, namespace: str | None, service: str | None) -> dict[str, Any]:
        out = {}
        for principal, descriptor in core.ACCOUNTS.items():
            ns, svc = principal.split("/")
            if (namespace is None or ns == namespace) and (service is None or svc == service):
                out[principal] = {"role_descriptor": descriptor.to_dict()}
        return out

    async def create(self, principal: str, name: str | None) -> dict[str, Any]:
        name = name or "token_" + secrets.token_urlsafe(15)[:20]
        if not core.TOKEN_NAME.match(name):
            raise ValidationError(
                f"service account token name must match [a-zA-Z0-9-][a-zA-Z0-9_-]{{0,255}}, got [{name}]"
            )
        token = TokenId(principal, name)
        secret = ids.new_secret()
        if not await self.repo.insert(token.key, principal, name, hashing.hash_secret(secret), now_ms()):
            raise Conflict(f"[service_account_token][{token.key}]: version conflict, document already exists")
        return {"created": True, "token": {"name": name, "value": core.encode(token, secret)}}

    async def credentials(self, principal: str) -> list[str]:
        return await self.repo.names(principal)

    async def delete(self, principal: str, name: str) -> bool:
        return await self.repo.delete(TokenId(principal, name).key)

    async def authenticate(self, token: TokenId, secret: str) -> str:
        """The service account's principal, or CredentialsRejected."""
        digest = hashlib.sha256(self._salt + secret.encode()).digest()
        known = self._verified.get(token.key)
        if known is not None and hmac.compare_digest(known[0], digest):
            return known[1]
        if token.account not in core.ACCOUNTS:
            raise CredentialsRejected(f"service account [{token.account}] does not exist")
        stored = await self.repo.secret_hash(token.key)
        if stored is None or not hashing.verify_secret(secret, stored):
            raise CredentialsRejected(
                f"failed to authenticate service account [{token.account}] with token name [{token.name}]"
            )
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[token.key] = (digest, token.account)
        return token.account

    def forget(self) -> None:
        self._verified.clear()

    async def delete_all(self) -> None:
        await self.repo.delete_all()
