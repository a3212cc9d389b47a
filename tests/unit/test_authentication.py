"""The security domain's authentication chain and action checks, with in-memory credential stores."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from typing import Any

import pytest

from keyplane.apikeys import grants
from keyplane.apikeys.cache import Verified
from keyplane.apikeys.core import ApiKey, Creator
from keyplane.apikeys.realm import ApiKeyRealm
from keyplane.apikeys.service import KeySpec
from keyplane.errors import CredentialsRejected, Forbidden, Unauthenticated
from keyplane.profiles import core as profiles
from keyplane.security import authorization
from keyplane.security.authentication import Authenticator, Credential, Grant
from keyplane.security.identity import Authentication
from keyplane.security.permission import Permission
from keyplane.security.roles import RoleDescriptor
from keyplane.security.users import User
from keyplane.service_accounts import core as service_accounts
from keyplane.service_accounts.core import TokenId
from keyplane.service_accounts.realm import ServiceAccountRealm
from keyplane.tokens import core as tokens
from keyplane.tokens.core import Token, TokenRequest

URI = "/_security/_authenticate"
ADMIN = RoleDescriptor("admin", cluster=["all"], run_as=["*"])


def _auth(user: User, permission: Permission, type_: str = "realm") -> Authentication:
    realm = user.realm
    return Authentication(user, user, realm, realm, type_, list(user.roles), [], permission)


class FakePasswords:
    def __init__(self) -> None:
        self.users = {"ann": User("ann", roles=["admin"]), "bob": User("bob", roles=[])}
        self.passwords = {"ann": "ann-secret", "bob": "bob-secret"}

    async def authenticate(self, username: str, password: str, uri: str) -> Authentication:
        if self.passwords.get(username) != password:
            raise Unauthenticated(f"unable to authenticate user [{username}] for REST request [{uri}]")
        return await self.for_user(self.users[username])

    async def lookup(self, username: str) -> User | None:
        return self.users.get(username)

    async def for_user(self, user: User, authenticating: Authentication | None = None) -> Authentication:
        permission = Permission([ADMIN] if "admin" in user.roles else [])
        auth = _auth(user, permission)
        if authenticating is not None:
            auth.authenticating_user = authenticating.authenticating_user
        return auth


class FakeApiKeyService:
    def __init__(self) -> None:
        creator = Creator("ann", None, None, {}, "default_native", "native")
        key = ApiKey("k1", "key-one", "rest", 0, None, False, None, "", creator)
        self.entry = Verified(b"", key, Permission([]), 0.0)
        self.calls = 0

    def cached(self, key_id: str, secret: str) -> Verified | None:
        return None  # every check goes through verify, counted

    async def verify(self, key_id: str, secret: str) -> Verified:
        self.calls += 1
        if (key_id, secret) != ("k1", "s1"):
            raise CredentialsRejected(f"unable to find apikey with id {key_id}")
        return self.entry


class FakeTokens:
    async def check(self, access_token: str) -> Token:
        if access_token != "good-token":
            raise CredentialsRejected("token is not valid")
        return Token("t1", "bob", {"name": "default_native", "type": "native"}, 0, 1 << 60)


class FakeServiceAccountService:
    async def authenticate(self, token: TokenId, secret: str) -> str:
        if secret != "right":
            raise CredentialsRejected(f"failed to authenticate service account [{token.account}]")
        return token.account


def _authenticator() -> tuple[Authenticator, FakeApiKeyService]:
    keys = FakeApiKeyService()
    realms = ApiKeyRealm(keys), ServiceAccountRealm(FakeServiceAccountService())
    return Authenticator(FakePasswords(), realms[0], FakeTokens(), realms[1]), keys


def _basic(username: str, password: str) -> Credential:
    return Credential("basic", base64.b64encode(f"{username}:{password}".encode()).decode())


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- the chain ------------------------------------------------------------------------------------------


def test_no_credential_and_unknown_schemes() -> None:
    chain, _ = _authenticator()
    with pytest.raises(Unauthenticated, match=r"missing authentication credentials for REST request \[/x\]"):
        _run(chain.authenticate(None, "/x"))
    with pytest.raises(Unauthenticated, match="missing authentication credentials"):
        _run(chain.authenticate(Credential("basic", "not base64!"), "/x"))
    with pytest.raises(Unauthenticated, match="missing authentication credentials"):  # not ASCII: no 500
        _run(chain.authenticate(Credential("basic", "\xe9t\xe9"), "/x"))
    # The dispatcher passes the pair as a plain tuple.
    assert _run(chain.authenticate(("basic", _basic("ann", "ann-secret").value), "/x")).user.username == "ann"
    with pytest.raises(Unauthenticated) as refused:
        _run(chain.authenticate(Credential("negotiate", "abc"), "/x"))
    assert refused.value.extra == {}


def test_basic_and_bearer() -> None:
    chain, _ = _authenticator()
    assert _run(chain.authenticate(_basic("ann", "ann-secret"), URI)).user.username == "ann"
    token_auth = _run(chain.authenticate(Credential("bearer", "good-token"), URI))
    assert (token_auth.user.username, token_auth.type) == ("bob", "token")


def test_rejected_credentials_are_named_beside_the_generic_reason() -> None:
    chain, _ = _authenticator()
    with pytest.raises(Unauthenticated) as refused:
        _run(chain.authenticate(Credential("bearer", "bad-token"), URI))
    assert refused.value.extra == {"additional_unsuccessful_credentials": "Bearer token: token is not valid"}
    with pytest.raises(Unauthenticated) as refused:
        _run(chain.authenticate(Credential("apikey", "%%%"), URI))
    assert refused.value.extra == {"additional_unsuccessful_credentials": "API key: invalid ApiKey value"}


def test_a_verified_api_key_proves_the_same_caller_each_time() -> None:
    chain, keys = _authenticator()
    credential = Credential("apikey", base64.b64encode(b"k1:s1").decode())
    first = _run(chain.authenticate(credential, URI))
    assert first.api_key == {"id": "k1", "name": "key-one"} and first.type == "api_key"
    again = _run(chain.authenticate(credential, URI))
    # One caller per verified entry (the audit trail keys its kept lines on it).
    assert again is first and keys.calls == 2
    assert again.permission is keys.entry.permission
    # The key changed: the cache holds a new entry, which proves a new caller.
    keys.entry = Verified(b"", dataclasses.replace(keys.entry.key, name="key-renamed"), Permission([]), 0.0)
    renamed = _run(chain.authenticate(credential, URI))
    assert renamed is not first and renamed.api_key == {"id": "k1", "name": "key-renamed"}
    assert first.api_key == {"id": "k1", "name": "key-one"}


class KeepingPasswords(FakePasswords):
    """Hands out one caller per user, as the native realm does while the user and its roles stay."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: dict[str, Authentication] = {}

    async def for_user(self, user: User, authenticating: Authentication | None = None) -> Authentication:
        if authenticating is not None:
            return await super().for_user(user, authenticating)
        if user.username not in self.kept:
            self.kept[user.username] = await super().for_user(user)
        return self.kept[user.username]


