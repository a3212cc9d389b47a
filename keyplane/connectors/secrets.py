"""Encryption of connector secret values at rest, with a key kept outside the database.

Values are sealed with AES-256-GCM; the secret's id is bound as associated data, so a sealed
value copied onto another id does not open. The key comes from ``KEYPLANE_SECRETS_KEY``
(base64 of 32 bytes) or from a key file created on first use in the data directory. Every node
sharing a database must use the same key.

A sealed value names the key that sealed it by a short fingerprint, so a node given another key
says so plainly instead of failing to decrypt.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from keyplane.errors import Misconfigured

# cryptography is imported when a secret is first sealed or opened: its bindings add about 8 MiB to
# the resident memory of every node, most of which never stores a connector secret.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = "v2"  # v2:<key fingerprint>:<nonce + ciphertext>; v1 (no fingerprint) is still read


def fingerprint(key: bytes) -> str:
    """A public name for a key: enough to tell two keys apart, useless to recover one."""
    return hashlib.sha256(b"keyplane secrets key\0" + key).hexdigest()[:12]


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the connector secrets key must be 32 bytes")
        self._key = key
        self.fingerprint = fingerprint(key)

    @functools.cached_property
    def _aead(self) -> AESGCM:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        return AESGCM(self._key)

    @classmethod
    def load(cls, env_value: str | None, key_file: Path) -> SecretBox:
        if env_value:
            try:
                return cls(base64.b64decode(env_value, validate=True))
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"KEYPLANE_SECRETS_KEY must be base64 of 32 bytes ({exc})") from None
        if key_file.exists():
            return cls(base64.b64decode(key_file.read_bytes().strip()))
        key_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = os.urandom(32)  # what AESGCM.generate_key(bit_length=256) returns
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.b64encode(key) + b"\n")
        return cls(key)

    def seal(self, secret_id: str, value: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, value.encode(), secret_id.encode())
        return f"{VERSION}:{self.fingerprint}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, secret_id: str, stored: str) -> str:
        version, _, rest = stored.partition(":")
        if version == "v1":
            sealed_by, payload = None, rest
        elif version == VERSION:
            sealed_by, _, payload = rest.partition(":")
        else:
            raise Misconfigured(f"connector secret [{secret_id}] is stored in an unknown format [{version}]")
        if sealed_by is not None and sealed_by != self.fingerprint:
            raise Misconfigured(self._mismatch(secret_id, f"key {sealed_by}"))
        raw = base64.b64decode(payload)
        from cryptography.exceptions import InvalidTag

        try:
            return self._aead.decrypt(raw[:12], raw[12:], secret_id.encode()).decode()
        except InvalidTag:
            if sealed_by is None:
                raise Misconfigured(self._mismatch(secret_id, "another key")) from None
            # The right key, yet it does not open: the value was altered or moved onto another id.
            raise Misconfigured(f"connector secret [{secret_id}] is damaged and cannot be decrypted") from None

    def _mismatch(self, secret_id: str, sealed_by: str) -> str:
        return (
            f"connector secret [{secret_id}] was encrypted with {sealed_by}, but this node's secrets key is "
            f"{self.fingerprint}; every node sharing a database needs the same key (KEYPLANE_SECRETS_KEY, or the "
            "same secrets.key file in its data dir)"
        )
