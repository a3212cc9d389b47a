"""In-memory state of API-key authentication: verified keys, and last-use times waiting to be written.

A verified key is remembered with a salted SHA-256 of its secret, so the hot path does one fast
hash, one constant-time compare and no database work. Entries leave when the key changes on any
node (change notices), when they age out, or when the cache is full.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections import OrderedDict
from dataclasses import dataclass

from keyplane.apikeys.core import ApiKey
from keyplane.security.identity import Authentication
from keyplane.security.permission import Permission


@dataclass
class Verified:
    digest: bytes
    key: ApiKey
    permission: Permission
    expires: float
    # The caller this key proves (built by the API-key realm), kept so the hot path builds it once.
    authentication: Authentication | None = None


class VerifiedKeys:
    def __init__(self, max_entries: int = 25_000, ttl_seconds: float = 3600.0) -> None:
        self._salt = os.urandom(16)
        self._entries: OrderedDict[str, Verified] = OrderedDict()
        self.max_entries = max_entries
        self.ttl = ttl_seconds

    def digest(self, secret: str) -> bytes:
        return hashlib.sha256(self._salt + secret.encode()).digest()

    def get(self, key_id: str, secret: str) -> Verified | None:
        entry = self._entries.get(key_id)
        if entry is None:
            return None
        if entry.expires < time.monotonic():
            self._entries.pop(key_id, None)
            return None
        if not hmac.compare_digest(entry.digest, self.digest(secret)):
            return None
        self._entries.move_to_end(key_id)
        return entry

    def put(self, key: ApiKey, secret: str) -> Verified:
        entry = Verified(self.digest(secret), key, key.permission(), time.monotonic() + self.ttl)
        self._entries[key.id] = entry
        self._entries.move_to_end(key.id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return entry

    def drop(self, key_id: str) -> None:
        self._entries.pop(key_id, None)

    def clear(self) -> None:
        self._entries.clear()


class LastUse:
    """Collects when keys were used; at most one write per key per granularity interval."""

    def __init__(self, granularity_ms: int) -> None:
        self.granularity_ms = granularity_ms
        self._recorded: dict[str, int] = {}
        self._pending: dict[str, int] = {}

    def touch(self, key: ApiKey, now: int) -> None:
        last = max(self._recorded.get(key.id, 0), key.last_used or 0)
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
