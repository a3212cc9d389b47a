"""Service-account use cases: list the accounts; create, list, delete and verify their tokens.

An account is named by its namespace and service; one that is not built in is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from keyplane import ids
from keyplane.apikeys import hashing
from keyplane.errors import Conflict, CredentialsRejected, InvalidArgument, ValidationError
from keyplane.security.roles import RoleDescriptor
from keyplane.service_accounts import core
from keyplane.service_accounts.backends.base import ServiceTokenRepository
from keyplane.service_accounts.core import TokenId
from keyplane.service_accounts.file_tokens import FileServiceTokens
from keyplane.timevalue import now_ms


@dataclass(frozen=True)
class CreatedToken:
    name: str
    value: str  # the bearer credential, shown once


class ServiceAccountService:
    def __init__(self, repo: ServiceTokenRepository, file_tokens: FileServiceTokens | None = None) -> None:
        self.repo = repo
        self.file_tokens = file_tokens
        self._verified: dict[str, tuple[bytes, str]] = {}  # token key -> (digest of secret, principal)
        self._salt = secrets.token_bytes(16)

    @staticmethod
    def account(namespace: str, service: str) -> str:
        principal = f"{namespace}/{service}"
        if principal not in core.ACCOUNTS:
            raise InvalidArgument(f"service account [{principal}] does not exist")
        return principal

    @staticmethod
    def accounts(namespace: str | None, service: str | None) -> dict[str, RoleDescriptor]:
        """The built-in accounts in a namespace (and of a service), by principal."""
        out = {}
        for principal, descriptor in core.ACCOUNTS.items():
            ns, svc = principal.split("/")
            if (namespace is None or ns == namespace) and (service is None or svc == service):
                out[principal] = descriptor
        return out

    async def create(self, namespace: str, service: str, name: str | None) -> CreatedToken:
        """A new token of the account; without a name, one is made up."""
        principal = self.account(namespace, service)
        name = name or "token_" + secrets.token_urlsafe(15)[:20]
        if not core.TOKEN_NAME.match(name):
            raise ValidationError(
                f"service account token name must match [a-zA-Z0-9-][a-zA-Z0-9_-]{{0,255}}, got [{name}]"
            )
        token = TokenId(principal, name)
        secret = ids.new_secret()
        if not await self.repo.insert(token.key, principal, name, hashing.hash_secret(secret), now_ms()):
            raise Conflict(f"[service_account_token][{token.key}]: version conflict, document already exists")
        return CreatedToken(name, core.encode(token, secret))

    async def credentials(self, namespace: str, service: str) -> tuple[str, list[str]]:
        """The account's principal and the names of its tokens."""
        principal = self.account(namespace, service)
        return principal, await self.repo.names(principal)

    def file_credentials(self, namespace: str, service: str) -> list[str]:
        """The names of the account's tokens in this node's ``service_tokens`` file."""
        principal = self.account(namespace, service)
        return [] if self.file_tokens is None else self.file_tokens.names(principal)

    async def delete(self, namespace: str, service: str, name: str) -> bool:
        """Whether the token existed (it is gone either way)."""
        principal = self.account(namespace, service)
        return await self.repo.delete(TokenId(principal, name).key)

    def clear_cache(self, namespace: str, service: str) -> None:
        """Forget verified tokens (of every account: the cache is small and rebuilt from the store)."""
        self.account(namespace, service)
        self.forget()
        if self.file_tokens is not None:
            self.file_tokens.forget()

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
