"""The service-account realm of the authentication chain: a ``Bearer`` service token proves a built-in account."""

from __future__ import annotations

from keyplane.security.identity import Authentication
from keyplane.security.permission import Permission
from keyplane.service_accounts import core
from keyplane.service_accounts.service import ServiceAccountService


def authentication_of(token: core.TokenId, principal: str) -> Authentication:
    """The caller a service-account token proves: the built-in account, with its fixed role."""
    user = core.user(principal)
    permission = Permission([core.ACCOUNTS[principal]])
    shown = {"name": token.name, "type": "_service_account_index"}
    return Authentication(user, user, core.REALM, core.REALM, "token", [], [], permission, token=shown)


class ServiceAccountRealm:
    def __init__(self, accounts: ServiceAccountService) -> None:
        self.accounts = accounts

    async def authenticate(self, credential: str) -> Authentication | None:
        """The account a service token proves; ``None`` when the credential is no service token."""
        token = core.decode(credential)
        if token is None:
            return None
        token_id, secret = token
        return authentication_of(token_id, await self.accounts.authenticate(token_id, secret))
