"""The API-key realm of the authentication chain: an ``ApiKey`` credential proves the key's owner.

It sits here, above security, so that the chain in ``keyplane.security.authentication`` knows only
what it asks of a realm and nothing of API keys.
"""

from __future__ import annotations

from keyplane.apikeys import hashing
from keyplane.apikeys.cache import owner_of
from keyplane.apikeys.core import API_KEY_REALM, ApiKey
from keyplane.apikeys.service import ApiKeyService
from keyplane.errors import CredentialsRejected
from keyplane.security.authentication import rejected
from keyplane.security.identity import Authentication
from keyplane.security.permission import Permission
from keyplane.security.users import User


def authentication_of(key: ApiKey, permission: Permission, owner: User | None = None) -> Authentication:
    """The caller an API key proves: its owner, as recorded when the key was created.

    ``owner`` is the owner's user when already built (the verified-key cache shares one per owner).
    """
    owner = owner or owner_of(key)
    api_key = {"id": key.id} if key.name is None else {"id": key.id, "name": key.name}
    return Authentication(
        owner, owner, API_KEY_REALM, API_KEY_REALM, "api_key", [], [], permission, api_key, bool(key.role_descriptors)
    )


class ApiKeyRealm:
    def __init__(self, keys: ApiKeyService) -> None:
        self.keys = keys

    async def authenticate(self, credential: str) -> Authentication:
        """The owner of the key an encoded ``id:secret`` names; the chain's 401 otherwise.

        The 401 is made here rather than by the chain, so the chain hands this coroutine on as it is.
        """
        parts = hashing.decode(credential)
        try:
            if parts is None:
                raise CredentialsRejected("invalid ApiKey value")
            entry = await self.keys.authenticate(*parts)
        except CredentialsRejected as exc:
            raise rejected("API key", exc) from None
        # Built for each request, not kept with the key: tens of thousands of cached keys would each
        # hold a caller (three objects) that costs well under a microsecond to build again.
        return authentication_of(entry.key, entry.permission, entry.grant.owner if entry.grant is not None else None)
