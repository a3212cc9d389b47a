"""``has_privileges``: which of the requested privileges a permission holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keyplane.errors import InvalidArgument, ValidationError
from keyplane.security import privileges as privs
from keyplane.security.permission import ApplicationActions, Permission


@dataclass
class PrivilegeRequest:
    cluster: list[str] = field(default_factory=list)
    index: list[dict[str, Any]] = field(default_factory=list)
    application: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def parse(cls, data: dict[str, Any]) -> PrivilegeRequest:
        cluster = data.get("cluster", [])
        if not isinstance(cluster, list) or not all(isinstance(c, str) for c in cluster):
            raise InvalidArgument("[cluster] must be an array of privilege names")
        raw_index = data.get("index", [])
        if not isinstance(raw_index, list):
            raise InvalidArgument("[index] must be an array")
        index: list[dict[str, Any]] = []
        for entry in raw_index:
            if not isinstance(entry, dict) or "names" not in entry or "privileges" not in entry:
                raise InvalidArgument("[index] entries require [names] and [privileges]")
            names = entry["names"] if isinstance(entry["names"], list) else [entry["names"]]
            index.append(
                {
                    "names": names,
                    "privileges": list(entry["privileges"]),
                    "allow_restricted_indices": bool(entry.get("allow_restricted_indices", False)),
                }
            )
        application = data.get("application", [])
        if not isinstance(application, list) or not all(isinstance(a, dict) for a in application):
            raise InvalidArgument("[application] must be an array of objects")
        request = cls(cluster, index, application)
        if not (cluster or index or application):
            raise ValidationError("must specify at least one privilege")
        for name in cluster:
            if privs.cluster_privilege(name) is None:
                raise InvalidArgument(privs.unknown_cluster_privilege_message(name))
        for entry in index:
            for priv in entry["privileges"]:
                if not privs.index_privilege_known(priv):
                    raise InvalidArgument(privs.unknown_index_privilege_message(priv))
        return request

    @property
    def applications(self) -> list[str]:
        return [str(a.get("application", "")) for a in self.application]


@dataclass
class PrivilegeCheck:
    """Which requested privileges a permission holds, by cluster privilege, index and application resource."""

    cluster: dict[str, bool] = field(default_factory=dict)
    index: dict[str, dict[str, bool]] = field(default_factory=dict)  # index name -> privilege -> held
    application: dict[str, dict[str, dict[str, bool]]] = field(default_factory=dict)  # app -> resource -> privilege

    @property
    def has_all_requested(self) -> bool:
        every = list(self.cluster.values())
        every += [v for per in self.index.values() for v in per.values()]
        every += [v for per in self.application.values() for res in per.values() for v in res.values()]
        return all(every)


def check(perm: Permission, request: PrivilegeRequest, defs: ApplicationActions) -> PrivilegeCheck:
    """What one permission holds of the requested privileges."""
    result = PrivilegeCheck()
    for name in request.cluster:
        result.cluster[name] = perm.has_cluster_privilege(name)
    for entry in request.index:
        for name in entry["names"]:
            per = result.index.setdefault(name, {})
            for priv in entry["privileges"]:
                per[priv] = perm.has_index_privilege(name, priv, entry["allow_restricted_indices"])
    for entry in request.application:
        app = str(entry.get("application", ""))
        per_app = result.application.setdefault(app, {})
        for resource in entry.get("resources", []):
            per_res = per_app.setdefault(resource, {})
            for priv in entry.get("privileges", []):
                per_res[priv] = perm.has_application_privilege(app, resource, priv, defs)
    return result
