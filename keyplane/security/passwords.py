"""Password hashes in the formats Elasticsearch stores and verifies (its ``Hasher``).

New passwords are hashed with bcrypt at cost 10 (``$2a$``), Elasticsearch's default. A
``password_hash`` given to the user APIs may use any algorithm Elasticsearch accepts for stored
passwords: bcrypt at costs 4 to 14, and PBKDF2-HMAC-SHA512 (``{PBKDF2}``) or its SHA-512
pre-hashed variant (``{PBKDF2_STRETCH}``) at 1000, 10000, 50000, 100000, 500000 or 1000000
iterations. Salted SHA-256, SHA-1, MD5 and clear text are refused there, as Elasticsearch does.

bcrypt reads at most 72 bytes of a password. Elasticsearch neither refuses longer passwords
nor fails on them: only their first 72 UTF-8 bytes count, on hashing and on checking alike.
Python's bcrypt (5.x) raises instead, so the password is cut to 72 bytes before it gets there.

Verification is slow on purpose; callers run it in a thread and cache successful checks (see
``password_realm.CredentialCache``). Every comparison is constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

import bcrypt

from keyplane.errors import InvalidArgument

BCRYPT_COST = 10
MIN_PASSWORD_LENGTH = 6
BCRYPT_MAX_BYTES = 72

_BCRYPT_COSTS = range(4, 15)
_PBKDF2_ITERATIONS = (1000, 10000, 50000, 100000, 500000, 1000000)
_PBKDF2 = "{PBKDF2}"
_PBKDF2_STRETCH = "{PBKDF2_STRETCH}"
_PBKDF2_MIN_SALT_BYTES = 8

# Elasticsearch's list, in its order (Hasher.getAvailableAlgoStoredPasswordHash).
STORED_HASH_ALGORITHMS = (
    ["bcrypt"]
    + [f"bcrypt{c}" for c in _BCRYPT_COSTS]
    + ["pbkdf2"]
    + [f"pbkdf2_{n}" for n in _PBKDF2_ITERATIONS]
    + ["pbkdf2_stretch"]
    + [f"pbkdf2_stretch_{n}" for n in _PBKDF2_ITERATIONS]
)
UNSUPPORTED_HASH_MESSAGE = (
    "The provided password hash is not a hash or it could not be resolved to a supported hash algorithm. "
    f"The supported password hash algorithms are [{', '.join(STORED_HASH_ALGORITHMS)}]"
)
_ITERATIONS_UNKNOWN = "The number of iterations could not be determined from the provided PBKDF2 hash."


def _bcrypt_key(password: str) -> bytes:
    return password.encode()[:BCRYPT_MAX_BYTES]


def _is_bcrypt(value: str) -> bool:
    return len(value) >= 4 and value[0] == "$" and value[1] == "2" and value[2] in "aby" and value[3] == "$"


def hash_password(password: str) -> str:
    hashed = bcrypt.hashpw(_bcrypt_key(password), bcrypt.gensalt(BCRYPT_COST)).decode()
    # Elasticsearch writes the $2a$ prefix; bcrypt's output is the same hash under either name.
    return "$2a$" + hashed[4:]


def _pbkdf2_iterations(value: str, prefix: str) -> int:
    count, sep, _ = value[len(prefix) :].partition("$")
    if not sep or not count.isascii() or not count.lstrip("+-").isdigit():
        raise InvalidArgument(_ITERATIONS_UNKNOWN)
    return int(count)


def check_hash(value: str) -> None:
    """Refuse, with Elasticsearch's message, a ``password_hash`` the user APIs do not accept."""
    if _is_bcrypt(value):
        # Elasticsearch reads the cost between the prefix and the 53 characters of salt and hash.
        cost = value[4 : len(value) - 54]
        if not cost.isascii() or not cost.isdigit():
            raise InvalidArgument(UNSUPPORTED_HASH_MESSAGE)
        if int(cost) not in _BCRYPT_COSTS:
            raise InvalidArgument(f"unknown hash function [bcrypt{int(cost)}]")
        return
    for prefix, name in ((_PBKDF2_STRETCH, "pbkdf2_stretch"), (_PBKDF2, "pbkdf2")):
        if value.startswith(prefix):
            iterations = _pbkdf2_iterations(value, prefix)
            if iterations not in _PBKDF2_ITERATIONS:
                raise InvalidArgument(f"unknown hash function [{name}_{iterations}]")
            return
    raise InvalidArgument(UNSUPPORTED_HASH_MESSAGE)


def is_supported_hash(value: str) -> bool:
    try:
        check_hash(value)
    except InvalidArgument:
        return False
    return True


def _verify_bcrypt(password: str, stored: str) -> bool:
    try:
        return bcrypt.checkpw(_bcrypt_key(password), ("$2b$" + stored[4:]).encode())
    except ValueError:
        return False


def _verify_pbkdf2(secret: bytes, stored: str, prefix: str) -> bool:
    """``{PREFIX}iterations$salt$key``, salt and key in base64; the key length follows the stored key."""
    try:
        iterations = _pbkdf2_iterations(stored, prefix)
    except InvalidArgument:
        return False
    parts = stored[len(prefix) :].split("$", 2)
    if len(parts) != 3 or iterations not in _PBKDF2_ITERATIONS:
        return False
    salt_b64, key_b64 = parts[1], parts[2]
    # Elasticsearch derives as many bits as the stored key holds, rounded down to 128-bit blocks.
    key_bits = len(key_b64) * 3 // 64 * 128
    try:
        salt = base64.b64decode(salt_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    if key_bits <= 0 or len(salt) < _PBKDF2_MIN_SALT_BYTES:
        return False
    derived = hashlib.pbkdf2_hmac("sha512", secret, salt, iterations, key_bits // 8)
    return hmac.compare_digest(base64.b64encode(derived), key_b64.encode())


def verify_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    if _is_bcrypt(stored):
        return _verify_bcrypt(password, stored)
    if stored.startswith(_PBKDF2_STRETCH):
        # The stretch variant feeds PBKDF2 the lowercase hex SHA-512 of the password.
        stretched = hashlib.sha512(password.encode()).hexdigest().encode()
        return _verify_pbkdf2(stretched, stored, _PBKDF2_STRETCH)
    if stored.startswith(_PBKDF2):
        return _verify_pbkdf2(password.encode(), stored, _PBKDF2)
    return False
