"""User-profile use cases: activate, read, enable or disable, update data, suggest, check privileges."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keyplane.documents import deep_merge
from keyplane.errors import Conflict, Forbidden, InvalidArgument, KeyplaneError, NotFound, ValidationError
from keyplane.limits import check_flattened
from keyplane.profiles import core
from keyplane.profiles.backends.base import ProfileRepository, StoredProfile
from keyplane.security import privilege_check
from keyplane.security.authentication import Grant, Grantees
from keyplane.security.identity import Authentication
from keyplane.security.permission import denial_message
from keyplane.security.privilege_check import PrivilegeRequest
from keyplane.security.privilege_service import PrivilegeService
from keyplane.security.role_service import RoleService
from keyplane.timevalue import now_ms

UPDATE_DATA = "cluster:admin/xpack/security/profile/put/data"


def _missing(uid: str) -> NotFound:
    return NotFound(f"profile document not found for uid [{uid}]")


def _profile(stored: StoredProfile, data_keys: list[str]) -> core.Profile:
    return core.profile(stored.uid, stored.enabled, stored.doc, stored.seq_no, data_keys)


class ProfileService:
    def __init__(
        self, repo: ProfileRepository, roles: RoleService, privileges: PrivilegeService, grantees: Grantees
    ) -> None:
        self.repo = repo
        self.roles = roles
        self.privileges = privileges
        self.grantees = grantees

    async def activate(self, grant: Grant, uri: str) -> core.Profile:
        """Create or refresh the profile of the user ``grant`` authenticates."""
        message = core.activation_message(grant)
        if message is not None:
            raise ValidationError(message)
        auth = await self.grantees.grantee(grant, uri, action=core.ACTIVATE, failure=core.ACTIVATION_FAILURE)
        if auth.type == "api_key":
            raise InvalidArgument("profile is not supported for API key")
        realm = auth.lookup_realm["name"]
        uid = core.uid_for(auth.user.username, realm)
        stored = await self.repo.activate(uid, auth.user.username, realm, core.user_part(auth.user, realm), now_ms())
        return _profile(stored, [])

    async def _get(self, uid: str) -> StoredProfile:
        stored = await self.repo.get(uid)
        if stored is None:
            raise _missing(uid)
        return stored

    async def get(self, uids: list[str], data_keys: list[str]) -> tuple[list[core.Profile], dict[str, KeyplaneError]]:
        """The profiles found, and the error of each uid that has none."""
        profiles: list[core.Profile] = []
        missing: dict[str, KeyplaneError] = {}
        found = await self.repo.get_many(uids)
        for uid in uids:
            stored = found.get(uid)
            if stored is None:
                missing[uid] = _missing(uid)
            else:
                profiles.append(_profile(stored, data_keys))
        return profiles, missing

    async def _change(self, uid: str, change: Callable[[StoredProfile], None], if_seq_no: int | None = None) -> None:
        for _attempt in range(30):
            stored = await self._get(uid)
            if if_seq_no is not None and stored.seq_no != if_seq_no:
                raise Conflict(f"[{uid}]: version conflict, required seqNo [{if_seq_no}], current [{stored.seq_no}]")
            change(stored)
            if await self.repo.replace(stored):
                return
        raise Conflict(f"[{uid}]: too many concurrent updates")

    async def set_enabled(self, uid: str, enabled: bool) -> None:
        await self._change(uid, lambda p: setattr(p, "enabled", enabled))

    async def update_data(
        self,
        auth: Authentication,
        uid: str,
        labels: dict[str, Any] | None,
        data: dict[str, Any] | None,
        if_seq_no: Callable[[], int | None],
    ) -> None:
        """Merge ``labels`` and ``data`` into the profile ``uid``.

        ``if_seq_no`` gives the version the update is conditional on; it is asked for only once the
        update itself is known to be well formed, so a malformed update is refused first.
        """
        message = core.update_message(labels, data)
        if message is not None:
            raise ValidationError(message)
        expected_seq_no = if_seq_no()
        # manage_user_profile allows any update; a global profile.write privilege allows it for the
        # applications it names, which are the top-level keys of labels and data.
        applications = set(labels or {}) | set(data or {})
        if not auth.permission.grants_for_applications(UPDATE_DATA, applications):
            raise Forbidden(denial_message(UPDATE_DATA, auth.subject()))

        def merge(profile: StoredProfile) -> None:
            for name, value in (("labels", labels), ("data", data)):
                if value is not None:
                    target = profile.doc.setdefault(name, {})
                    deep_merge(target, value)
            # Labels are a flattened field in Elasticsearch's profile index: its depth limit refuses the write.
            check_flattened("user_profile.labels", profile.doc.get("labels") or {}, uid)

        await self._change(uid, merge, expected_seq_no)

    async def suggest(
        self, name: str, size: int, hint: dict[str, Any], data_keys: list[str]
    ) -> tuple[int, list[core.Profile]]:
        """How many enabled profiles match ``name``, and the first ``size`` of them, hinted ones first."""
        hinted_uids = set(hint.get("uids", []))
        hinted_labels = hint.get("labels", {})

        def hint_score(profile: StoredProfile) -> int:
            labels = profile.doc.get("labels", {})
            score = int(profile.uid in hinted_uids)
            for key, wanted in hinted_labels.items():
                values = wanted if isinstance(wanted, list) else [wanted]
                score += int(labels.get(key) in values)
            return score

        found = [p for p in await self.repo.all_enabled() if core.matches(p.doc, name)]
        found.sort(key=lambda p: -hint_score(p))
        return len(found), [_profile(p, data_keys) for p in found[:size]]

    async def has_privileges(
        self, uids: list[str], wanted: PrivilegeRequest
    ) -> tuple[list[str], dict[str, KeyplaneError]]:
        """The uids whose users hold every wanted privilege, and the error of each uid that has no profile."""
        defs = await self.privileges.resolver(wanted.applications)
        holding: list[str] = []
        errors: dict[str, KeyplaneError] = {}
        found = await self.repo.get_many(uids)
        # The uids are a set, as in Elasticsearch; users sharing a role set share one answer.
        answers: dict[tuple[str, ...], bool] = {}
        for uid in dict.fromkeys(uids):
            stored = found.get(uid)
            if stored is None:
                errors[uid] = _missing(uid)
                continue
            roles = tuple(stored.doc["user"]["roles"])
            if roles not in answers:
                permission, _, _ = await self.roles.permission(list(roles))
                answers[roles] = privilege_check.check(permission, wanted, defs).has_all_requested
            if answers[roles]:
                holding.append(uid)
        return holding, errors

    async def uids(self, usernames: list[str]) -> dict[tuple[str, str], str]:
        return await self.repo.by_user(usernames)

    async def delete_all(self) -> None:
        """Test mode's reset."""
        await self.repo.delete_all()
