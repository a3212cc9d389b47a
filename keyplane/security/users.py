"""Users of the native and reserved realms, and the rules their names and passwords follow."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
