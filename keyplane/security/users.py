"""Users of the native and reserved realms, and the rules their names and passwords follow."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from keyplane.errors import InvalidArgument, ParseError, ValidationError
from keyplane.json_kinds import token_kind
from keyplane.security.passwords import MIN_PASSWORD_LENGTH

NATIVE_REALM = {"name": "default_native", "type": "native"}
RESERVED_REALM = {"name": "reserved", "type": "reserved"}

# Elasticsearch's built-in users and the one role each has.
RESERVED_USERS: dict[str, str] = {
    "elastic": "superuser",
    "kibana_system": "kibana_system",
    "logstash_system": "logstash_system",
    "beats_system": "beats_system",
    "apm_system": "apm_system",
    "remote_monitoring_user": "remote_monitoring_agent",
}


@dataclass
class User:
    username: str
    roles: list[str] = field(default_factory=list)
    full_name: str | None = None
    email: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    reserved: bool = False

    @property
    def realm(self) -> dict[str, str]:
        return RESERVED_REALM if self.reserved else NATIVE_REALM

    def to_dict(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "roles": self.roles,
            "full_name": self.full_name,
            "email": self.email,
            "metadata": self.metadata,
            "enabled": self.enabled,
        }


def reserved_user(username: str, enabled: bool = True) -> User:
    return User(
        username,
        roles=[RESERVED_USERS[username]],
        metadata={"_reserved": True},
        enabled=enabled,
        reserved=True,
    )


def is_reserved(username: str) -> bool:
    return username in RESERVED_USERS


def username_messages(username: str) -> list[str]:
    if not (1 <= len(username) <= 507) or username != username.strip() or not all(" " <= c <= "~" for c in username):
        return [
            f"Invalid username [{username}]... Usernames must be at least 1 and no more than 507 characters. "
            "They can contain alphanumeric characters (a-z, A-Z, 0-9), spaces, punctuation, and printable "
            "symbols in the Basic Latin (ASCII) block. Leading or trailing whitespace is not allowed."
        ]
    return []


def password_messages(password: str) -> list[str]:
    # Elasticsearch counts Java chars (UTF-16 code units): a character outside the BMP counts twice.
    if len(password.encode("utf-16-le")) // 2 < MIN_PASSWORD_LENGTH:
        return [f"passwords must be at least [{MIN_PASSWORD_LENGTH}] characters long"]
    return []


# -- the put user and change password requests ----------------------------------------------------

_PUT_FIELDS = {"username", "password", "password_hash", "roles", "full_name", "email", "metadata", "enabled"}
_PASSWORD_FIELDS = ("password", "password_hash")


def _typed(data: dict[str, Any], name: str, kind: type | tuple[type, ...], label: str) -> Any:
    """A field of a user body, or None when absent or null; a value of another JSON type is refused."""
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ParseError(f"expected field [{name}] to be of type {label}, but found [{token_kind(value)}] instead")
    return value


def _roles(data: dict[str, Any]) -> list[str] | None:
    value = data.get("roles")
    if value is None:
        return None
    if isinstance(value, str):
        return [r for r in value.split(",") if r]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ParseError("expected field [roles] to be of type string array")


@dataclass(frozen=True)
class UserPut:
    """A put user request, read: the user to store and the password it gives, plain or hashed."""

    user: User
    password: str | None
    password_hash: str | None


def put_roles(username: str, data: Any) -> list[str] | None:
    """Check a put user body's shape and username; the roles it gives (None when it gives none).

    The rest of the body is read by :func:`user_put` once the caller knows whether the user
    exists, because only an update may leave the roles out.
    """
    if not isinstance(data, dict):
        raise ParseError("failed to parse add user request. expected an object")
    for name in data:
        if name not in _PUT_FIELDS:
            raise ParseError(f"failed to parse add user request. unexpected field [{name}]")
    body_name = _typed(data, "username", str, "string")
    if body_name is not None and body_name != username:
        raise ParseError(
            f"failed to parse add user request. username doesn't match. expected [{username}] but got [{body_name}]"
        )
    return _roles(data)


def user_put(username: str, data: dict[str, Any], roles: list[str] | None, exists: bool) -> UserPut:
    """The user a put user body describes (after :func:`put_roles`); a new user needs its roles."""
    if roles is None and not exists:
        raise ValidationError("roles are missing")
    enabled = _typed(data, "enabled", bool, "boolean")
    user = User(
        username,
        roles=roles if roles is not None else [],
        full_name=_typed(data, "full_name", str, "string"),
        email=_typed(data, "email", str, "string"),
        metadata=_typed(data, "metadata", dict, "object") or {},
        enabled=True if enabled is None else enabled,
    )
    return UserPut(user, _typed(data, "password", str, "string"), _typed(data, "password_hash", str, "string"))


def check_put(put: UserPut, exists: bool) -> None:
    """Elasticsearch's checks of a user write, all messages of one kind reported at once."""
    username = put.user.username
    messages = username_messages(username)
    if is_reserved(username):
        raise ValidationError(f"user [{username}] is reserved and only the password can be changed")
    if put.password is not None and put.password_hash is not None:
        messages.append("only one of [password, passwordHash] can be provided")
    if put.password is not None:
        messages += password_messages(put.password)
    if any(k.startswith("_") for k in put.user.metadata):
        messages.append("metadata keys may not start with [_]")
    if messages:
        raise ValidationError(*messages)
    if put.password is None and put.password_hash is None and not exists:
        raise ValidationError("password must be specified unless you are updating an existing user")


def password_change(data: Any) -> tuple[str | None, str | None]:
    """The password and password hash a change password body gives (either may be None)."""
    if not isinstance(data, dict):
        raise ParseError("failed to parse change password request. expected an object")
    for name in data:
        if name not in _PASSWORD_FIELDS:
            raise ParseError(f"failed to parse change password request. unexpected field [{name}]")
    return _typed(data, "password", str, "string"), _typed(data, "password_hash", str, "string")


def check_password_change(password: str | None, password_hash: str | None) -> None:
    messages = []
    if password is None and password_hash is None:
        messages.append("password must be specified")
    if password is not None:
        messages += password_messages(password)
    if messages:
        raise ValidationError(*messages)


def check_delete(username: str) -> None:
    if is_reserved(username):
        raise InvalidArgument(f"user [{username}] is reserved and cannot be deleted")


def check_set_enabled(username: str, enabled: bool, acting_user: str) -> None:
    # A user who disables itself could not log in to undo it.
    if not enabled and username == acting_user:
        raise ValidationError("users may not update the enabled status of their own account")


# -- the user query -------------------------------------------------------------------------------

QUERYABLE_FIELDS = frozenset({"username", "roles", "enabled", "full_name", "email"})


def queryable_field(name: str) -> str | None:
    """The user field a query may name, or None: passwords and metadata are not queryable."""
    return name if name in QUERYABLE_FIELDS else None


# The profiles of users by name, as {(username, realm name): profile uid} for those that have one
# (``with_profile_uid``); implemented by the profile store, which sits above security.
ProfileLookup = Callable[[list[str]], Awaitable[dict[tuple[str, str], str]]]


async def profile_uids(lookup: ProfileLookup | None, usernames: list[str]) -> dict[tuple[str, str], str]:
    """The profile uids of ``usernames``' owners; nothing without a lookup or names."""
    if lookup is None or not usernames:
        return {}
    return await lookup(sorted(set(usernames)))


def realm_of(shown: dict[str, Any]) -> str:
    """The realm of a user in its display form: built-in users carry ``_reserved`` in their metadata."""
    return "reserved" if shown.get("metadata", {}).get("_reserved") else "default_native"
