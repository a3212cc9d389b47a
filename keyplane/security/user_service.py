"""Use cases of native and built-in users: write, read, query, enable, change passwords.

The rules are the pure functions of ``keyplane.security.users``; this service reads and writes
the user repository around them and hashes passwords off the event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from keyplane.errors import NotFound
from keyplane.security import passwords, query
from keyplane.security import users as user_mod
from keyplane.security.backends.base import StoredUser, UserRepository
from keyplane.security.query import QueryPage, RecordQuery
from keyplane.security.users import User


class UserService:
    def __init__(self, repo: UserRepository, profiles: user_mod.ProfileLookup | None = None) -> None:
        self.repo = repo
        self.profiles = profiles

    async def get(
        self, usernames: list[str], *, with_profile_uid: bool = False
    ) -> tuple[list[User], dict[tuple[str, str], str]]:
        """Named users (all users when empty), built-in users included, in name order; with the
        profile uids of those that have a profile when asked."""
        users = await self._named(usernames)
        uids = await user_mod.profile_uids(self.profiles, [u.username for u in users]) if with_profile_uid else {}
        return users, uids

    async def _named(self, usernames: list[str]) -> list[User]:
        wanted = set(usernames)
        stored = await self.repo.list(sorted(wanted) if usernames else None)
        by_name = {s.user.username: self._shown(s) for s in stored}
        for name in user_mod.RESERVED_USERS:
            if (not usernames or name in wanted) and name not in by_name:
                by_name[name] = user_mod.reserved_user(name)
        return [by_name[n] for n in sorted(by_name)]

    async def native(self) -> list[User]:
        return [s.user for s in await self.repo.list() if not s.user.reserved]

    async def query(self, spec: RecordQuery, *, with_profile_uid: bool = False) -> QueryPage:
        """``_query/user``: native users only (Elasticsearch's query reads the security index)."""
        predicate = query.matcher(query.USER_RULES, spec.query)
        docs: list[dict[str, Any]] = [u.to_dict() for u in await self.native()]
        found = query.page(docs, predicate, spec, query.USER_RULES, "username")
        if with_profile_uid:
            usernames = [hit.record["username"] for hit in found.hits]
            return replace(found, profile_uids=await user_mod.profile_uids(self.profiles, usernames))
        return found

    @staticmethod
    def _shown(stored: StoredUser) -> User:
        if stored.user.reserved:
            return user_mod.reserved_user(stored.user.username, stored.user.enabled)
        return stored.user

    async def _hash(self, password: str | None, password_hash: str | None) -> str | None:
        if password_hash is not None:
            passwords.check_hash(password_hash)
            return password_hash
        if password is not None:
            return await asyncio.to_thread(passwords.hash_password, password)
        return None

    async def put(self, username: str, body: Any) -> bool:
        """Create or update a user from a put user body; whether it was created."""
        roles = user_mod.put_roles(username, body)
        exists = await self.repo.get(username) is not None
        put = user_mod.user_put(username, body, roles, exists)
        user_mod.check_put(put, exists)
        return await self.repo.put(put.user, await self._hash(put.password, put.password_hash))

    async def delete(self, username: str) -> bool:
        user_mod.check_delete(username)
        return await self.repo.delete(username)

    async def set_enabled(self, username: str, enabled: bool, acting_user: str) -> None:
        user_mod.check_set_enabled(username, enabled, acting_user)
        if user_mod.is_reserved(username):
            await self.repo.put_reserved(username, None, enabled)
            return
        if not await self.repo.set_enabled(username, enabled):
            raise NotFound(f"could not find user [{username}]")

    async def change_password(self, username: str, body: Any) -> None:
        """Change a user's password from a change password body (a password or its hash)."""
        password, password_hash = user_mod.password_change(body)
        user_mod.check_password_change(password, password_hash)
        hashed = await self._hash(password, password_hash)
        assert hashed is not None  # check_password_change required one of them
        if user_mod.is_reserved(username):
            # Only the password changes: a disabled built-in user stays disabled, as in Elasticsearch.
            await self.repo.put_reserved(username, hashed, enabled=None)
            return
        if not await self.repo.set_password(username, hashed):
            raise NotFound(f"user [{username}] does not exist")

    async def bootstrap_elastic(self, password: str | None) -> bool:
        """Give ``elastic`` its password at start; report whether a password is now set."""
        stored = await self.repo.get("elastic")
        if password is not None:
            current = stored.password_hash if stored is not None else None
            if not await asyncio.to_thread(passwords.verify_password, password, current):
                await self.repo.put_reserved("elastic", await self._hash(password, None))
            return True
        return stored is not None and stored.password_hash is not None

    async def delete_all_except(self, username: str) -> None:
        """Test mode's reset: every user but ``username`` goes (built-in users return to their defaults)."""
        await self.repo.delete_all_except(username)
