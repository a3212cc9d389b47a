"""Cached API keys of one owner and role set share their permission, and answer as unshared ones would."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from keyplane.apikeys import core, hashing
from keyplane.apikeys.cache import Verified, VerifiedKeys
from keyplane.apikeys.core import ApiKey, Creator
from keyplane.apikeys.realm import ApiKeyRealm, authentication_of
from keyplane.errors import CredentialsRejected
from keyplane.security.permission import LimitedPermission
from keyplane.security.roles import parse

OWNER_ROLES = {"cluster": ["manage_own_api_key", "monitor"], "indices": [{"names": ["logs-*"], "privileges": ["all"]}]}
READER = {"indices": [{"names": ["logs-a*"], "privileges": ["read"]}]}


def _key(key_id: str, owner: str = "ann", roles: dict[str, Any] | None = None, **creator: Any) -> ApiKey:
    """A key as the store returns it: fresh objects, equal in content to other keys of its owner."""
    return ApiKey(
        id=key_id,
        name=f"name-{key_id}",
        type=core.REST,
        creation=0,
        expiration=None,
        invalidated=False,
        invalidation=None,
        hash=hashing.hash_secret("s"),
        creator=Creator(owner, creator.get("full_name"), None, {"team": "a"}, "default_native", "native"),
        role_descriptors=[parse(n, dict(b)) for n, b in (roles or {}).items()],
        limited_by=[parse("owner", dict(OWNER_ROLES))],
        metadata={"key": key_id},
    )


def test_keys_of_one_owner_and_role_set_share_one_permission() -> None:
    cache = VerifiedKeys()
    first = cache.put(_key("a", roles={"reader": READER}), "sa")
    second = cache.put(_key("b", roles={"reader": READER}), "sb")
    assert first.permission is second.permission
    assert isinstance(first.permission, LimitedPermission)
    assert first.key.role_descriptors is second.key.role_descriptors
    assert first.key.limited_by is second.key.limited_by
    assert first.grant is not None and first.grant is second.grant
    # Each key keeps what is its own and authentication reads; not its metadata, which may be large.
    assert (first.key.id, first.key.name, first.key.metadata) == ("a", "name-a", None)
    assert (second.key.id, second.key.name, second.key.hash) == ("b", "name-b", "")
    plain = cache.put(_key("c"), "sc")
    assert plain.permission is cache.put(_key("d"), "sd").permission


def test_different_roles_or_owners_do_not_share() -> None:
    cache = VerifiedKeys()
    reader = cache.put(_key("a", roles={"reader": READER}), "s")
    wider = {"reader": {"indices": [{"names": ["logs-*"], "privileges": ["read"]}]}}
    assert cache.put(_key("b", roles=wider), "s").permission is not reader.permission
    assert cache.put(_key("c"), "s").permission is not reader.permission
    other = cache.put(_key("d", owner="bob", roles={"reader": READER}), "s")
    assert other.permission is not reader.permission
    renamed = cache.put(_key("e", roles={"reader": READER}, full_name="Ann A."), "s")
    assert renamed.grant is not reader.grant


def test_a_grant_lives_only_while_a_cached_key_uses_it() -> None:
    cache = VerifiedKeys(max_entries=1)
    old = cache.put(_key("a", roles={"reader": READER}), "s").permission
    cache.put(_key("b"), "s")  # evicts a
    assert cache.put(_key("c", roles={"reader": READER}), "s").permission is not old
    cache.clear()
    assert len(cache) == 0


def _realm(cache: VerifiedKeys, keys: dict[str, ApiKey]) -> ApiKeyRealm:
    class Keys:
        def cached(self, key_id: str, secret: str) -> Verified | None:
            return cache.get(key_id, secret)

        async def verify(self, key_id: str, secret: str) -> Verified:
            if key_id not in keys or secret != "s":
                raise CredentialsRejected(f"unable to find apikey with id {key_id}")
            return cache.put(keys[key_id], secret)

    return ApiKeyRealm(Keys())  # type: ignore[arg-type]


def test_cached_authentication_answers_as_an_unshared_key_does() -> None:
    keys = {n: _key(n, roles={"reader": READER} if n != "c" else None) for n in "abc"}
    realm = _realm(VerifiedKeys(), keys)
    for key_id, key in keys.items():
        credential = base64.b64encode(f"{key_id}:s".encode()).decode()
        auth = asyncio.run(realm.authenticate(credential))
        alone = authentication_of(_key(key_id, roles={"reader": READER} if key_id != "c" else None), key.permission())
        again = asyncio.run(realm.authenticate(credential))  # the same caller while the entry is cached
        assert again is auth
        assert auth.user == alone.user and auth.user.username == "ann"
        assert auth.api_key == alone.api_key == {"id": key_id, "name": f"name-{key_id}"}
        assert auth.api_key_has_descriptors == alone.api_key_has_descriptors == (key_id != "c")
        assert (auth.type, auth.authentication_realm, auth.roles) == (alone.type, alone.authentication_realm, [])
        for action in ("cluster:monitor/health", "cluster:admin/xpack/security/api_key/create", "indices:data/read"):
            assert auth.permission.grants_action(action) == alone.permission.grants_action(action)
        for index in ("logs-a1", "logs-b1", "other"):
            for privilege in ("read", "write"):
                assert auth.permission.has_index_privilege(index, privilege) == alone.permission.has_index_privilege(
                    index, privilege
                )
        assert auth.subject().describe() == f"API key id [{key_id}] of user [ann]"
    reader = asyncio.run(realm.authenticate(base64.b64encode(b"a:s").decode())).permission
    assert reader.has_index_privilege("logs-a1", "read") and not reader.has_index_privilege("logs-b1", "read")
