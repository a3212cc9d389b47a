"""In-memory state of API-key authentication: verified keys, and last-use times waiting to be written.

A verified key is remembered with a salted BLAKE2s digest of its secret, so the hot path does one fast
hash, one constant-time compare and no database work. Entries leave when the key changes on any
node (change notices), when they age out, or when the cache is full.

The cache holds tens of thousands of keys for the life of the process, so an entry is kept small:
a key's role descriptors, owner and the permission they compile to are shared (:class:`Grant`)
by every cached key of the same owner and role descriptors, which in real use are few. Fewer
long-lived objects make the garbage collector's full passes short.
"""

from __future__ import annotations

import gc
import hmac
import os
import sys
import time
import weakref
from collections import OrderedDict
from dataclasses import replace
from hashlib import blake2s

from keyplane.apikeys.core import ApiKey, Creator
from keyplane.security.permission import Permission
from keyplane.security.roles import RoleDescriptor
from keyplane.security.users import User


def owner_of(key: ApiKey) -> User:
    """The user an API key proves: its owner, as recorded when the key was created."""
    creator = key.creator
    return User(
        creator.principal, roles=[], full_name=creator.full_name, email=creator.email, metadata=creator.metadata
    )


class Grant:
    """What keys of one owner and role descriptors share: the descriptors, the owner, the permission.

    Shared between keys (and requests), so never changed after it is built.
    """

    __slots__ = ("creator", "role_descriptors", "limited_by", "permission", "owner", "__weakref__")

    def __init__(self, key: ApiKey) -> None:
        creator = key.creator
        self.creator = creator
        self.role_descriptors = key.role_descriptors
        self.limited_by = key.limited_by
        self.permission = key.permission()
        self.owner = owner_of(key)


class Verified:
    """A verified key, the digest of its secret, and what it proves.

    The key's descriptors and owner, the permission and the owner's user are shared with every
    cached key alike (see :class:`Grant`). The caller the key proves is not kept: the API-key realm
    builds it for each request, which costs less than tens of thousands of them held for hours.
    """

    __slots__ = ("digest", "key", "permission", "expires", "grant")

    def __init__(
        self, digest: bytes, key: ApiKey, permission: Permission, expires: float, grant: Grant | None = None
    ) -> None:
        self.digest = digest
        self.key = key
        self.permission = permission
        self.expires = expires
        # What the key shares with keys alike; held here, as the cache's index of grants holds none.
        self.grant = grant


def grant_identity(key: ApiKey) -> tuple[str, tuple[str, ...], tuple[str, ...], str]:
    """Everything a key's :class:`Grant` is built from, as text: equal for keys that may share one.

    A dataclass's repr names every field of it and of what it holds, so keys with equal descriptors
    and owner have equal text, and keys differing in any field of them different text. Each
    descriptor is its one kept text (``_repr``), not joined into a new string: its hash is computed
    once, and the grant's index compares keys of one owner by identity, not character by character
    (a joined text was hashed and compared anew at every key creation).
    """
    return (key.type, tuple(map(_repr, key.role_descriptors)), tuple(map(_repr, key.limited_by)), _repr(key.creator))


def _repr(descriptor: RoleDescriptor | Creator) -> str:
    """``repr(descriptor)``, written once per object: descriptors and owners are never changed once
    made, and keys of one owner hold the same ones (the superuser role's repr took 5 µs of every key
    creation; the owner is one object per caller: ApiKeyService._creator)."""
    found = _REPRS.get(id(descriptor))
    if found is not None and found[0] is descriptor:
        return found[1]
    text = repr(descriptor)
    if len(_REPRS) >= _MAX_REPRS:
        _REPRS.clear()
    _REPRS[id(descriptor)] = (descriptor, text)  # holds the descriptor: its id is not reused meanwhile
    return text


_REPRS: dict[int, tuple[RoleDescriptor | Creator, str]] = {}
_MAX_REPRS = 1_024


# Entries (past the most the cache ever held) after which the long-lived part of the heap is frozen.
FREEZE_STEP = 1_000


