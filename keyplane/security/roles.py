"""Role descriptors: parsing with Elasticsearch's messages, validation, and the display form.

The same descriptor shape is used by the role API (with ``description``, without ``restriction``)
and by API keys (the other way round).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from keyplane import jsontext
from keyplane.errors import InvalidArgument, KeyplaneError, ParseError, ValidationError
from keyplane.json_kinds import token_kind
from keyplane.security import dls_query, global_privileges
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
# The only cluster privileges a role may grant on remote clusters (RemoteClusterPermissions).
REMOTE_CLUSTER_PRIVILEGES = ("monitor_enrich", "monitor_stats")
# Elasticsearch's workflows (WorkflowResolver); a restriction names some of them.
WORKFLOWS = ("search_application_query",)
_FAILURE_STORE_PRIVILEGES = {"read_failure_store", "manage_failure_store"}


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
class RemoteIndicesPrivileges(IndicesPrivileges):
    """Index privileges on the indices of remote clusters (cross-cluster search)."""

    clusters: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "clusters": self.clusters}


@dataclass
class RemoteClusterPrivileges:
    """Cluster privileges on remote clusters (``monitor_enrich``, ``monitor_stats``)."""

    privileges: list[str]
    clusters: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"privileges": self.privileges, "clusters": self.clusters}


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
    # Global privileges in canonical form (see keyplane.security.global_privileges).
    global_: dict[str, Any] = field(default_factory=dict)
    remote_indices: list[RemoteIndicesPrivileges] = field(default_factory=list)
    remote_cluster: list[RemoteClusterPrivileges] = field(default_factory=list)
    restriction: dict[str, Any] | None = None  # {"workflows": [...]}, API keys only
    description: str | None = None

    def to_dict(self, *, transient: bool = True) -> dict[str, Any]:
        """The display form, in Elasticsearch's key order."""
        out: dict[str, Any] = {"cluster": self.cluster}
        if self.global_:
            out["global"] = global_privileges.display(self.global_)
        out["indices"] = [i.to_dict() for i in self.indices]
        out["applications"] = [a.to_dict() for a in self.applications]
        out["run_as"] = self.run_as
        out["metadata"] = self.metadata
        if transient:
            out["transient_metadata"] = {"enabled": True}
        if self.remote_indices:
            out["remote_indices"] = [r.to_dict() for r in self.remote_indices]
        if self.remote_cluster:
            out["remote_cluster"] = [r.to_dict() for r in self.remote_cluster]
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


def _parse_indices(role: str, value: Any, remote: bool = False) -> list[Any]:
    what = "remote indices privileges " if remote else "indices privileges "
    if not isinstance(value, list):
        raise ParseError(f"failed to parse {what}for role [{role}]. expected field [indices] value to be an array")
    parsed: list[Any] = []
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
            query = jsontext.dumps(query).decode()
        ari = entry.get("allow_restricted_indices", False)
        if not isinstance(ari, bool):
            raise ParseError(
                f"failed to parse {what}for role [{role}]. expected field [allow_restricted_indices] "
                f"value to be a boolean, but found [{token_kind(ari)}] instead"
            )
        if not remote:
            parsed.append(IndicesPrivileges(names, privileges, field_security, query, ari))
            continue
        clusters = _strings(role, "clusters", entry["clusters"], what)
        if not clusters:
            raise InvalidArgument(
                "the [remote_indices] sub-field [clusters] must refer to at least one cluster alias or cluster alias "
                "pattern"
            )
        parsed.append(RemoteIndicesPrivileges(names, privileges, field_security, query, ari, clusters))
    return parsed


def _java_list(values: list[str]) -> str:
    return "[" + ", ".join(values) + "]"


def _parse_remote_cluster(role: str, value: Any) -> list[RemoteClusterPrivileges]:
    what = f"failed to parse remote_cluster for role [{role}]."
    if not isinstance(value, list):
        raise ParseError(
            f"{what} expected field [remote_cluster] value to be an array, but found [{token_kind(value)}] instead"
        )
    groups = []
    for entry in value:
        if not isinstance(entry, dict):
            raise ParseError(
                f"{what} expected field [remote_cluster] value to be an array of objects, but found an array "
                f"element of type [{token_kind(entry)}]"
            )
        for key in entry:
            if key not in ("privileges", "clusters"):
                raise ParseError(f"{what} unexpected field [{key}]")
        has_privileges, has_clusters = entry.get("privileges") is not None, entry.get("clusters") is not None
        if has_privileges and not has_clusters:
            raise ParseError(f"{what} [clusters] must be defined when [privileges] are defined")
        if has_clusters and not has_privileges:
            raise ParseError(f"{what} [privileges] must be defined when [clusters] are defined")
        if not has_privileges:
            raise InvalidArgument("remote cluster groups must not be null or empty")
        privileges = _strings(role, "privileges", entry["privileges"], "remote_cluster ")
        clusters = _strings(role, "clusters", entry["clusters"], "remote_cluster ")
        if any(p.lower() not in REMOTE_CLUSTER_PRIVILEGES for p in privileges):
            raise ParseError(
                f"{what} {_java_list(list(REMOTE_CLUSTER_PRIVILEGES))} are the only values allowed for [privileges] "
                f"within [remote_cluster]. Found {_java_list(privileges)}"
            )
        if not privileges or not clusters:
            raise InvalidArgument("remote cluster groups must not be null or empty")
        if any(not c.strip() for c in clusters):
            raise InvalidArgument(
                f"remote_cluster clusters aliases must contain valid non-empty, non-null values {_java_list(clusters)}"
            )
        groups.append(RemoteClusterPrivileges(privileges, clusters))
    return groups