def test_an_access_token_proves_one_caller_and_leaves_its_owners_own_alone() -> None:
    passwords = KeepingPasswords()
    realms = ApiKeyRealm(FakeApiKeyService()), ServiceAccountRealm(FakeServiceAccountService())
    chain = Authenticator(passwords, realms[0], FakeTokens(), realms[1])
    first = _run(chain.authenticate(Credential("bearer", "good-token"), URI))
    assert first.type == "token" and _run(chain.authenticate(Credential("bearer", "good-token"), URI)) is first
    # The owner's caller is shared with its password's requests: never turned into a token's.
    owner = _run(chain.authenticate(_basic("bob", "bob-secret"), URI))
    assert owner is passwords.kept["bob"] and owner.type == "realm" and owner is not first
    # A new caller of the owner (its roles changed, say) makes a new token caller.
    passwords.kept["bob"] = _auth(User("bob", roles=["admin"]), Permission([ADMIN]))
    changed = _run(chain.authenticate(Credential("bearer", "good-token"), URI))
    assert changed is not first and (changed.type, changed.roles) == ("token", ["admin"])


def test_service_tokens_prove_their_account_and_other_bearers_are_access_tokens() -> None:
    chain, _ = _authenticator()
    token = TokenId("elastic/fleet-server", "t1")
    account = _run(chain.authenticate(Credential("bearer", service_accounts.encode(token, "right")), URI))
    assert (account.user.username, account.type, account.token["name"]) == (
        "elastic/fleet-server",
        "token",
        "t1",
    )
    # One caller per token (its permission compiled once), the secret checked each time.
    assert _run(chain.authenticate(Credential("bearer", service_accounts.encode(token, "right")), URI)) is account
    other = TokenId("elastic/fleet-server", "t2")
    assert _run(chain.authenticate(Credential("bearer", service_accounts.encode(other, "right")), URI)) is not account
    with pytest.raises(Unauthenticated) as refused:
        _run(chain.authenticate(Credential("bearer", service_accounts.encode(token, "wrong")), URI))
    assert refused.value.extra == {
        "additional_unsuccessful_credentials": "Service account: failed to authenticate service account "
        "[elastic/fleet-server]"
    }


