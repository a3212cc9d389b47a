"""The service-account realm of the authentication chain: a ``Bearer`` service token proves a built-in account.

A token is looked for in the ``service_tokens`` file first, then in the store, as Elasticsearch does.
"""

from __future__ import annotations

from keyplane.security.identity import Authentication
from keyplane.security.permission import Permission
from keyplane.service_accounts import core
from keyplane.service_accounts.file_tokens import FileServiceTokens
from keyplane.service_accounts.service import ServiceAccountService

INDEX_TOKEN = "_service_account_index"
FILE_TOKEN = "_service_account_file"


def authentication_of(token: core.TokenId, principal: str, source: str = INDEX_TOKEN) -> Authentication:
    """The caller a service-account token proves: the built-in account, with its fixed role."""
    user = core.user(principal)
    permission = Permission([core.ACCOUNTS[principal]])
    shown = {"name": token.name, "type": source}
    return Authentication(user, user, core.REALM, core.REALM, "token", [], [], permission, token=shown)


# Callers kept (see ServiceAccountRealm._caller): a few tokens per built-in account in practice.
_CALLERS_SIZE = 1_024


class ServiceAccountRealm:
    def __init__(self, accounts: ServiceAccountService, file_tokens: FileServiceTokens | None = None) -> None:
        self.accounts = accounts
        self.file_tokens = file_tokens
        # The caller each token proves, by token, account and source: built-in accounts' roles never
        # change, so the requests of one token share one Authentication (and its compiled permission),
        # as the other realms' cached callers do; the token itself is checked on every request.
        self._callers: dict[tuple[core.TokenId, str, str], Authentication] = {}

    async def authenticate(self, credential: str) -> Authentication | None:
        """The account a service token proves; ``None`` when the credential is no service token."""
        token = core.decode(credential)
        if token is None:
            return None
        token_id, secret = token
        # A file token whose secret does not match falls through to the store, as in Elasticsearch.
        file_tokens = self.file_tokens
        if file_tokens is not None and token_id.account in core.ACCOUNTS and file_tokens.knows(token_id):
            if await file_tokens.verify(token_id, secret):
                return self._caller(token_id, token_id.account, FILE_TOKEN)
        return self._caller(token_id, await self.accounts.authenticate(token_id, secret), INDEX_TOKEN)

    def _caller(self, token_id: core.TokenId, principal: str, source: str) -> Authentication:
        key = (token_id, principal, source)
        auth = self._callers.get(key)
        if auth is None:
            if len(self._callers) >= _CALLERS_SIZE:
                self._callers.clear()
            auth = self._callers[key] = authentication_of(token_id, principal, source)
        return auth
