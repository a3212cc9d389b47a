"""The API-key realm of the authentication chain: an ``ApiKey`` credential proves the key's owner.

It sits here, above security, so that the chain in ``keyplane.security.authentication`` knows only
what it asks of a realm and nothing of API keys.
"""

from __future__ import annotations

from keyplane.apikeys import hashing
from keyplane.apikeys.cache import Verified, owner_of
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


# Callers kept for verified keys: about 0.5 kB each (with what they share with the key cache), so
# at most ~2 MB; a full map is emptied rather than kept in order (the busy keys come back at once).
_CALLERS_SIZE = 4_096


class ApiKeyRealm:
    def __init__(self, keys: ApiKeyService) -> None:
        self.keys = keys
        # id(verified entry) -> (entry, the caller it proves). The key cache replaces an entry whenever
        # anything about its key changes (update, invalidation, change notices, expiry), so one entry
        # always proves the same caller: requests with the same cached key share one Authentication,
        # which the audit trail keys its kept lines on. Holding the entry keeps its id from being reused.
        self._callers: dict[int, tuple[Verified, Authentication]] = {}

    async def authenticate(self, credential: str) -> Authentication:
        """The owner of the key an encoded ``id:secret`` names; the chain's 401 otherwise.

        The 401 is made here rather than by the chain, so the chain hands this coroutine on as it is.
        """
        parts = hashing.decode(credential)
        try:
            if parts is None:
                raise CredentialsRejected("invalid ApiKey value")
            entry = self.keys.cached(*parts) or await self.keys.verify(*parts)
        except CredentialsRejected as exc:
            raise rejected("API key", exc) from None
        found = self._callers.get(id(entry))
        if found is not None and found[0] is entry:
            return found[1]
        auth = authentication_of(entry.key, entry.permission, entry.grant.owner if entry.grant is not None else None)
        if len(self._callers) >= _CALLERS_SIZE:
            self._callers.clear()
        self._callers[id(entry)] = (entry, auth)
        return auth
