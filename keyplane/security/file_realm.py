"""The file realm (``default_file``): users and their roles from the ``users`` and ``users_roles`` files.

As in Elasticsearch, it comes before the native realm: a user it does not know, or whose password
does not match its hash, is left to the native realm. Its users are not listed by the user APIs;
their roles resolve like a native user's. The files are read at start and read again when they
change (``refresh``, polled by the wiring off the event loop); a malformed line is logged and
skipped. A verified password is cached as the password realm caches it, until the files change.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from keyplane.security import realm_files
from keyplane.security.identity import Authentication
from keyplane.security.password_realm import CredentialCache, RoleSource
from keyplane.security.passwords import verify_password
from keyplane.security.users import User

log = logging.getLogger("keyplane.security")

FILE_REALM = {"name": "default_file", "type": "file"}


class FileUser(User):
    """A user of the file realm: shown (``_authenticate``, API-key owners, tokens) as ``default_file``."""

    @property
    def realm(self) -> dict[str, str]:
        return FILE_REALM


@dataclass(frozen=True)
class FileUsers:
    """What the two files say: password hashes and roles by username."""

    hashes: dict[str, str] = field(default_factory=dict)
    roles: dict[str, list[str]] = field(default_factory=dict)
    # Each user as built once from these files: one object per user while the files stay (callers and
    # the audit trail key what they keep on it); replaced with the files, never changed.
    built: dict[str, FileUser] = field(default_factory=dict)


def read_users(users_path: Path, roles_path: Path) -> tuple[FileUsers, list[str]]:
    """Both files (missing or unreadable ones are empty) and the warnings of the lines skipped. Blocks."""
    users_lines, problems = realm_files.read_lines_leniently(users_path, "users")
    roles_lines, more = realm_files.read_lines_leniently(roles_path, "users_roles")
    hashes, users_problems = realm_files.parse_users(users_lines, users_path)
    roles, roles_problems = realm_files.parse_users_roles(roles_lines, roles_path)
    return FileUsers(hashes, roles), problems + more + users_problems + roles_problems


class FileRealm:
    def __init__(self, config_dir: Path, roles: RoleSource) -> None:
        self.users_path = config_dir / "users"
        self.roles_path = config_dir / "users_roles"
        self.roles = roles
        self._users = FileUsers()
        self._seen: tuple[realm_files.Signature, realm_files.Signature] | None = None
        # username -> the hash the password was verified against (a changed hash misses).
        self.cache: CredentialCache[str] = CredentialCache()

    def reload_if_changed(self) -> bool:
        """Read the files again if they changed since last read; whether they did. Blocks: run in a thread."""
        # The signatures are taken before reading: a write racing the read is seen at the next poll.
        seen = (realm_files.signature(self.users_path), realm_files.signature(self.roles_path))
        if seen == self._seen:
            return False
        users, problems = read_users(self.users_path, self.roles_path)
        for problem in problems:
            log.warning("%s", problem)
        first = self._seen is None
        self._users, self._seen = users, seen
        if not first:
            log.info("file realm: %s or %s changed; %d users now", self.users_path, self.roles_path, len(users.hashes))
        return True

    async def refresh(self) -> None:
        """Pick up changed files; verified passwords are forgotten when they changed."""
        if await asyncio.to_thread(self.reload_if_changed):
            self.cache.clear()

    def knows(self, username: str) -> bool:
        return username in self._users.hashes

    def user(self, username: str) -> User | None:
        users = self._users
        user = users.built.get(username)
        if user is None:
            if username not in users.hashes:
                return None
            user = users.built[username] = FileUser(username, roles=list(users.roles.get(username, ())))
        return user

    async def authenticate(self, username: str, password: str) -> Authentication | None:
        """The user, when the files know it and the password matches; None leaves it to the next realm."""
        hashed = self._users.hashes.get(username)
        if hashed is None:
            return None
        if self.cache.get(username, password) != hashed:
            if not await asyncio.to_thread(verify_password, password, hashed):
                return None
            self.cache.put(username, password, hashed)
        user = self.user(username)
        if user is None:  # the files changed while the hash was checked
            return None
        permission, found, missing = await self.roles.permission(user.roles)
        return Authentication(user, user, FILE_REALM, FILE_REALM, "realm", found, missing, permission)

    def forget(self) -> None:
        self.cache.clear()
