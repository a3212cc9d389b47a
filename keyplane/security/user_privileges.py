"""What ``GET /_security/user/_privileges`` lists: what a user's roles grant, merged.

Elasticsearch builds one role out of the user's descriptors before listing it, so index groups
naming the same set of indices (with the same ``allow_restricted_indices``) become one entry:
their privileges are united and their field and document rules are listed side by side
(``field_security`` and ``query`` are arrays here); a group without such a rule lifts it for
the whole entry, since it grants every field or document. Groups granting only ``none`` are
left out. Names and privileges come sorted; global
privileges come one each; ``remote_indices`` and ``remote_cluster`` are listed only when granted
(the edge, ``keyplane.api.privileges``, shows this typed value as Elasticsearch's body).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from keyplane.security import global_privileges
from keyplane.security.roles import (
    ApplicationPrivileges,
    IndicesPrivileges,
    RemoteClusterPrivileges,
    RemoteIndicesPrivileges,
    RoleDescriptor,
)

T = TypeVar("T")


@dataclass(frozen=True)
class MergedIndices:
    """One entry of merged index privileges."""

    names: list[str]
    privileges: list[str]
    field_security: list[dict[str, list[str]]]  # empty: some group grants every field
    query: list[str]  # empty: some group grants every document
    allow_restricted_indices: bool
    clusters: list[str] | None = None  # remote index privileges only


@dataclass(frozen=True)
class UserPrivileges:
    cluster: list[str]
    global_: list[tuple[str, Any]]  # (category, privilege) of each global privilege, as listed
    indices: list[MergedIndices]
    applications: list[ApplicationPrivileges]
    run_as: list[str]
    remote_indices: list[MergedIndices]
    remote_cluster: list[RemoteClusterPrivileges]


def _unique(items: Iterable[T]) -> list[T]:
    out: list[T] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def _field_security(fls: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
    if fls is None:
        return None
    shown = {k: fls[k] for k in ("grant", "except") if fls.get(k)}
    return shown or None


def _merged(
    groups: Iterable[IndicesPrivileges], key_extra: Callable[[IndicesPrivileges], tuple[str, ...]] | None = None
) -> list[MergedIndices]:
    merged: dict[Any, dict[str, Any]] = {}
    for group in groups:
        if [p.lower() for p in group.privileges] == ["none"]:
            continue
        key = (frozenset(group.names), group.allow_restricted_indices, key_extra(group) if key_extra else None)
        entry = merged.setdefault(
            key,
            {"names": set(), "privileges": set(), "fls": [], "queries": [], "ari": group.allow_restricted_indices},
        )
        entry["names"].update(group.names)
        entry["privileges"].update(group.privileges)
        fls = _field_security(group.field_security)
        # None once any group of the entry has no rule of that kind.
        entry["fls"] = None if fls is None or entry["fls"] is None else entry["fls"] + [fls]
        queries = entry["queries"]
        entry["queries"] = None if group.query is None or queries is None else queries + [group.query]
        if key_extra:
            entry["clusters"] = sorted(set(key_extra(group)))
    return [
        MergedIndices(
            names=sorted(entry["names"]),
            privileges=sorted(entry["privileges"]),
            field_security=_unique(entry["fls"] or []),
            query=_unique(entry["queries"] or []),
            allow_restricted_indices=entry["ari"],
            clusters=entry.get("clusters"),
        )
        for entry in merged.values()
    ]


def _clusters(group: IndicesPrivileges) -> tuple[str, ...]:
    assert isinstance(group, RemoteIndicesPrivileges)
    return tuple(sorted(set(group.clusters)))


def user_privileges(descriptors: list[RoleDescriptor]) -> UserPrivileges:
    return UserPrivileges(
        cluster=sorted({n for rd in descriptors for n in rd.cluster}),
        global_=_unique(p for rd in descriptors for p in global_privileges.listed(rd.global_)),
        indices=_merged(g for rd in descriptors for g in rd.indices),
        applications=_unique(a for rd in descriptors for a in rd.applications),
        run_as=sorted({n for rd in descriptors for n in rd.run_as}),
        remote_indices=_merged((g for rd in descriptors for g in rd.remote_indices), _clusters),
        remote_cluster=_unique(g for rd in descriptors for g in rd.remote_cluster),
    )
