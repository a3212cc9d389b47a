"""The body of ``GET /_security/user/_privileges``: what a user's roles grant, merged.

Elasticsearch builds one role out of the user's descriptors before listing it, so index groups
naming the same set of indices (with the same ``allow_restricted_indices``) become one entry:
their privileges are united and their field and document rules are listed side by side
(``field_security`` and ``query`` are arrays here); a group without such a rule lifts it for
the whole entry, since it grants every field or document. Groups granting only ``none`` are
left out. Names and privileges come sorted; global
privileges come one object each; ``remote_indices`` and ``remote_cluster`` only when granted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from keyplane.security import global_privileges
from keyplane.security.roles import IndicesPrivileges, RemoteIndicesPrivileges, RoleDescriptor


def _unique(items: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def _field_security(fls: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
    if fls is None:
        return None
    shown = {k: fls[k] for k in ("grant", "except") if fls.get(k)}
    return shown or None


def _merged(groups: Iterable[IndicesPrivileges], key_extra: Any = None) -> list[dict[str, Any]]:
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
    out = []
    for entry in merged.values():
        shown: dict[str, Any] = {"names": sorted(entry["names"]), "privileges": sorted(entry["privileges"])}
        if entry["fls"]:
            shown["field_security"] = _unique(entry["fls"])
        if entry["queries"]:
            shown["query"] = _unique(entry["queries"])
        shown["allow_restricted_indices"] = entry["ari"]
        if "clusters" in entry:
            shown["clusters"] = entry["clusters"]
        out.append(shown)
    return out


def _clusters(group: IndicesPrivileges) -> tuple[str, ...]:
    assert isinstance(group, RemoteIndicesPrivileges)
    return tuple(sorted(set(group.clusters)))


def user_privileges_body(descriptors: list[RoleDescriptor]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "cluster": sorted({n for rd in descriptors for n in rd.cluster}),
        "global": _unique(p for rd in descriptors for p in global_privileges.listed(rd.global_)),
        "indices": _merged(g for rd in descriptors for g in rd.indices),
        "applications": _unique(a.to_dict() for rd in descriptors for a in rd.applications),
        "run_as": sorted({n for rd in descriptors for n in rd.run_as}),
    }
    remote_indices = _merged((g for rd in descriptors for g in rd.remote_indices), _clusters)
    if remote_indices:
        body["remote_indices"] = remote_indices
    remote_cluster = _unique(g.to_dict() for rd in descriptors for g in rd.remote_cluster)
    if remote_cluster:
        body["remote_cluster"] = remote_cluster
    return body
