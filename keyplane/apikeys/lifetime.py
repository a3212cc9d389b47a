"""Key-lifetime policy: the longest ``expiration`` a key may be given, and whether it must expire.

Elasticsearch has no such policy (elastic/elasticsearch#65658 asks for an enforced maximum); Keyplane
adds one per key type, off by default. It bounds what a request asks for: a create, grant, clone
or cross-cluster create, and an update that sets ``expiration``. An update that leaves
``expiration`` out leaves it as it is, as in Elasticsearch, even when the key's lifetime exceeds a
limit set after it was created: the policy never makes an existing key impossible to edit. Pure
rules; the service applies them and reports the messages as request validation errors.
"""

from __future__ import annotations

from dataclasses import dataclass

from keyplane.apikeys.core import CROSS_CLUSTER
from keyplane.query.dates import format_date
from keyplane.timevalue import parse_duration_ms

# Largest unit first: a limit is shown in the largest unit that divides it (``7d``, ``36h``).
_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000))


def format_duration(ms: int) -> str:
    """``ms`` as a TimeValue string Elasticsearch reads back to the same duration."""
    for unit, size in _UNITS:
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


@dataclass(frozen=True)
class LifetimeLimit:
    """The limits of one key type. ``max_setting`` and ``require_setting`` name the settings in messages."""

    label: str  # how messages name the key type: "API key", "cross-cluster API key"
    max_ms: int | None = None  # None: no maximum
    require_expiration: bool = False
    max_setting: str = ""
    require_setting: str = ""

    def messages(self, expiration: str | None) -> list[str]:
        """Why a requested ``expiration`` (``None``: the key never expires) is refused; empty when allowed.

        ``expiration`` is a TimeValue the request parser has already accepted. Zero and negative
        durations are not the policy's business (create makes an expired key; update refuses them).
        """
        if expiration is None:
            return [self._required()] if self.require_expiration else []
        if self.max_ms is not None and parse_duration_ms(expiration, "expiration") > self.max_ms:
            return [
                f"{self.label} expiration [{expiration}] exceeds the maximum allowed "
                f"[{format_duration(self.max_ms)}] ({self.max_setting})"
            ]
        return []

    def inherited_messages(self, expires_at: int | None, now: int) -> list[str]:
        """Why a new key that keeps another key's expiry time (a clone) is refused; empty when allowed."""
        if expires_at is None:
            return [self._required()] if self.require_expiration else []
        if self.max_ms is not None and expires_at - now > self.max_ms:
            return [
                f"{self.label} expiration [{format_date(expires_at)}] of the source key is more than the maximum "
                f"allowed [{format_duration(self.max_ms)}] from now ({self.max_setting})"
            ]
        return []

    def _required(self) -> str:
        return f"{self.label} expiration is required: keys that never expire are not allowed ({self.require_setting})"


@dataclass(frozen=True)
class LifetimePolicy:
    """The limits of REST and of cross-cluster keys; the default limits nothing."""

    rest: LifetimeLimit = LifetimeLimit("API key")
    cross_cluster: LifetimeLimit = LifetimeLimit("cross-cluster API key")

    def limit(self, kind: str) -> LifetimeLimit:
        """The limits of keys of ``kind`` (``core.REST`` or ``core.CROSS_CLUSTER``)."""
        return self.cross_cluster if kind == CROSS_CLUSTER else self.rest
