"""The key that seals connector secrets, as backup and restore see it: never created, only read.

A backup names the key by its fingerprint; with ``--include-key-file`` it also carries the key, and
a restore into a data dir without a key file writes it there.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from keyplane.connectors.secrets import fingerprint

KEY_FILE = "secrets.key"


def configured_key(env_value: str | None, data_dir: Path) -> bytes | None:
    """The key these settings give (``KEYPLANE_SECRETS_KEY``, else the data dir's key file), if any yet."""
    try:
        if env_value:
            return base64.b64decode(env_value, validate=True)
        path = data_dir / KEY_FILE
        if path.exists():
            return base64.b64decode(path.read_bytes().strip(), validate=True)
    except (binascii.Error, ValueError, OSError):
        return None
    return None


def key_fingerprint(env_value: str | None, data_dir: Path) -> str | None:
    key = configured_key(env_value, data_dir)
    return None if key is None else fingerprint(key)


def encode(key: bytes) -> str:
    return base64.b64encode(key).decode()


def decode(text: str) -> bytes:
    """A key carried in a backup; ``ValueError`` if it is not one."""
    key = base64.b64decode(text, validate=True)
    if len(key) != 32:
        raise ValueError("the key in the backup is not 32 bytes")
    return key


def install(data_dir: Path, key: bytes) -> Path:
    """Write ``key`` as the data dir's key file (owner-only); never replaces one."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = data_dir / KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(base64.b64encode(key) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return path
