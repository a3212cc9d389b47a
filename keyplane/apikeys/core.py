"""API keys: the record, its rules (names, metadata, expiration, cross-cluster access).

Nothing here knows HTTP or SQL. A key's effective permission is its own role descriptors
intersected with ``limited_by``, the owner's roles captured when the key was created or updated.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from keyplane.errors import InvalidArgument
from keyplane.limits import check_flattened
from keyplane.security import roles as role_mod
from keyplane.security.permission import LimitedPermission, Permission
from keyplane.security.roles import IndicesPrivileges, RoleDescriptor

REST = "rest"
CROSS_CLUSTER = "cross_cluster"
# Bumped when the stored form changes; keys of older versions are always rewritten on update.
DOC_VERSION = 1

API_KEY_REALM = {"name": "_es_api_key", "type": "_es_api_key"}

CCS_CLUSTER = ["cross_cluster_search", "monitor_enrich"]
CCR_CLUSTER = ["cross_cluster_replication"]
CCS_INDEX_PRIVILEGES = ["read", "read_cross_cluster", "view_index_metadata"]
CCR_INDEX_PRIVILEGES = ["cross_cluster_replication", "cross_cluster_replication_internal"]


@dataclass
class Creator:
    principal: str
    full_name: str | None
    email: str | None
    metadata: dict[str, Any]
    realm: str
    realm_type: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "principal": self.principal,
            "full_name": self.full_name,
            "email": self.email,
            "metadata": self.metadata,
            "realm": self.realm,
            "realm_type": self.realm_type,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Creator:
        return cls(
            data["principal"],
            data.get("full_name"),
            data.get("email"),
            data.get("metadata") or {},
            data["realm"],
            data.get("realm_type", ""),
        )


@dataclass
class ApiKey:
    id: str
    name: str | None
    type: str
    creation: int
    expiration: int | None
    invalidated: bool
    invalidation: int | None
    hash: str
    creator: Creator
    role_descriptors: list[RoleDescriptor] = field(default_factory=list)
    limited_by: list[RoleDescriptor] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    version: int = DOC_VERSION
    last_used: int | None = None
    seq_no: int = 1
    # Cross-cluster keys only: a pattern the distinguished name of the remote cluster's client
    # certificate must match (Elasticsearch 9.3).
    certificate_identity: str | None = None

    def is_expired(self, now: int) -> bool:
        return self.expiration is not None and self.expiration <= now

    def permission(self) -> Permission:
        if self.type == CROSS_CLUSTER:
            return Permission(self.role_descriptors)
        owner = Permission(self.limited_by)
        if not self.role_descriptors:
            return owner
        return LimitedPermission(Permission(self.role_descriptors), owner)


@dataclass(frozen=True)
class CreatedKey:
    """A key just stored, with the one thing never stored: its secret, shown to the creator once."""

    id: str
    name: str | None
    expiration: int | None
    secret: str


# -- validation ------------------------------------------------------------------------------------


def name_messages(name: str | None) -> list[str]:
    if not name:
        return ["api key name is required"]
    messages = []
    if len(name) > 256:
        messages.append("api key name may not be more than 256 characters long")
    if name[0] <= " " or name[-1] <= " ":
        messages.append("api key name may not begin or end with whitespace")
    if name.startswith("_"):
        messages.append("api key name may not begin with an underscore")
    return messages


def metadata_messages(metadata: dict[str, Any] | None) -> list[str]:
    """Validation messages for metadata; raises ``FlattenedTooDeep`` for metadata the index would refuse.

    Elasticsearch keeps API-key metadata in the ``metadata_flattened`` field of its security index, whose
    depth limit (20) fails the write after validation; every create, grant and update path checks here.
    """
    if metadata and any(k.startswith("_") for k in metadata):
        return ["API key metadata keys may not start with [_]"]
    if metadata:
        check_flattened("metadata_flattened", metadata)
    return []


def descriptor_messages(descriptors: list[RoleDescriptor]) -> list[str]:
    messages: list[str] = []
    for rd in descriptors:
        messages += role_mod.validation_messages(
            rd, metadata_message="role descriptor metadata keys may not start with [_]"
        )
    return messages


def check_certificate_identity(pattern: str | None) -> None:
    """A certificate identity is a regular expression over the certificate's distinguished name."""
    if pattern is None:
        return
    try:
        re.compile(pattern)
    except re.error:
        raise InvalidArgument(f"Invalid certificate_identity format: [{pattern}]. Must be a valid regex.") from None


def check_restrictions(descriptors: list[RoleDescriptor]) -> None:
    restricted = [rd for rd in descriptors if rd.restriction is not None]
    if len(restricted) > 1:
        raise InvalidArgument("more than one role descriptor with restriction is not supported")
    if restricted and len(descriptors) > 1:
        raise InvalidArgument("combining role descriptors with and without restriction is not supported")


def parse_role_descriptors(value: dict[str, Any]) -> list[RoleDescriptor]:
    return [role_mod.parse(name, body, allow_description=False) for name, body in value.items()]