def _parse_restriction(role: str, value: Any) -> dict[str, Any] | None:
    what = f"failed to parse restriction for role [{role}]."
    if not isinstance(value, dict):
        raise ParseError(f"{what} expected field [restriction] value to be an object, but found [{token_kind(value)}]")
    for key in value:
        if key != "workflows":
            raise ParseError(f"{what} unexpected field [{key}]")
    if "workflows" not in value:
        return None  # an empty restriction restricts nothing
    workflows = value["workflows"]
    if workflows is None:
        raise ParseError(
            f"{what} could not parse [workflows] field. expected a string array but found null value instead"
        )
    workflows = _strings(role, "workflows", workflows, "restriction ")
    if not workflows:
        raise ParseError(f"{what} [workflows] cannot be an empty array")
    return {"workflows": workflows}


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


def parse(name: str, data: Any, *, allow_description: bool = True, allow_restriction: bool = True) -> RoleDescriptor:
    """Parse a role descriptor body (structure only; see :func:`validate` for names).

    Roles take a ``description`` but no ``restriction``; API keys the other way round. Stored
    descriptors are read with both allowed.
    """
    if not isinstance(data, dict):
        raise ParseError(f"failed to parse role [{name}]. expected an object but found [{token_kind(data)}] instead")
    rd = RoleDescriptor(name)
    for key, value in data.items():
        refused = (key == "description" and not allow_description) or (key == "restriction" and not allow_restriction)
        if key not in ROLE_FIELDS or refused:
            raise ParseError(f"failed to parse role [{name}]. unexpected field [{key}]")
        if key == "cluster":
            rd.cluster = _strings(name, key, value)
        elif key in ("indices", "index"):
            rd.indices = _parse_indices(name, value)
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
            rd.global_ = global_privileges.parse(value)
        elif key == "remote_indices":
            rd.remote_indices = _parse_indices(name, value, remote=True)
        elif key == "remote_cluster":
            rd.remote_cluster = _parse_remote_cluster(name, value)
        elif key == "restriction":
            rd.restriction = _parse_restriction(name, value)
        elif key == "description":
            if value is not None and not isinstance(value, str):
                raise ParseError(f"failed to parse role [{name}]. expected field [description] value to be a string")
            rd.description = value
    return rd


_APP_PREFIX = re.compile(r"[a-z][A-Za-z0-9]*")
_INVALID_FILENAME_CHARS = '\\/*?"<>| ,'


def application_name_message(application: str) -> str | None:
    """Elasticsearch's check of an application name or trailing-wildcard pattern (ApplicationPrivilege)."""
    if not application:
        return "Application names cannot be blank"
    asterisk = application.find("*")
    if application == "*":
        return None
    if asterisk != -1 and asterisk != len(application) - 1:
        return f"Application name patterns only support trailing wildcards (found '{application}')"
    if any(c.isspace() for c in application):
        return f"Application names may not contain whitespace (found '{application}')"
    prefix, sep, suffix = _split_name(application)
    if prefix.endswith("*"):
        prefix = prefix[:-1]
    if not _APP_PREFIX.fullmatch(prefix):
        return f"An application name prefix must match the pattern ^[a-z][A-Za-z0-9]*$ (found '{prefix}')"
    if len(prefix) < 3 and asterisk == -1:
        return f"An application name prefix must be at least 3 characters long (found '{prefix}')"
    if sep:
        if suffix.endswith("*"):
            suffix = suffix[:-1]
        if any(c in _INVALID_FILENAME_CHARS for c in suffix):
            return (
                f"An application name suffix may not contain any of the characters '{_INVALID_FILENAME_CHARS}' "
                f"(found '{suffix}')"
            )
    return None


def _split_name(application: str) -> tuple[str, str, str]:
    """Prefix, separator and suffix around the first ``-`` or ``_``."""
    match = re.search(r"[_-]", application)
    if match is None:
        return application, "", ""
    return application[: match.start()], match.group(), application[match.end() :]


def _index_messages(privileges: list[str]) -> list[str]:
    return [privs.unknown_index_privilege_message(n) for n in privileges if not privs.index_privilege_known(n)]


