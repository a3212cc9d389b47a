"""The authentication chain: who a request's credentials prove the caller to be.

The edge reads the ``Authorization`` and run-as headers and hands over plain values; the chain
checks them with the realm of their scheme: passwords (``Basic``), API keys (``ApiKey``), access
tokens and service-account tokens (``Bearer``). Passwords are checked by the file realm, then the
native one (:class:`UserRealms`). It also authenticates the user a grant names (grant
API key, activate profile), where a failure is a 403 rather than a 401.

The realms come in as narrow interfaces, so this module depends on what it asks of them and
not on how they are wired: the API-key and service-account realms live in their own packages
(``apikeys.realm``, ``service_accounts.realm``), which build on security and not the reverse.
"""

from __future__ import annotations

import binascii
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, Protocol

from keyplane.errors import CredentialsRejected, Forbidden, Unauthenticated
from keyplane.security.authorization import run_as_refused
from keyplane.security.identity import Authentication
from keyplane.security.users import User

ANONYMOUS_REFUSED = (
    "unable to authenticate with provided credentials and anonymous access is not allowed for this request"
)


class Credential(NamedTuple):
    """An ``Authorization`` header: its scheme (lower case) and what follows it.

    A named tuple: built for every request, and a tuple costs less to build than a frozen dataclass.
    """

    scheme: str
    value: str


@dataclass(frozen=True)
class Grant:
    """The credentials of the user something is granted to, as a grant request carries them.

    ``type`` is ``password`` (``username`` and ``password``) or ``access_token`` (``access_token``);
    requests are validated before they get here.
    """

    type: str | None
    username: str | None = None
    password: str | None = None
    access_token: str | None = None
    run_as: str | None = None


class Grantees(Protocol):
    """Authenticates the user something is granted to (what grant operations ask of :class:`Authenticator`)."""

    async def grantee(self, grant: Grant, uri: str, *, action: str, failure: str) -> Authentication: ...


class Passwords(Protocol):
    """The native realm: users proven by their password, and looked up by name."""

    async def authenticate(self, username: str, password: str, uri: str) -> Authentication: ...

    async def lookup(self, username: str) -> User | None: ...

    async def for_user(self, user: User, authenticating: Authentication | None = None) -> Authentication: ...


class FileUsers(Protocol):
    """The file realm: users from the ``users`` and ``users_roles`` files, tried before the native realm."""

    def knows(self, username: str) -> bool: ...

    def user(self, username: str) -> User | None: ...

    async def authenticate(self, username: str, password: str) -> Authentication | None: ...

    def forget(self) -> None: ...


class NativeUsers(Passwords, Protocol):
    def forget_users(self) -> None: ...


class UserRealms:
    """The realms that prove a user by name and password, in Elasticsearch's default order: file, then native.

    A name the file realm does not know, or whose password does not match there, goes on to the native
    realm (which holds the reserved users too, never found in the files). Looking a user up (run-as,
    token owners) asks the file realm first as well.
    """

    def __init__(self, file: FileUsers, native: NativeUsers) -> None:
        self.file = file
        self.native = native

    def authenticate(self, username: str, password: str, uri: str) -> Coroutine[Any, Any, Authentication]:
        # Not a coroutine itself: a name the files do not know (most) costs the native realm's call only.
        if self.file.knows(username):
            return self._file_first(username, password, uri)
        return self.native.authenticate(username, password, uri)

    async def _file_first(self, username: str, password: str, uri: str) -> Authentication:
        auth = await self.file.authenticate(username, password)
        if auth is not None:
            return auth
        return await self.native.authenticate(username, password, uri)

    def lookup(self, username: str) -> Coroutine[Any, Any, User | None]:
        # Not a coroutine itself (as authenticate): a name the files do not know costs the native realm's call only.
        found = self.file.user(username)
        if found is not None:
            return _ready(found)
        return self.native.lookup(username)

    def for_user(self, user: User, authenticating: Authentication | None = None) -> Coroutine[Any, Any, Authentication]:
        # The user's own realm (file or native) is on the user; roles resolve the same way for both.
        return self.native.for_user(user, authenticating)

    def forget_users(self) -> None:
        """Drop every cached credential and user of both realms (``_clear_cache``, or users changed)."""
        self.native.forget_users()
        self.file.forget()


async def _ready(user: User) -> User:
    return user


class ApiKeys(Protocol):
    """The API-key realm; a credential it does not accept raises the chain's 401 (:func:`rejected`)."""

    async def authenticate(self, credential: str) -> Authentication: ...


class TokenOwner(Protocol):
    @property
    def username(self) -> str: ...


class AccessTokens(Protocol):
    """Access tokens; raises :class:`CredentialsRejected` for a token that is not (or no longer) valid."""

    async def check(self, access_token: str) -> TokenOwner: ...


class ServiceTokens(Protocol):
    """The service-account realm: ``None`` for a bearer credential that is no service token."""

    async def authenticate(self, credential: str) -> Authentication | None: ...


