"""Service tokens from the ``service_tokens`` file, as ``elasticsearch-service-tokens`` writes it.

One ``namespace/service/token_name:hash`` per line. Elasticsearch hashes these secrets with
PBKDF2-HMAC-SHA512 over the SHA-512 of the secret (``{PBKDF2_STRETCH}``, 10,000 iterations); any
bcrypt or PBKDF2 hash is accepted on reading. As in Elasticsearch, a token in the file is tried
before the tokens in the store; it shows as ``_service_account_file``. The file is read at start and
again when it changes (``refresh``); a malformed line is logged and skipped.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
from pathlib import Path

from keyplane.security import realm_files
from keyplane.security.passwords import is_supported_hash, verify_password
from keyplane.service_accounts import core
from keyplane.service_accounts.core import TokenId

log = logging.getLogger("keyplane.security")

ITERATIONS = 10_000
_SALT_BYTES = 32
_KEY_BYTES = 32


def hash_token_secret(secret: str) -> str:
    """Elasticsearch's default service-token hash: ``{PBKDF2_STRETCH}10000$salt$key`` in base64."""
    salt = os.urandom(_SALT_BYTES)
    stretched = hashlib.sha512(secret.encode()).hexdigest().encode()
    key = hashlib.pbkdf2_hmac("sha512", stretched, salt, ITERATIONS, _KEY_BYTES)
    return f"{{PBKDF2_STRETCH}}{ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def token_id(key: str) -> TokenId | None:
    """The token a file key (``namespace/service/name``) names, or None when it names none."""
    parts = key.split("/")
    if len(parts) != 3 or not all(parts) or not core.TOKEN_NAME.match(parts[2]):
        return None
    return TokenId(f"{parts[0]}/{parts[1]}", parts[2])


def parse(lines: list[str], path: Path) -> tuple[dict[str, str], list[str]]:
    """key -> hash, and a warning for every line skipped."""
    tokens: dict[str, str] = {}
    problems: list[str] = []
    for number, key, hashed in realm_files.entries(lines):
        where = f"service_tokens file [{path}], line [{number}]"
        if hashed is None:
            problems.append(f"invalid entry in {where}: expected namespace/service/token_name:hash; skipped")
        elif token_id(key) is None:
            problems.append(f"invalid token name in {where}: expected namespace/service/token_name; skipped")
        elif not is_supported_hash(hashed):
            problems.append(f"invalid entry in {where}: the secret is not a bcrypt or PBKDF2 hash; skipped")
        else:
            if key in tokens:
                problems.append(f"duplicate token [{key}] in {where}: it replaces the earlier one")
            tokens[key] = hashed
    return tokens, problems


def text(tokens: dict[str, str]) -> str:
    return "".join(f"{key}:{hashed}\n" for key, hashed in sorted(tokens.items()))


def read(path: Path) -> tuple[dict[str, str], list[str]]:
    """The file's tokens (none when it is missing) and its warnings; raises when it cannot be read. Blocks."""
    return parse(realm_files.read_lines(path) or [], path)


def read_leniently(path: Path) -> tuple[dict[str, str], list[str]]:
    """As :func:`read`, but a file that cannot be read has no tokens (and a warning). Blocks."""
    lines, problems = realm_files.read_lines_leniently(path, "service_tokens")
    tokens, more = parse(lines, path)
    return tokens, problems + more


class FileServiceTokens:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._tokens: dict[str, str] = {}
        self._seen: realm_files.Signature | tuple[()] = ()
        self._salt = os.urandom(16)
        self._verified: dict[str, tuple[bytes, str]] = {}  # key -> (digest of the secret, the hash it matched)

    def reload_if_changed(self) -> bool:
        """Read the file again if it changed since last read; whether it did. Blocks: run in a thread."""
        seen = realm_files.signature(self.path)
        if seen == self._seen:
            return False
        tokens, problems = read_leniently(self.path)
        for problem in problems:
            log.warning("%s", problem)
        first = self._seen == ()
        self._tokens, self._seen = tokens, seen
        if not first:
            log.info("service tokens file %s changed; %d tokens now", self.path, len(tokens))
        return True

    async def refresh(self) -> None:
        if await asyncio.to_thread(self.reload_if_changed):
            self.forget()

    def knows(self, token: TokenId) -> bool:
        return token.key in self._tokens

    def names(self, principal: str) -> list[str]:
        """The names of the account's tokens in the file, sorted."""
        prefix = principal + "/"
        return sorted(key[len(prefix) :] for key in self._tokens if key.startswith(prefix))

    async def verify(self, token: TokenId, secret: str) -> bool:
        """Whether the file holds this token with this secret (PBKDF2 and bcrypt run in a thread)."""
        hashed = self._tokens.get(token.key)
        if hashed is None:
            return False
        digest = hashlib.sha256(self._salt + secret.encode()).digest()
        known = self._verified.get(token.key)
        if known is not None and known[1] == hashed and hmac.compare_digest(known[0], digest):
            return True
        if not await asyncio.to_thread(verify_password, secret, hashed):
            return False
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[token.key] = (digest, hashed)
        return True

    def forget(self) -> None:
        self._verified.clear()
