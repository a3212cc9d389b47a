"""Role descriptors: parsing with Elasticsearch's messages, validation, and the display form.

The same descriptor shape is used by the role API and, without ``description``, by API keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from keyplane.errors import ParseError, ValidationError
from keyplane.json_kinds import token_kind
from keyplane.security import privileges as privs

ROLE_FIELDS = {
    "cluster",
    "indices",
    "index",
    "applications",
    "application",
    "run_as",
    "metadata",
    "transient_metadata",
    "global",
    "remote_indices",
    "remote_cluster",
    "restriction",
    "description",
}
_INDEX_FIELDS = {"names", "privileges", "field_security", "query", "allow_restricted_indices"}
_APP_FIELDS = {"application", "privileges", "resources"}


@dataclass
class IndicesPrivileges:
    names: list[str]
    privileges: list[str]
    field_security: dict[str, list[str]] | None = None
    query: str | None = None
    allow_restricted_indices: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"names": self.names, "privileges": self.privileges}
        if self.field_security is not None:
            out["field_security"] = self.field_security
        if self.query is not None:
            out["query"] = self.query
        out["allow_restricted_indices"] = self.allow_restricted_indices
        return out


@dataclass
class ApplicationPrivileges:
    application: str
    privileges: list[str]
    resources: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"application": self.application, "privileges": self.privileges, "resources": self.resources}


@dataclass
class RoleDescriptor:
    name: str
    cluster: list[str] = field(default_factory=list)
    indices: list[IndicesPrivileges] = field(default_factory=list)
    applications: list[ApplicationPrivileges] = field(default_factory=list)
    run_as: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    global_: dict[str, Any] = field(default_factory=dict)
    remote_indices: list[dict[str, Any]] = field(default_factory=list)
    remote_cluster: list[dict[str, Any]] = field(default_factory=list)
    restriction: dict[str, Any] | None = None
    description: str | None = None

    def to_dict(self, *, transient: bool = True) -> dict[str, Any]:
        """The display form, in Elasticsearch's key order."""
        out: dict[str, Any] = {"cluster": self.cluster}
        if self.global_:
            out["global"] = self.global_
        out["indices"] = [i.to_dict() for i in self.indices]
        out["applications"] = [a.to_dict() for a in self.applications]
        out["run_as"] = self.run_as
        out["metadata"] = self.metadata
        if transient:
            out["transient_metadata"] = {"enabled": True}
        if self.remote_indices:
            out["remote_indices"] = self.remote_indices
        if self.remote_cluster:
            out["remote_cluster"] = self.remote_cluster
        if self.restriction is not None:
            out["restriction"] = self.restriction
        if self.description is not None:
            out["description"] = self.description
        return out

    def is_empty(self) -> bool:
        return not (
            self.cluster
            or self.indices
            or self.applications
            or self.run_as
            or self.global_
            or self.remote_indices
            or self.remote_cluster
            or self.metadata
        )


def _strings(role: str, fieldname: str, value: Any, context: str = "") -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    prefix = f"failed to parse {context}for role [{role}]." if context else f"failed to parse role [{role}]."
    raise ParseError(
        f"{prefix} expected field [{fieldname}] value to be a string or an array of strings, "
        f"but found [{token_kind(value)}] instead"
    )


def _parse_indices(role: str, value: Any, remote: bool = False) -> tuple[list[IndicesPrivileges], list[dict]]:
    what = "remote indices privileges " if remote else "indices privileges "
    if not isinstance(value, list):
        raise ParseError(f"failed to parse {what}for role [{role}]. expected field [indices] value to be an array")
    parsed: list[IndicesPrivileges] = []
    raw: list[dict[str, Any]] = []
    for entry in value:
        if not isinstance(entry, dict):
            raise ParseError(
                f"failed to parse {what}for role [{role}]. expected field [indices] value to be an array of "
                f"objects, but found an array element of type [{token_kind(entry)}]"
            )
        allowed = _INDEX_FIELDS | ({"clusters"} if remote else set())
        for key in entry:
            if key not in allowed:
                raise ParseError(f"failed to parse {what}for role [{role}]. unexpected field [{key}]")
        for required in (("clusters",) if remote else ()) + ("names", "privileges"):
            if required not in entry:
                raise ParseError(f"failed to parse {what}for role [{role}]. missing required [{required}] field")
        names = _strings(role, "names", entry["names"], what)
        if not names:
            raise ParseError(f"failed to parse {what}for role [{role}]. [names] cannot be an empty array")
        privileges = _strings(role, "privileges", entry["privileges"], what)
        fls = entry.get("field_security")
        field_security = None
        if fls is not None:
            if not isinstance(fls, dict) or any(k not in ("grant", "except") for k in fls):
                raise ParseError(
                    f"failed to parse {what}for role [{role}]. [field_security] must be an object "
                    "with [grant] and [except] arrays"
                )
            field_security = {k: _strings(role, k, v, what) for k, v in fls.items()}
            field_security.setdefault("grant", [])
        query = entry.get("query")
        if query is not None and not isinstance(query, str):
            if not isinstance(query, dict):
                raise ParseError(f"failed to parse {what}for role [{role}]. expected [query] to be an object or string")
            query = orjson.dumps(query).decode()
        ari = entry.get("allow_restricted_indices", False)
        if not isinstance(ari, bool):
            raise ParseError(
                f"failed to parse {what}for role [{role}]. expected field [allow_restricted_indices] "
                f"value to be a boolean, but found [{token_kind(ari)}] instead"
            )
        item = IndicesPrivileges(names, privileges, field_security, query, ari)
        parsed.append(item)
        if remote:
            raw.append({"clusters": _strings(role, "clusters", entry["clusters"], what), **item.to_dict()})
    return parsed, raw