def validation_messages(
    rd: RoleDescriptor, *, metadata_message: str = "metadata keys may not start with [_]"
) -> list[str]:
    """Elasticsearch's request-level checks over a parsed descriptor (RoleDescriptorRequestValidator)."""
    messages: list[str] = []
    for name in rd.cluster:
        if privs.cluster_privilege(name) is None:
            messages.append(privs.unknown_cluster_privilege_message(name))
    for group in rd.indices:
        messages += _index_messages(group.privileges)
    for remote in rd.remote_indices:
        if "" in remote.clusters:
            messages.append("remote index cluster alias cannot be an empty string")
        unknown = _index_messages(remote.privileges)
        messages += unknown
        if not unknown and _FAILURE_STORE_PRIVILEGES.intersection(remote.privileges):
            messages.append("remote index privileges cannot contain privileges that grant access to the failure store")
    for app in rd.applications:
        if not app.application:
            messages.append("Application privileges must refer to at least one application")
        elif (problem := application_name_message(app.application)) is not None:
            messages.append(problem)
        for name in app.privileges:
            if not all("!" <= c <= "~" for c in name):
                messages.append(
                    f"Application privilege names and actions must match the pattern ^\\p{{Graph}}*$ (found '{name}')"
                )
        if not app.resources:
            messages.append("Application privileges must refer to at least one resource")
    if any(k.startswith("_") for k in rd.metadata):
        messages.append(metadata_message)
    for workflow in (rd.restriction or {}).get("workflows", []):
        if workflow.lower().strip() not in WORKFLOWS:
            messages.append(
                f"Unknown workflow [{workflow}]. A workflow must be one of the predefined workflow names "
                f"[{','.join(WORKFLOWS)}]."
            )
    if rd.description is not None and len(rd.description) > 1000:
        messages.append("Role description must be less than 1000 characters.")
    return messages


def validate_queries(rd: RoleDescriptor) -> None:
    """Refuse document-level security queries Elasticsearch cannot run as role queries (ParseError)."""
    dls_query.validate([(g.names, g.query) for g in rd.indices])


def validate_name(name: str) -> list[str]:
    if not (1 <= len(name) <= 507) or name != name.strip() or not all(" " <= c <= "~" for c in name):
        return [
            "Role names must be at least 1 and no more than 507 characters. They can contain alphanumeric "
            "characters (a-z, A-Z, 0-9), spaces, punctuation, and printable symbols in the Basic Latin (ASCII) "
            "block. Leading or trailing whitespace is not allowed."
        ]
    return []


def parse_and_validate(name: str, data: Any, *, check_queries: bool = True) -> RoleDescriptor:
    """A role as the role API takes it: parsed, validated, its queries checked."""
    rd = parse(name, data, allow_restriction=False)
    messages = validate_name(name) + validation_messages(rd)
    if messages:
        raise ValidationError(*messages)
    if check_queries:
        validate_queries(rd)
    return rd


def parse_stored(name: str, data: Any) -> RoleDescriptor:
    """A stored descriptor. One written before a field was checked as strictly as now loses that
    field (granting less, never more) instead of failing every request that reads it."""
    try:
        return parse(name, data)
    except (ParseError, InvalidArgument):
        if not isinstance(data, dict):
            raise
    kept = {}
    for key, value in data.items():
        try:
            parse(name, {key: value})
        except (ParseError, InvalidArgument):
            continue
        kept[key] = value
    rd = parse(name, kept)
    if "restriction" in data and "restriction" not in kept and isinstance(data["restriction"], dict):
        rd.restriction = data["restriction"]  # a restriction only narrows: keep it as written
    return rd


def from_stored(name: str, doc: str | bytes) -> RoleDescriptor:
    return parse_stored(name, orjson.loads(doc))


def to_stored(rd: RoleDescriptor) -> str:
    return jsontext.dumps(rd.to_dict(transient=False)).decode()


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


# -- the role API's rules -------------------------------------------------------------------------


def check_writable(name: str) -> None:
    if is_reserved(name):
        raise ValidationError(f"Role [{name}] is reserved and may not be used.")


def check_deletable(name: str) -> None:
    if is_reserved(name):
        raise InvalidArgument(f"role [{name}] is reserved and cannot be deleted")


def parsable(roles: dict[str, Any]) -> list[RoleDescriptor]:
    """The roles of a bulk put that parse: what its authorization looks at (the others fail on their own)."""
    out = []
    for name, descriptor in roles.items():
        try:
            out.append(parse(name, descriptor, allow_restriction=False))
        except KeyplaneError:
            continue
    return out


_QUERYABLE = frozenset(
    {
        "name",
        "description",
        "applications.application",
        "applications.resources",
        "applications.privileges",
        "cluster",
        "run_as",
    }
)


def queryable_field(name: str) -> str | None:
    """The role field a query may name, or None (index privileges and such are not queryable)."""
    return name if name in _QUERYABLE or name.startswith("metadata.") else None


def query_record(rd: RoleDescriptor) -> dict[str, Any]:
    """A stored role as the role query matches and returns it: its display form, named."""
    return {"name": rd.name, **rd.to_dict()}
