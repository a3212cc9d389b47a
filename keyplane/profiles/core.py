"""Profile documents, their uids, and the rules of activating, reading and updating them."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from keyplane.security.authentication import Grant
from keyplane.security.users import User

ACTIVATE = "cluster:admin/xpack/security/profile/activate"
ACTIVATION_FAILURE = "Failed to authenticate user profile grant"
GRANT_TYPES = ("password", "access_token")


def uid_for(username: str, realm: str) -> str:
    """Stable for a user of a realm, in Elasticsearch's ``u_<hash>_<n>`` shape."""
    digest = hashlib.sha256(f"{realm}\x00{username}".encode()).digest()
    return "u_" + base64.urlsafe_b64encode(digest).decode().rstrip("=") + "_0"


def user_part(user: User, realm: str) -> dict[str, Any]:
    out: dict[str, Any] = {"username": user.username, "roles": list(user.roles), "realm_name": realm}
    if user.email is not None:
        out["email"] = user.email
    if user.full_name is not None:
        out["full_name"] = user.full_name
    return out


@dataclass(frozen=True)
class Profile:
    """A profile as its APIs return it: the stored document, with ``data`` cut to the asked-for keys."""

    uid: str
    enabled: bool
    last_synchronized: int
    user: dict[str, Any]
    labels: dict[str, Any]
    data: dict[str, Any]
    seq_no: int


def shown_data(data: dict[str, Any], data_keys: list[str]) -> dict[str, Any]:
    """The part of a profile's ``data`` a reader asked for: the named top-level keys, or all for ``*``.

    No keys asked for shows none: application data is private to the applications that name it.
    """
    if "*" in data_keys:
        return data
    return {k: v for k, v in data.items() if k in data_keys}


def profile(uid: str, enabled: bool, doc: dict[str, Any], seq_no: int, data_keys: list[str]) -> Profile:
    """The profile a stored document holds, showing only the asked-for ``data`` keys."""
    return Profile(
        uid=uid,
        enabled=enabled,
        last_synchronized=doc["last_synchronized"],
        user=doc["user"],
        labels=doc.get("labels", {}),
        data=shown_data(doc.get("data", {}), data_keys),
        seq_no=seq_no,
    )


def matches(doc: dict[str, Any], name: str) -> bool:
    """Suggest's name match: a prefix of the username, or of a word of the full name or email."""
    if not name:
        return True
    needle = name.lower()
    user = doc["user"]
    words = [user["username"].lower()]
    for field in ("full_name", "email"):
        if user.get(field):
            words += user[field].lower().replace("@", " ").replace(".", " ").split()
            words.append(user[field].lower())
    return any(w.startswith(needle) for w in words)


def activation_message(grant: Grant) -> str | None:
    """What is wrong with the credentials of an activation request, if anything."""
    if grant.type not in GRANT_TYPES:
        return f"grant_type [{grant.type}] is not supported" if grant.type else "[grant_type] is required"
    if grant.type == "password" and (grant.username is None or grant.password is None):
        return "[username] and [password] are required for grant_type [password]"
    if grant.type == "access_token" and grant.access_token is None:
        return "[access_token] is required for grant_type [access_token]"
    return None


def update_message(labels: dict[str, Any] | None, data: dict[str, Any] | None) -> str | None:
    """What is wrong with a profile data update, if anything: keys starting with ``_`` are reserved."""
    if labels is None and data is None:
        return "update request is empty"
    for value in (labels, data):
        if value and any(k.startswith("_") for k in value):
            return "data keys cannot start with a [_]"
    return None
