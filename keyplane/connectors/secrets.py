"""Encryption of connector secret values at rest, with a key kept outside the database.

Values are sealed with AES-256-GCM; the secret's id is bound as associated data, so a sealed
value copied onto another id does not open. The key comes from ``KEYPLANE_SECRETS_KEY``
(base64 of 32 bytes) or from a key file created on first use in the data directory. Every node
sharing a database must use the same key.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = "v1"


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the connector secrets key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def load(cls, env_value: str | None, key_file: Path) -> SecretBox:
        if env_value:
            try:
                return cls(base64.b64decode(env_value, validate=True))
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"KEYPLANE_SECRETS_KEY must be base64 of 32 bytes ({exc})") from None
        if key_file.exists():
            return cls(base64.b64decode(key_file.read_bytes().strip()))
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key = AESGCM.generate_key(bit_length=256)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.b64encode(key) + b"\n")
        return cls(key)

    def seal(self, secret_id: str, value: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, value.encode(), secret_id.encode())
        return f"{VERSION}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, secret_id: str, stored: str) -> str:
        version, _, payload = stored.partition(":")
        if version != VERSION:
            raise ValueError(f"unknown secret format [{version}]")
        raw = base64.b64decode(payload)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], secret_id.encode()).decode()
        except InvalidTag:
            raise ValueError("the secret cannot be decrypted with this node's key") from None