def missing_credentials(uri: str) -> Unauthenticated:
    return Unauthenticated(f"missing authentication credentials for REST request [{uri}]")


def rejected(kind: str, exc: CredentialsRejected) -> Unauthenticated:
    """Elasticsearch's generic 401, naming the realm's reason beside it (or alone when terminal)."""
    if exc.terminal:
        return Unauthenticated(str(exc))
    return Unauthenticated(ANONYMOUS_REFUSED, {"additional_unsuccessful_credentials": f"{kind}: {exc}"})


def basic_credentials(value: str, uri: str) -> tuple[str, str]:
    """The username and password of a ``Basic`` credential (base64 of ``username:password``)."""
    try:
        # base64.b64decode(validate=True) without its Python-level checks; a value that is not ASCII
        # (a header decoded as latin-1) raises ValueError: a missing credential, not a server error.
        decoded = binascii.a2b_base64(value, strict_mode=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise missing_credentials(uri) from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise missing_credentials(uri)
    return username, password


# Token callers kept (see Authenticator.bearer): ~100 bytes each beside what their owners' keep.
_TOKEN_CALLERS_SIZE = 4_096


class Authenticator:
    def __init__(
        self, passwords: Passwords, api_keys: ApiKeys, tokens: AccessTokens, service_accounts: ServiceTokens
    ) -> None:
        self.passwords = passwords
        self.api_keys = api_keys
        self.tokens = tokens
        self.service_accounts = service_accounts
        # An owner's caller -> the same as a token's caller (see bearer()); callers hash by identity.
        self._token_callers: dict[Authentication, Authentication] = {}

    def authenticate(
        self, credential: tuple[str, str] | None, uri: str, run_as: str | None = None
    ) -> Coroutine[Any, Any, Authentication]:
        """The caller of a request to ``uri``; ``run_as`` is the user the run-as header names.

        ``credential`` is a :class:`Credential`, or the same pair as a plain tuple (the dispatcher's).
        Not a coroutine itself: it hands back the realm's own (one coroutine less on every request),
        so a credential refused before any realm is asked raises at the call, not at the await.
        """
        if credential is None:
            raise missing_credentials(uri)
        scheme, value = credential
        if scheme == "basic":
            username, password = basic_credentials(value, uri)
            found = self.passwords.authenticate(username, password, uri)
        elif scheme == "apikey":
            found = self.api_keys.authenticate(value)
        elif scheme == "bearer":
            found = self.bearer(value)
        else:
            raise Unauthenticated(ANONYMOUS_REFUSED)
        return found if run_as is None else self._then_run_as(found, run_as)

    async def _then_run_as(self, found: Coroutine[Any, Any, Authentication], target: str) -> Authentication:
        return await self.run_as(await found, target)

    async def bearer(self, credential: str) -> Authentication:
        try:
            service_account = await self.service_accounts.authenticate(credential)
        except CredentialsRejected as exc:
            raise rejected("Service account", exc) from None
        if service_account is not None:
            return service_account
        try:
            token = await self.tokens.check(credential)
        except CredentialsRejected as exc:
            raise rejected("Bearer token", exc) from None
        user = await self.passwords.lookup(token.username)
        if user is None or not user.enabled:
            raise rejected("Bearer token", CredentialsRejected("token owner no longer exists or is disabled"))
        owner = await self.passwords.for_user(user)
        # One caller per owner caller, as the realms keep theirs: never changed once handed out.
        auth = self._token_callers.get(owner)
        if auth is None:
            if len(self._token_callers) >= _TOKEN_CALLERS_SIZE:
                self._token_callers.clear()
            auth = self._token_callers[owner] = replace(owner, type="token")
        return auth

    async def run_as(self, auth: Authentication, target: str) -> Authentication:
        """``auth`` running as ``target``; a refusal is recorded, and every action then fails."""
        if auth.permission.can_run_as(target):
            user = await self.passwords.lookup(target)
            if user is not None and user.enabled:
                return await self.passwords.for_user(user, authenticating=auth)
        # A copy: the authentication may be cached and shared by other requests.
        return replace(auth, run_as_denied=target)

    async def grantee(self, grant: Grant, uri: str, *, action: str, failure: str) -> Authentication:
        """Authenticate the user ``action`` grants something to; any failure is a 403 saying ``failure``."""
        try:
            if grant.type == "password":
                assert grant.username is not None and grant.password is not None
                auth = await self.passwords.authenticate(grant.username, grant.password, uri)
            else:
                assert grant.access_token is not None
                auth = await self.bearer(grant.access_token)
        except Unauthenticated:
            raise Forbidden(failure) from None
        if grant.run_as is not None:
            auth = await self.run_as(auth, grant.run_as)
            if auth.run_as_denied:  # an empty name is let through here, as it always was
                raise run_as_refused(action, auth, grant.run_as)
        return auth
