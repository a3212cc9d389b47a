"""The password realm: users proven by their password (``Basic``), and looked up by name.

bcrypt costs ~70 ms, so a successful check is remembered as a salted BLAKE2s digest of the password in
an in-memory cache; later requests cost a hash and a constant-time compare, with no database
work. Any change to users (on any node) empties the cache.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections import OrderedDict
from hashlib import blake2s
from hmac import compare_digest
from time import monotonic
from typing import Generic, Protocol, TypeVar

from keyplane.errors import Unauthenticated
from keyplane.security.backends.base import StoredUser, UserRepository
from keyplane.security.identity import Authentication
from keyplane.security.passwords import verify_password
from keyplane.security.permission import Permission
from keyplane.security.users import User, reserved_user

V = TypeVar("V")


class CredentialCache(Generic[V]):
    """username -> (salted digest of the verified password, what the check found: the stored user)."""

    def __init__(self, max_entries: int = 100_000, ttl_seconds: float = 20 * 60) -> None:
        self._entries: OrderedDict[str, tuple[bytes, float, V]] = OrderedDict()
        self._salt = os.urandom(16)
        self.max_entries = max_entries
        self.ttl = ttl_seconds
        # Lookups answered from the cache and not (the metrics read them at scrape time).
        self.hits = 0
        self.misses = 0

    def digest(self, password: str) -> bytes:
        """A salted digest of a password: tells passwords apart without keeping them."""
        return blake2s(self._salt + password.encode()).digest()

    def get(self, username: str, password: str) -> V | None:
        entry = self._entries.get(username)
        if entry is None:
            self.misses += 1
            return None
        digest, expires, stored = entry
        if expires < monotonic():
            self._entries.pop(username, None)
            self.misses += 1
            return None
        if compare_digest(digest, self.digest(password)):
            self.hits += 1
            return stored
        self.misses += 1
        return None

    def put(self, username: str, password: str, stored: V) -> None:
        self._entries[username] = (self.digest(password), time.monotonic() + self.ttl, stored)
        self._entries.move_to_end(username)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        """Entries held (expired ones included until they are next asked for)."""
        return len(self._entries)


# Callers kept per user (see PasswordRealm._callers): ~1 kB each with their user, so ~4 MB at most.
_CALLERS_SIZE = 4_096

# The built-in users as every request proves them: built once each, shared as cached native users are.
_reserved_user = functools.lru_cache(maxsize=64)(reserved_user)


class RoleSource(Protocol):
    """Resolves role names to a permission, and the roles found and missing (the role service)."""

    def known_permission(self, names: list[str]) -> tuple[Permission, list[str], list[str]] | None: ...

    async def permission(self, names: list[str]) -> tuple[Permission, list[str], list[str]]: ...


class PasswordRealm:
    def __init__(self, users: UserRepository, roles: RoleSource) -> None:
        self.users = users
        self.roles = roles
        self.cache: CredentialCache[StoredUser] = CredentialCache()
        # Users looked up by name (run-as targets, token owners); None marks a known absence.
        self._users: dict[str, User | None] = {}
        # Checks under way, by username and password digest: after the cache is emptied, the many
        # requests of one client wait for one slow hash instead of each running their own.
        self._checking: dict[tuple[str, bytes], asyncio.Future[StoredUser | None]] = {}
        # id(user) -> (user, its roles' kept permission, the caller they make): requests of one cached
        # user share one Authentication while neither changes (the audit trail keys its kept lines on
        # it). Users and the role service's answers are replaced, never changed, so identity checks
        # tell when to build anew; bounded by _CALLERS_SIZE.
        self._callers: dict[int, tuple[User, tuple[Permission, list[str], list[str]], Authentication]] = {}

    async def authenticate(self, username: str, password: str, uri: str) -> Authentication:
        stored = self.cache.get(username, password)
        if stored is None:
            stored = await self._verify_once(username, password)
            if stored is None:
                raise Unauthenticated(f"unable to authenticate user [{username}] for REST request [{uri}]")
        user = self._effective(stored)
        if not user.enabled:
            raise Unauthenticated(f"unable to authenticate user [{username}] for REST request [{uri}]")
        # for_user(user), inline, and the roles' kept permission without a coroutine: two fewer on
        # every Basic request.
        roles = self.roles
        resolved = roles.known_permission(user.roles) or await roles.permission(user.roles)
        kept = self._callers.get(id(user))  # _caller's look-up, inline: one call fewer on every Basic request
        if kept is not None and kept[0] is user and kept[1] is resolved:
            return kept[2]
        return self._caller(user, resolved)

    def _caller(self, user: User, resolved: tuple[Permission, list[str], list[str]]) -> Authentication:
        """The user as a caller of its own (no run-as): one object while the user and its roles' permission stay."""
        kept = self._callers.get(id(user))
        if kept is not None and kept[0] is user and kept[1] is resolved:
            return kept[2]
        permission, found, missing = resolved
        realm = user.realm
        auth = Authentication(user, user, realm, realm, "realm", found, missing, permission)
        if len(self._callers) >= _CALLERS_SIZE:
            self._callers.clear()
        self._callers[id(user)] = (user, resolved, auth)
        return auth

    async def _verify_once(self, username: str, password: str) -> StoredUser | None:
        """The stored user when the password is right; one check at a time per username and password."""
        key = (username, self.cache.digest(password))
        pending = self._checking.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._verify(username, password))
            self._checking[key] = pending
            pending.add_done_callback(lambda done: self._checked(key, done))
        # Shielded: a caller that gives up does not cancel the check the others wait for.
        return await asyncio.shield(pending)

    def _checked(self, key: tuple[str, bytes], done: asyncio.Future[StoredUser | None]) -> None:
        self._checking.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved here, so a failure nobody awaited any more is not reported as lost

    async def _verify(self, username: str, password: str) -> StoredUser | None:
        stored = await self.users.get(username)
        if stored is None or not await asyncio.to_thread(verify_password, password, stored.password_hash):
            return None
        self.cache.put(username, password, stored)
        return stored

    @staticmethod
    def _effective(stored: StoredUser) -> User:
        if stored.user.reserved:
            return _reserved_user(stored.user.username, stored.user.enabled)
        return stored.user

    async def for_user(self, user: User, authenticating: Authentication | None = None) -> Authentication:
        roles = self.roles
        resolved = roles.known_permission(user.roles) or await roles.permission(user.roles)
        if authenticating is None:  # the caller the user's password makes (a token's owner, say)
            return self._caller(user, resolved)
        permission, found, missing = resolved
        realm = user.realm
        return Authentication(
            user,
            authenticating.authenticating_user,
            authenticating.authentication_realm,
            realm,
            authenticating.type,
            found,
            missing,
            permission,
            api_key=authenticating.api_key,
        )

    async def lookup(self, username: str) -> User | None:
        if username in self._users:
            return self._users[username]
        stored = await self.users.get(username)
        user = None if stored is None else self._effective(stored)
        if len(self._users) > 100_000:
            self._users.clear()
        self._users[username] = user
        return user

    def forget_users(self) -> None:
        """Drop every cached credential and user (any user changed, on any node)."""
        self.cache.clear()
        self._users.clear()
        self._callers.clear()