def _parse_applications(role: str, value: Any) -> list[ApplicationPrivileges]:
    if not isinstance(value, list):
        raise ParseError(f"failed to parse application privileges for role [{role}]. expected an array")
    out = []
    for entry in value:
        if not isinstance(entry, dict):
            raise ParseError(f"failed to parse application privileges for role [{role}]. expected an object")
        for key in entry:
            if key not in _APP_FIELDS:
                raise ParseError(f"failed to parse application privileges for role [{role}]. unexpected field [{key}]")
        for required in ("application", "privileges", "resources"):
            if required not in entry:
                raise ParseError(
                    f"failed to parse application privileges for role [{role}]. missing required [{required}] field"
                )
        application = entry["application"]
        if not isinstance(application, str):
            raise ParseError(
                f"failed to parse application privileges for role [{role}]. "
                "expected field [application] value to be a string"
            )
        out.append(
            ApplicationPrivileges(
                application,
                _strings(role, "privileges", entry["privileges"], "application privileges "),
                _strings(role, "resources", entry["resources"], "application privileges "),
            )
        )
    return out


def parse(name: str, data: Any, *, allow_description: bool = True) -> RoleDescriptor:
    """Parse a role descriptor body (structure only; see :func:`validate` for names)."""
    if not isinstance(data, dict):
        raise ParseError(f"failed to parse role [{name}]. expected an object but found [{token_kind(data)}] instead")
    rd = RoleDescriptor(name)
    for key, value in data.items():
        if key not in ROLE_FIELDS or (key == "description" and not allow_description):
            raise ParseError(f"failed to parse role [{name}]. unexpected field [{key}]")
        if key == "cluster":
            rd.cluster = _strings(name, key, value)
        elif key in ("indices", "index"):
            rd.indices, _ = _parse_indices(name, value)
        elif key in ("applications", "application"):
            rd.applications = _parse_applications(name, value)
        elif key == "run_as":
            rd.run_as = _strings(name, key, value)
        elif key == "metadata":
            if not isinstance(value, dict):
                raise ParseError(f"failed to parse role [{name}]. expected field [metadata] value to be an object")
            rd.metadata = value
        elif key == "transient_metadata":
            if not isinstance(value, dict):
                raise ParseError(f"failed to parse role [{name}]. expected field [transient_metadata] to be an object")
        elif key == "global":
            if not isinstance(value, dict):
                raise ParseError(f"failed to parse role [{name}]. expected field [global] value to be an object")
            rd.global_ = value
        elif key == "remote_indices":
            _, rd.remote_indices = _parse_indices(name, value, remote=True)
        elif key == "remote_cluster":
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise ParseError(f"failed to parse remote_cluster for role [{name}]. expected an array of objects")
            rd.remote_cluster = value
        elif key == "restriction":
            if not isinstance(value, dict):
                raise ParseError(f"failed to parse role [{name}]. expected field [restriction] value to be an object")
            rd.restriction = value
        elif key == "description":
            if value is not None and not isinstance(value, str):
                raise ParseError(f"failed to parse role [{name}]. expected field [description] value to be a string")
            rd.description = value
    return rd