def owner_snapshot(descriptors: list[RoleDescriptor]) -> list[RoleDescriptor]:
    """The owner's roles as stored in ``limited_by``: copies without descriptions.

    Shallow copies: descriptors are never changed once parsed, so the snapshot may share their
    privilege lists (a deep copy of the superuser role was half the CPU of a key update). For the
    same descriptor objects (an owner's resolved roles, kept by the role service) the same copies are
    given again: a creation or update makes none, and keys of one owner share them (cache.py).
    """
    ids = tuple(map(id, descriptors))
    found = _SNAPSHOTS.get(ids)
    # The entry holds the originals, so their ids cannot be reused while it is kept.
    if found is not None and all(a is b for a, b in zip(found[0], descriptors, strict=True)):
        return list(found[1])
    snapshot = tuple(dataclasses.replace(rd, description=None) for rd in descriptors)
    if len(_SNAPSHOTS) >= _MAX_SNAPSHOTS:
        _SNAPSHOTS.clear()
    _SNAPSHOTS[ids] = (tuple(descriptors), snapshot)
    return list(snapshot)


# Owners' role snapshots by the identity of the descriptors they copy (``owner_snapshot``).
_SNAPSHOTS: dict[tuple[int, ...], tuple[tuple[RoleDescriptor, ...], tuple[RoleDescriptor, ...]]] = {}
_MAX_SNAPSHOTS = 256


def is_derivation_allowed(descriptors: list[RoleDescriptor] | None) -> bool:
    """An API key may create keys only with explicit role descriptors that grant nothing."""
    return bool(descriptors) and all(rd.is_empty() for rd in descriptors or [])


# -- cross-cluster access ----------------------------------------------------------------------------


def _uses_dls_fls(group: IndicesPrivileges) -> bool:
    return group.query is not None or group.field_security is not None


def access_messages(search: list[IndicesPrivileges], replication: list[IndicesPrivileges]) -> list[str]:
    """A cross-cluster key needs some access: search, replication or both."""
    if not search and not replication:
        return ["must specify non-empty access for either [search] or [replication]"]
    return []


def cross_cluster_update_messages(
    access: object | None, metadata: dict[str, Any] | None, *, sets_certificate_identity: bool
) -> list[str]:
    """An update of a cross-cluster key must change its access, metadata or certificate identity.

    An expiration alone does not count, as in Elasticsearch, whose message names only the first two.
    """
    if access is None and metadata is None and not sets_certificate_identity:
        return ["must update either [access] or [metadata] for cross-cluster API keys"]
    return []


def descriptor_from_access(search: list[IndicesPrivileges], replication: list[IndicesPrivileges]) -> RoleDescriptor:
    """Translate ``access`` into the single ``cross_cluster`` role descriptor."""
    messages = access_messages(search, replication)
    if messages:
        raise InvalidArgument(messages[0])
    if any(_uses_dls_fls(g) for g in replication):
        raise InvalidArgument("replication does not support document or field level security")
    cluster = (CCS_CLUSTER if search else []) + (CCR_CLUSTER if replication else [])
    indices = [
        IndicesPrivileges(g.names, list(CCS_INDEX_PRIVILEGES), g.field_security, g.query, g.allow_restricted_indices)
        for g in search
    ] + [
        IndicesPrivileges(g.names, list(CCR_INDEX_PRIVILEGES), g.field_security, g.query, g.allow_restricted_indices)
        for g in replication
    ]
    return RoleDescriptor(CROSS_CLUSTER, cluster=cluster, indices=indices)


def access_from_descriptors(descriptors: list[RoleDescriptor]) -> dict[str, Any]:
    """The ``access`` a cross-cluster key was created with, read back from its role descriptor."""
    search: list[dict[str, Any]] = []
    replication: list[dict[str, Any]] = []
    for rd in descriptors:
        for group in rd.indices:
            entry = group.to_dict()
            entry.pop("privileges")
            (search if group.privileges == CCS_INDEX_PRIVILEGES else replication).append(entry)
    out: dict[str, Any] = {}
    if search:
        out["search"] = search
    if replication:
        out["replication"] = replication
    return out


def same_descriptors(a: list[RoleDescriptor], b: list[RoleDescriptor]) -> bool:
    """Set equality of role descriptors, as the noop rule compares them."""
    if len(a) != len(b):
        return False
    key = lambda rd: (rd.name, stored_form(rd))  # noqa: E731
    return sorted(map(key, a)) == sorted(map(key, b))


def stored_form(rd: RoleDescriptor) -> str:
    """``role_mod.to_stored(rd)``, the JSON a key stores the descriptor as, kept by the descriptor's
    identity: descriptors are never changed once parsed, and a key's owner's roles (``owner_snapshot``)
    and the roles of stored keys (shared by every key of one doc) come back on every create and
    update, which wrote them out again each time (3-4 µs for the superuser role, twice per update)."""
    found = _STORED.get(id(rd))
    if found is not None and found[0] is rd:
        return found[1]
    text = role_mod.to_stored(rd)
    if len(_STORED) >= _MAX_STORED:
        _STORED.clear()
    _STORED[id(rd)] = (rd, text)  # the entry holds the descriptor, so its id cannot be reused meanwhile
    return text


_STORED: dict[int, tuple[RoleDescriptor, str]] = {}
_MAX_STORED = 1024