def test_run_as_refused_is_recorded_on_a_copy() -> None:
    chain, keys = _authenticator()
    credential = Credential("apikey", base64.b64encode(b"k1:s1").decode())
    denied = _run(chain.authenticate(credential, URI, run_as="bob"))
    assert denied.run_as_denied == "bob"
    assert _run(chain.authenticate(credential, URI)).run_as_denied is None  # the next request is untouched
    allowed = _run(chain.authenticate(_basic("ann", "ann-secret"), URI, run_as="bob"))
    assert (allowed.user.username, allowed.authenticating_user.username, allowed.run_as_denied) == ("bob", "ann", None)


def test_grantee_failures_are_forbidden() -> None:
    chain, _ = _authenticator()
    wrong = Grant("password", username="ann", password="nope")
    with pytest.raises(Forbidden, match="^Failed to grant$"):
        _run(chain.grantee(wrong, URI, action="a", failure="Failed to grant"))
    by_token = _run(chain.grantee(Grant("access_token", access_token="good-token"), URI, action="a", failure="f"))
    assert by_token.user.username == "bob"
    refused = Grant("password", username="bob", password="bob-secret", run_as="ann")
    with pytest.raises(Forbidden, match=r"because user \[bob\] is unauthorized to run as \[ann\]"):
        _run(chain.grantee(refused, URI, action="cluster:admin/xpack/security/api_key/grant", failure="f"))


# -- authorization of an action -------------------------------------------------------------------------


def test_same_user_rules() -> None:
    bob = _auth(User("bob"), Permission([]))
    own = authorization.on_own_account
    assert own(authorization.AUTHENTICATE, bob, "someone-else")
    assert own(authorization.LIST_PRIVILEGES, bob, None)
    assert own(authorization.HAS_PRIVILEGES, bob, None) and own(authorization.HAS_PRIVILEGES, bob, "bob")
    assert not own(authorization.HAS_PRIVILEGES, bob, "ann")
    assert own(authorization.CHANGE_PASSWORD, bob, "bob") and not own(authorization.CHANGE_PASSWORD, bob, "ann")
    by_token = _auth(User("bob"), Permission([]), "token")
    assert not own(authorization.CHANGE_PASSWORD, by_token, None)  # only a password the caller proved
    assert not own("cluster:admin/xpack/security/user/get", bob, "bob")


def test_authorize() -> None:
    bob = _auth(User("bob"), Permission([]))
    authorization.authorize(bob, authorization.CHANGE_PASSWORD, {"username": "bob"}, self_checked=False)
    authorization.authorize(bob, "cluster:admin/xpack/security/user/get", {}, self_checked=True)
    authorization.authorize(bob, None, {}, self_checked=False)
    with pytest.raises(Forbidden, match=r"action \[cluster:monitor/main\] is unauthorized for user \[bob\]"):
        authorization.authorize(bob, "cluster:monitor/main", {}, self_checked=False)
    with pytest.raises(Forbidden, match=r"user \[bob\] is unauthorized to run as \[ann\]"):
        authorization.authorize(
            dataclasses.replace(bob, run_as_denied="ann"),
            authorization.AUTHENTICATE,
            {},
            self_checked=True,  # a refused run-as fails even the actions that check themselves
        )