def freeze_long_lived() -> None:
    """Move what is alive now out of the collector's sight (``gc.freeze``), so full collections
    stop walking the cache; objects so frozen are still freed when their last reference goes.

    Young cyclic garbage is collected first (cheap); cyclic garbage already old stays uncollected,
    so this runs a bounded number of times (see :meth:`VerifiedKeys.put`), never on a timer.
    """
    gc.collect(1)
    gc.freeze()


class VerifiedKeys:
    def __init__(self, max_entries: int = 25_000, ttl_seconds: float = 3600.0) -> None:
        self._salt = os.urandom(16)
        self._entries: OrderedDict[str, Verified] = OrderedDict()
        # Grants by what they are built from; one lives as long as a cached key uses it.
        self._grants: weakref.WeakValueDictionary[tuple[object, ...], Grant] = weakref.WeakValueDictionary()
        self.max_entries = max_entries
        self.ttl = ttl_seconds
        # The most entries held when the heap was last frozen: the cache grows to its bound once,
        # and each step of that growth is frozen, at most max_entries / FREEZE_STEP times.
        self._frozen_at = 0
        # Lookups that found a verified key, and those that did not (the metrics read them).
        self.hits = 0
        self.misses = 0

    def digest(self, secret: str) -> bytes:
        return blake2s(self._salt + secret.encode()).digest()

    def get(self, key_id: str, secret: str) -> Verified | None:
        entry = self._entries.get(key_id)
        if entry is None:
            self.misses += 1
            return None
        if entry.expires < time.monotonic():
            self._entries.pop(key_id, None)
            self.misses += 1
            return None
        if not hmac.compare_digest(entry.digest, self.digest(secret)):
            self.misses += 1
            return None
        self._entries.move_to_end(key_id)
        self.hits += 1
        return entry

    def grant(self, key: ApiKey) -> Grant:
        """The grant of keys like ``key``: the one already shared, or a new one."""
        identity = grant_identity(key)
        grant = self._grants.get(identity)
        if grant is None:
            grant = self._grants[identity] = Grant(key)
        return grant

    def put(self, key: ApiKey, secret: str, *, own: bool = False) -> Verified:
        """Remember ``key`` as verified with ``secret``. ``own``: the caller hands the key over (a key it
        just created and no longer uses), so it is made the cache's own in place instead of copied."""
        grant = self.grant(key)
        # The key's form kept: the shared descriptors and owner (the key's own are left to be
        # collected), no stored hash (the cache proves a secret by its own digest), no metadata
        # (authentication never reads it, and it can be large), and the type as the one shared string.
        shared = key if own else replace(key)
        shared.hash = ""
        shared.type = sys.intern(key.type)
        shared.metadata = None
        shared.creator = grant.creator
        shared.role_descriptors = grant.role_descriptors
        shared.limited_by = grant.limited_by
        entry = Verified(self.digest(secret), shared, grant.permission, time.monotonic() + self.ttl, grant=grant)
        self._entries[key.id] = entry
        self._entries.move_to_end(key.id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        if len(self._entries) >= self._frozen_at + FREEZE_STEP:
            self._frozen_at = len(self._entries)
            freeze_long_lived()
        return entry

    def drop(self, key_id: str) -> None:
        self._entries.pop(key_id, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class LastUse:
    """Collects when keys were used; at most one write per key per granularity interval."""

    def __init__(self, granularity_ms: int) -> None:
        self.granularity_ms = granularity_ms
        self._recorded: dict[str, int] = {}
        self._pending: dict[str, int] = {}

    def touch(self, key: ApiKey, now: int) -> None:
        last = self._recorded.get(key.id, 0)
        stored = key.last_used
        if stored is not None and stored > last:
            last = stored
        if now - last >= self.granularity_ms:
            # Stored values are truncated to the interval, so they reveal no more than asked.
            at = now - now % self.granularity_ms if self.granularity_ms > 1 else now
            self._recorded[key.id] = now
            self._pending[key.id] = at
            if len(self._recorded) > 200_000:
                self._recorded.clear()

    def take(self) -> dict[str, int]:
        pending, self._pending = self._pending, {}
        return pending