def validation_messages(
    rd: RoleDescriptor, *, metadata_message: str = "metadata keys may not start with [_]"
) -> list[str]:
    """Elasticsearch's request-level checks over a parsed descriptor."""
    messages: list[str] = []
    for name in rd.cluster:
        if privs.cluster_privilege(name) is None:
            messages.append(privs.unknown_cluster_privilege_message(name))
    for group in rd.indices:
        for name in group.privileges:
            if not privs.index_privilege_known(name):
                messages.append(privs.unknown_index_privilege_message(name))
    for app in rd.applications:
        if not app.application:
            messages.append("Application privileges must refer to at least one application")
        if not app.resources:
            messages.append("Application privileges must refer to at least one resource")
    if any(k.startswith("_") for k in rd.metadata):
        messages.append(metadata_message)
    if rd.description is not None and len(rd.description) > 1000:
        messages.append("Role description must be less than 1000 characters.")
    return messages


def validate_name(name: str) -> list[str]:
    if not (1 <= len(name) <= 507) or name != name.strip() or not all(" " <= c <= "~" for c in name):
        return [
            "Role names must be at least 1 and no more than 507 characters. They can contain alphanumeric "
            "characters (a-z, A-Z, 0-9), spaces, punctuation, and printable symbols in the Basic Latin (ASCII) "
            "block. Leading or trailing whitespace is not allowed."
        ]
    return []


def parse_and_validate(name: str, data: Any) -> RoleDescriptor:
    rd = parse(name, data)
    messages = validate_name(name) + validation_messages(rd)
    if messages:
        raise ValidationError(*messages)
    return rd


def from_stored(name: str, doc: str | bytes) -> RoleDescriptor:
    return parse(name, orjson.loads(doc))


def to_stored(rd: RoleDescriptor) -> str:
    return orjson.dumps(rd.to_dict(transient=False)).decode()


# -- built-in roles -------------------------------------------------------------------------------

_RESERVED_META = {"_reserved": True}


def _reserved(name: str, body: dict[str, Any]) -> RoleDescriptor:
    rd = parse(name, body)
    rd.metadata = dict(_RESERVED_META)
    return rd


RESERVED_ROLES: dict[str, RoleDescriptor] = {
    r.name: r
    for r in [
        _reserved(
            "superuser",
            {
                "cluster": ["all"],
                "indices": [
                    {"names": ["*"], "privileges": ["all"], "allow_restricted_indices": True},
                ],
                "applications": [{"application": "*", "privileges": ["*"], "resources": ["*"]}],
                "run_as": ["*"],
            },
        ),
        _reserved(
            "viewer",
            {
                "cluster": [],
                "indices": [{"names": ["*"], "privileges": ["read", "view_index_metadata"]}],
                "applications": [{"application": "kibana-.kibana", "privileges": ["read"], "resources": ["*"]}],
            },
        ),
        _reserved(
            "editor",
            {
                "cluster": [],
                "indices": [
                    {"names": ["observability-annotations"], "privileges": ["read", "view_index_metadata", "write"]},
                    {"names": ["*"], "privileges": ["read", "view_index_metadata"]},
                ],
                "applications": [{"application": "kibana-.kibana", "privileges": ["all"], "resources": ["*"]}],
            },
        ),
        _reserved(
            "kibana_admin",
            {
                "applications": [{"application": "kibana-.kibana", "privileges": ["all"], "resources": ["*"]}],
            },
        ),
        _reserved(
            "kibana_system",
            {
                "cluster": [
                    "monitor",
                    "manage_index_templates",
                    "manage_token",
                    "manage_own_api_key",
                    "grant_api_key",
                    "manage_security",
                    "manage_connector",
                ],
                "indices": [{"names": [".kibana*"], "privileges": ["all"], "allow_restricted_indices": True}],
            },
        ),
        _reserved(
            "monitoring_user",
            {
                "cluster": ["cluster:monitor/main"],
                "indices": [{"names": [".monitoring-*", "metrics-*"], "privileges": ["read", "read_cross_cluster"]}],
            },
        ),
        _reserved("remote_monitoring_agent", {"cluster": ["manage_index_templates", "monitor"]}),
        _reserved("ingest_admin", {"cluster": ["manage_index_templates", "manage_pipeline"]}),
        _reserved("reporting_user", {}),
        _reserved("logstash_system", {"cluster": ["monitor", "cluster:admin/xpack/monitoring/bulk"]}),
        _reserved("beats_system", {"cluster": ["monitor", "cluster:admin/xpack/monitoring/bulk"]}),
        _reserved("apm_system", {"cluster": ["monitor", "cluster:admin/xpack/monitoring/bulk"]}),
        _reserved("enrich_user", {"cluster": ["manage_enrich", "manage_ingest_pipelines", "monitor"]}),
    ]
}


def is_reserved(name: str) -> bool:
    return name in RESERVED_ROLES
