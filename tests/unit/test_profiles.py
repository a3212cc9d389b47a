"""User profiles: the domain returns typed profiles (``data`` cut to the asked-for keys) and the REST
edge renders them; the service's reads and reset on an in-memory repository."""

from __future__ import annotations

import asyncio
import copy
from typing import Any, cast

import orjson
import pytest

from keyplane.api.profiles import render_profile, render_suggested
from keyplane.errors import Conflict, Forbidden, NotFound, ValidationError
from keyplane.profiles import core
from keyplane.profiles.backends.base import StoredProfile
from keyplane.profiles.service import ProfileService
from keyplane.security.authentication import Grantees
from keyplane.security.identity import Authentication
from keyplane.security.permission import Subject
from keyplane.security.privilege_service import PrivilegeService
from keyplane.security.role_service import RoleService

DOC: dict[str, Any] = {
    "user": {"username": "jack", "roles": ["r"], "realm_name": "native"},
    "labels": {"team": "a"},
    "data": {"app1": {"theme": "dark"}, "app2": {"x": 1}},
    "last_synchronized": 1700,
}


class MemoryProfiles:
    """Just enough of a ProfileRepository for the reads and data updates."""

    def __init__(self, *profiles: StoredProfile) -> None:
        self.profiles = {p.uid: p for p in profiles}

    async def get(self, uid: str) -> StoredProfile | None:
        found = self.profiles.get(uid)
        return None if found is None else copy.deepcopy(found)

    async def get_many(self, uids: list[str]) -> dict[str, StoredProfile]:
        return {uid: copy.deepcopy(self.profiles[uid]) for uid in uids if uid in self.profiles}

    async def by_user(self, usernames: list[str]) -> dict[tuple[str, str], str]:
        return {}

    async def all_enabled(self) -> list[StoredProfile]:
        return [copy.deepcopy(p) for p in self.profiles.values() if p.enabled]

    async def activate(self, uid: str, username: str, realm: str, user: dict[str, Any], now: int) -> StoredProfile:
        raise NotImplementedError

    async def replace(self, profile: StoredProfile) -> bool:
        current = self.profiles.get(profile.uid)
        if current is None or current.seq_no != profile.seq_no:
            return False
        self.profiles[profile.uid] = StoredProfile(profile.uid, profile.enabled, profile.doc, profile.seq_no + 1)
        return True

    async def delete_all(self) -> None:
        self.profiles.clear()


def _service(repo: MemoryProfiles) -> ProfileService:
    # The reads need neither roles, privileges nor grants.
    return ProfileService(repo, cast(RoleService, None), cast(PrivilegeService, None), cast(Grantees, None))


def test_data_shows_only_the_asked_for_keys() -> None:
    data = DOC["data"]
    assert core.shown_data(data, []) == {}
    assert core.shown_data(data, ["app2", "other"]) == {"app2": {"x": 1}}
    assert core.shown_data(data, ["*"]) == data


def test_a_profile_from_its_document() -> None:
    profile = core.profile("u1", True, DOC, 7, ["app1"])
    assert profile == core.Profile("u1", True, 1700, DOC["user"], {"team": "a"}, {"app1": {"theme": "dark"}}, 7)
    bare = core.profile("u2", False, {"user": DOC["user"], "last_synchronized": 1}, 0, ["*"])
    assert (bare.labels, bare.data) == ({}, {})


def test_rendered_as_elasticsearch_shows_a_profile() -> None:
    profile = core.profile("u1", True, DOC, 7, ["app1"])
    # Byte for byte, keys in Elasticsearch's order.
    assert orjson.dumps(render_profile(profile)) == orjson.dumps(
        {
            "uid": "u1",
            "enabled": True,
            "last_synchronized": 1700,
            "user": DOC["user"],
            "labels": {"team": "a"},
            "data": {"app1": {"theme": "dark"}},
            "_doc": {"_primary_term": 1, "_seq_no": 7},
        }
    )
    assert list(render_suggested(profile)) == ["uid", "user", "labels", "data"]


def test_the_service_reads_typed_profiles_and_resets() -> None:
    repo = MemoryProfiles(StoredProfile("u1", True, copy.deepcopy(DOC), 3), StoredProfile("u2", False, DOC, 1))
    service = _service(repo)

    async def run() -> None:
        found, missing = await service.get(["u1", "nope"], ["app2"])
        assert [(p.uid, p.data, p.seq_no) for p in found] == [("u1", {"app2": {"x": 1}}, 3)]
        assert list(missing) == ["nope"] and isinstance(missing["nope"], NotFound)
        total, shown = await service.suggest("ja", 10, {}, [])
        assert total == 1 and [p.uid for p in shown] == ["u1"]  # disabled profiles are not suggested
        await service.delete_all()
        assert repo.profiles == {}

    asyncio.run(run())


class Caller:
    """An authenticated caller allowed to update the data of the applications it is given."""

    def __init__(self, applications: set[str] | None) -> None:
        self.permission = self
        self.applications = applications  # None: every application (manage_user_profile)

    def grants_for_applications(self, action: str, applications: set[str]) -> bool:
        return self.applications is None or applications <= self.applications

    def subject(self) -> Subject:
        return Subject("jack", ["r"], [])


def _caller(applications: set[str] | None = None) -> Authentication:
    return cast(Authentication, Caller(applications))


def test_a_data_update_is_checked_before_its_if_seq_no_is_read() -> None:
    repo = MemoryProfiles(StoredProfile("u1", True, copy.deepcopy(DOC), 3))
    service = _service(repo)
    read: list[str] = []

    def bad_seq_no() -> int | None:
        read.append("if_seq_no")
        raise ValueError("a bad if_seq_no")

    async def refused(labels: dict[str, Any] | None, data: dict[str, Any] | None) -> str:
        with pytest.raises(ValidationError) as raised:
            await service.update_data(_caller(), "u1", labels, data, bad_seq_no)
        return str(raised.value)

    async def run() -> None:
        assert await refused(None, None) == "update request is empty"
        assert await refused({"_team": 1}, None) == "data keys cannot start with a [_]"
        assert await refused(None, {"app": 1, "_x": 2}) == "data keys cannot start with a [_]"
        assert read == []  # never asked for
        with pytest.raises(ValueError):
            await service.update_data(_caller(), "u1", {"team": "b"}, None, bad_seq_no)
        assert read == ["if_seq_no"]

    asyncio.run(run())


def test_a_data_update_merges_under_its_version_and_the_callers_applications() -> None:
    repo = MemoryProfiles(StoredProfile("u1", True, copy.deepcopy(DOC), 3))
    service = _service(repo)

    async def run() -> None:
        # A global profile.write privilege allows the applications it names, no others.
        with pytest.raises(Forbidden, match=r"is unauthorized for user \[jack\]"):
            await service.update_data(_caller({"app1"}), "u1", None, {"app2": {"y": 2}}, lambda: 3)
        with pytest.raises(Conflict, match=r"required seqNo \[2\], current \[3\]"):
            await service.update_data(_caller(), "u1", None, {"app1": {"y": 2}}, lambda: 2)
        await service.update_data(_caller({"app1"}), "u1", None, {"app1": {"size": 9}}, lambda: 3)
        await service.update_data(_caller(), "u1", {"team": "b"}, None, lambda: None)
        stored = repo.profiles["u1"]
        assert stored.seq_no == 5
        assert stored.doc["data"]["app1"] == {"theme": "dark", "size": 9}
        assert stored.doc["labels"] == {"team": "b"}

    asyncio.run(run())
