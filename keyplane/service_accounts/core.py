"""The built-in service accounts, and the format of their tokens.

A token is ``Bearer base64(00 01 00 01 "namespace/service/name:secret")``, as Elasticsearch
issues them; only a salted hash of the secret is stored.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from keyplane.security import roles as role_mod
from keyplane.security.roles import RoleDescriptor
from keyplane.security.users import User

PREFIX = b"\x00\x01\x00\x01"
# Base64 maps each 3 bytes to 4 characters one to one, so a service token's text starts with these.
_ENCODED_PREFIX = base64.b64encode(PREFIX[:3]).decode()
REALM = {"name": "_service_account", "type": "_service_account"}
TOKEN_NAME = re.compile(r"^[a-zA-Z0-9-][a-zA-Z0-9_-]{0,255}$")


def _account(principal: str, body: dict) -> RoleDescriptor:  # type: ignore[type-arg]
    return role_mod.parse(principal, body)


ACCOUNTS: dict[str, RoleDescriptor] = {
    "elastic/auto-ops": _account(
        "elastic/auto-ops",
        {
            "cluster": ["monitor", "read_ilm", "read_slm"],
            "indices": [
                {"names": ["*"], "privileges": ["monitor", "view_index_metadata"], "allow_restricted_indices": True}
            ],
        },
    ),
    "elastic/fleet-server": _account(
        "elastic/fleet-server",
        {
            "cluster": ["monitor", "manage_own_api_key", "read_fleet_secrets"],
            "indices": [
                {
                    "names": [
                        "logs-*",
                        "metrics-*",
                        "traces-*",
                        ".logs-endpoint.diagnostic.collection-*",
                        ".logs-endpoint.action.responses-*",
                    ],
                    "privileges": ["write", "create_index", "auto_configure"],
                },
                {"names": ["profiling-*"], "privileges": ["read", "write", "auto_configure"]},
                {"names": ["traces-apm.sampled-*"], "privileges": ["read", "monitor", "maintenance"]},
                {"names": [".fleet-secrets*"], "privileges": ["read"], "allow_restricted_indices": True},
                {
                    "names": [".fleet-*"],
                    "privileges": ["read", "write", "monitor", "create_index", "auto_configure", "maintenance"],
                    "allow_restricted_indices": True,
                },
                {"names": ["synthetics-*"], "privileges": ["read", "write", "create_index", "auto_configure"]},
            ],
            "applications": [{"application": "kibana-*", "resources": ["*"], "privileges": ["reserved_fleet-setup"]}],
        },
    ),
    "elastic/fleet-server-remote": _account(
        "elastic/fleet-server-remote",
        {
            "cluster": ["manage_own_api_key"],
            "indices": [
                {
                    "names": ["logs-*", "metrics-*", "traces-*", "synthetics-*"],
                    "privileges": ["write", "create_index", "auto_configure"],
                }
            ],
        },
    ),
    "elastic/kibana": _account(
        "elastic/kibana",
        {
            **role_mod.RESERVED_ROLES["kibana_system"].to_dict(transient=False),
            "metadata": {},
        },
    ),
}


def user(principal: str) -> User:
    return User(
        principal, roles=[], full_name=f"Service account - {principal}", metadata={"_elastic_service_account": True}
    )


@dataclass(frozen=True)
class TokenId:
    account: str  # namespace/service
    name: str

    @property
    def key(self) -> str:
        return f"{self.account}/{self.name}"


def encode(token: TokenId, secret: str) -> str:
    return base64.b64encode(PREFIX + f"{token.key}:{secret}".encode()).decode().rstrip("=")


def decode(credential: str) -> tuple[TokenId, str] | None:
    """The token id and secret of a service-token credential, or None when it is not one."""
    if not credential.startswith(_ENCODED_PREFIX):
        return None  # not even its first bytes: most bearer credentials are access tokens, told apart here
    try:
        raw = base64.b64decode(credential + "=" * (-len(credential) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(PREFIX):
        return None
    try:
        text = raw[len(PREFIX) :].decode()
    except UnicodeDecodeError:
        return None
    qualified, sep, secret = text.partition(":")
    parts = qualified.split("/")
    if not sep or len(parts) != 3:
        return None
    return TokenId(f"{parts[0]}/{parts[1]}", parts[2]), secret