def test_require_superuser() -> None:
    admin = _auth(User("ann"), Permission([ADMIN]))
    authorization.require_superuser(admin, "reset")
    with pytest.raises(Forbidden):
        authorization.require_superuser(_auth(User("bob"), Permission([])), "reset")
    admin.api_key = {"id": "k"}
    with pytest.raises(Forbidden):
        authorization.require_superuser(admin, "reset")


# -- grant rules ------------------------------------------------------------------------------------------


def test_api_key_grant_credential_rules() -> None:
    def messages(grant: Grant, scheme: str | None = None) -> list[str]:
        return grants.credential_messages(grants.GrantRequest(grant, scheme))

    assert messages(Grant(None)) == ["[grant_type] is required"]
    assert messages(Grant("magic")) == ["grant_type [magic] is not supported"]
    assert messages(Grant("password", access_token="t"), "") == [
        "[username] is required for grant_type [password]",
        "[password] is required for grant_type [password]",
        "[access_token] is not supported for grant_type [password]",
        "[client_authentication] is not supported for grant_type [password]",
    ]
    assert messages(Grant("access_token", username="u", password="p"), "Basic") == [
        "[access_token] is required for grant_type [access_token]",
        "[username] is not supported for grant_type [access_token]",
        "[password] is not supported for grant_type [access_token]",
        "[client_authentication.scheme] must be set to [SharedSecret]",
    ]
    assert messages(Grant("access_token", access_token="t"), "SharedSecret") == []


def test_api_key_grant_key_rules() -> None:
    assert grants.key_messages(None) == ["api key name is required"]
    assert grants.key_messages(KeySpec(None)) == ["api key name is required"]
    assert grants.key_messages(KeySpec("_hidden")) == ["api key name may not begin with an underscore"]
    assert grants.bulk_key_messages([]) == ["[api_keys] must not be empty"]
    assert grants.bulk_key_messages([KeySpec("ok"), KeySpec(None)]) == ["api key name is required"]


def test_client_authentication_needs_a_jwt() -> None:
    header = base64.urlsafe_b64encode(b'{"alg":"HS256"}').decode().rstrip("=")
    assert grants.is_jwt(f"{header}.e30.sig")
    assert not grants.is_jwt("plain-token") and not grants.is_jwt("a.b.c")
    with_client = grants.GrantRequest(Grant("access_token", access_token="plain-token"), "SharedSecret")
    assert not grants.client_authentication_allowed(with_client)
    assert grants.client_authentication_allowed(grants.GrantRequest(Grant("access_token", access_token="plain")))


def test_profile_activation_rules() -> None:
    assert profiles.activation_message(Grant(None)) == "[grant_type] is required"
    assert profiles.activation_message(Grant("")) == "[grant_type] is required"
    assert profiles.activation_message(Grant("magic")) == "grant_type [magic] is not supported"
    assert profiles.activation_message(Grant("password", username="u")) == (
        "[username] and [password] are required for grant_type [password]"
    )
    assert (
        profiles.activation_message(Grant("access_token")) == "[access_token] is required for grant_type [access_token]"
    )
    assert profiles.activation_message(Grant("access_token", access_token="t")) is None
    assert profiles.update_message(None, None) == "update request is empty"
    assert profiles.update_message({"_x": 1}, None) == "data keys cannot start with a [_]"
    assert profiles.update_message({}, {"app": {}}) is None


def test_token_request_rules() -> None:
    assert tokens.request_messages(TokenRequest(None)) == ["grant_type is missing"]
    assert tokens.request_messages(TokenRequest("password", username="")) == [
        "username is missing",
        "password is missing",
    ]
    assert tokens.request_messages(TokenRequest("refresh_token")) == ["refresh_token is missing"]
    assert tokens.request_messages(TokenRequest("client_credentials")) == []
    assert tokens.request_messages(TokenRequest("kerberos")) == ["grant_type [kerberos] is not supported"]
    assert tokens.invalidation_message(None, None, None, None) == (
        "one of [token, refresh_token, realm_name, username] must be specified"
    )
    assert tokens.invalidation_message("t", None, None, "bob") == (
        "[realm_name] and [username] may not be used with [token] or [refresh_token]"
    )
    assert (
        tokens.invalidation_message("t", "r", None, None)
        == "only one of [token, refresh_token] may be sent per request"
    )
    assert tokens.invalidation_message(None, None, "native", "bob") is None
