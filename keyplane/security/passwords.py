"""Password hashes in the formats Elasticsearch stores: bcrypt (``$2a$``) by default.

``password_hash`` in a request must use an algorithm we can verify: bcrypt in any of its
``$2a$/$2b$/$2y$`` spellings. Verification is slow on purpose, so callers run it in a thread and
cache successful checks (see ``authc.CredentialCache``).
"""

from __future__ import annotations

import bcrypt

BCRYPT_COST = 10
MIN_PASSWORD_LENGTH = 6


def hash_password(password: str) -> str:
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_COST)).decode()
    # Elasticsearch writes the $2a$ prefix; bcrypt's output is the same hash under either name.
    return "$2a$" + hashed[4:]


def is_supported_hash(value: str) -> bool:
    if not value.startswith(("$2a$", "$2b$", "$2y$")):
        return False
    parts = value.split("$")
    return len(parts) == 4 and parts[2].isdigit() and len(parts[3]) == 53


def verify_password(password: str, stored: str | None) -> bool:
    if not stored or not is_supported_hash(stored):
        return False
    try:
        return bcrypt.checkpw(password.encode(), ("$2b$" + stored[4:]).encode())
    except ValueError:
        return False
