"""Key ids, secrets, and the salted hashes that are all the store keeps of a secret.

Secrets carry 128 random bits, so a fast salted SHA-256 is as safe as a slow KDF against
guessing, as Elasticsearch decided in 9.0; PBKDF2 stays selectable. The stored string starts with
the algorithm, and verification picks the algorithm from it, so changing the setting breaks no key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from keyplane import ids

SSHA256 = "ssha256"
PBKDF2 = "pbkdf2"
ALGORITHMS = (SSHA256, PBKDF2)
PBKDF2_ITERATIONS = 10_000


def encoded(key_id: str, secret: str) -> str:
    return base64.b64encode(f"{key_id}:{secret}".encode()).decode()


def decode(credential: str) -> tuple[str, str] | None:
    """The id and secret of an encoded credential (base64 of ``id:secret``); ``None`` when malformed."""
    try:
        # base64.b64decode(validate=True) accepts the same, through two Python-level calls more.
        text = binascii.a2b_base64(credential.strip(), strict_mode=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    key_id, sep, secret = text.partition(":")
    return (key_id, secret) if sep and key_id else None


def hash_secret(secret: str, algorithm: str = SSHA256) -> str:
    salt = ids.random_bytes(16)
    if algorithm == PBKDF2:
        digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, PBKDF2_ITERATIONS)
        return f"{{PBKDF2}}{PBKDF2_ITERATIONS}${ids.urlsafe(salt)}${ids.urlsafe(digest)}"
    if algorithm != SSHA256:
        raise ValueError(f"unknown API key hash algorithm [{algorithm}]; valid values are {list(ALGORITHMS)}")
    digest = hashlib.sha256(salt + secret.encode()).digest()
    return f"{{SSHA256}}{ids.urlsafe(salt)}${ids.urlsafe(digest)}"


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def is_slow(stored: str) -> bool:
    """Whether verifying this hash should leave the event loop."""
    return stored.startswith("{PBKDF2}")


def verify_secret(secret: str, stored: str) -> bool:
    """Constant-time comparison against a stored hash of either algorithm."""
    try:
        if stored.startswith("{SSHA256}"):
            salt, digest = stored[len("{SSHA256}") :].split("$")
            actual = hashlib.sha256(_unb64(salt) + secret.encode()).digest()
            return hmac.compare_digest(actual, _unb64(digest))
        if stored.startswith("{PBKDF2}"):
            iterations, salt, digest = stored[len("{PBKDF2}") :].split("$")
            actual = hashlib.pbkdf2_hmac("sha512", secret.encode(), _unb64(salt), int(iterations))
            return hmac.compare_digest(actual, _unb64(digest))
    except (ValueError, TypeError):
        return False
    return False
