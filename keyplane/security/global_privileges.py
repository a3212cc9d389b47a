"""Global (configurable) cluster privileges: cluster privileges that look at the request.

A role's ``global`` object may hold, as in Elasticsearch (ConfigurableClusterPrivileges):

* ``{"application": {"manage": {"applications": [...]}}}``: the application-privilege APIs
  (get, put, delete) for the named applications (wildcards allowed; a request naming no
  application needs ``*``);
* ``{"profile": {"write": {"applications": [...]}}}``: updating the ``labels``/``data`` of any
  user profile, for these top-level application keys;
* ``{"role": {"manage": {"indices": [{"names": [...], "privileges": [...]}]}}}``: managing roles
  that grant only index privileges within these patterns;
* ``{"data_source": [{"names": [...], "privileges": [...]}]}`` (Elasticsearch 9.5): privileges on
  ES|QL data sources by name (``create``, ``delete``, ``read``, ``read_metadata``, ``manage``).
  Keyplane serves no data source API: they are kept, shown and checked, and grant nothing here.

The canonical form kept in a descriptor is that object with only the privileges present.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from keyplane.errors import InvalidArgument, ParseError
from keyplane.json_kinds import token_kind
from keyplane.security import privileges as privs

CATEGORIES = ("application", "profile", "role")
DATA_SOURCE = "data_source"
PARSED_CATEGORIES = (*CATEGORIES, DATA_SOURCE)
_KIND = {"application": "manage", "profile": "write", "role": "manage"}
# manage is every other data source privilege.
DATA_SOURCE_PRIVILEGES = ("create", "delete", "read", "read_metadata", "manage")

PRIVILEGE_ACTIONS = frozenset("cluster:admin/xpack/security/privilege/" + verb for verb in ("get", "put", "delete"))
PROFILE_DATA_ACTION = "cluster:admin/xpack/security/profile/put/data"
ROLE_ACTIONS = frozenset(
    "cluster:admin/xpack/security/role/" + verb for verb in ("put", "bulk_put", "delete", "bulk_delete")
)


def _fail(message: str) -> ParseError:
    return ParseError(f"failed to parse privilege. {message}")


def _expected(expected: str, value: Any) -> ParseError:
    return _fail(f"expected [{expected}] but found [{token_kind(value)}] instead")


def _field(expected: str, found: str) -> ParseError:
    return _fail(f"expected field name [{expected}] but found [{found}] instead")


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise _expected("START_ARRAY", value)
    for item in value:
        if not isinstance(item, str):
            raise _expected("VALUE_STRING", item)
    return list(value)


def _single(body: Any, name: str) -> Any:
    """The value of the one field ``name`` an object must hold."""
    if not isinstance(body, dict):
        raise _expected("START_OBJECT", body)
    if not body:
        raise _fail("expected [FIELD_NAME] but found [END_OBJECT] instead")
    first = next(iter(body))
    if first != name:
        raise _field(name, first)
    if len(body) > 1:
        raise _fail("expected [END_OBJECT] but found [FIELD_NAME] instead")
    return body[name]


def _group_entries(value: Any) -> Iterator[dict[str, Any]]:
    """The objects of a ``[{names, privileges}, ...]`` array in order, each refused at once if it has
    another shape or field."""
    if not isinstance(value, list):
        raise _expected("START_ARRAY", value)
    for entry in value:
        if not isinstance(entry, dict):
            raise _expected("START_OBJECT", entry)
        for key in entry:
            if key not in ("names", "privileges"):
                raise _fail(f"expected one of [names, privileges] but found [{key}] instead")
        yield entry


def _index_groups(value: Any) -> list[dict[str, list[str]]]:
    groups = []
    for entry in _group_entries(value):
        if len(entry) < 2:
            raise _fail("expected [FIELD_NAME] but found [END_OBJECT] instead")
        names, privileges = _strings(entry["names"]), _strings(entry["privileges"])
        if not names:
            raise InvalidArgument("Indices privileges must refer to at least one index name or index name pattern")
        if not privileges:
            raise InvalidArgument("Indices privileges must define at least one privilege")
        for name in privileges:
            if not privs.index_privilege_known(name):
                raise InvalidArgument(privs.unknown_index_privilege_message(name))
        groups.append({"names": names, "privileges": privileges})
    return groups


def _data_source_groups(value: Any) -> list[dict[str, list[str]]]:
    """``data_source`` entries: the same ``{names, privileges}`` shape as ``role.manage`` indices."""
    groups = []
    for entry in _group_entries(value):
        for required in ("names", "privileges"):
            if required not in entry:
                raise _fail(f"missing required field [{required}] in [data_source] entry")
        names, privileges = _strings(entry["names"]), _strings(entry["privileges"])
        if not names:
            raise InvalidArgument("Data source privileges must refer to at least one data source name or pattern")
        if not privileges:
            raise InvalidArgument("Data source privileges must define at least one privilege")
        for name in privileges:
            if name not in DATA_SOURCE_PRIVILEGES:
                raise InvalidArgument(
                    f"unknown data source privilege [{name}]. a privilege must be one of "
                    f"[{', '.join(DATA_SOURCE_PRIVILEGES)}]"
                )
        groups.append({"names": names, "privileges": privileges})
    return groups


def parse(value: Any) -> dict[str, Any]:
    """The canonical form of a ``global`` object; Elasticsearch's messages for what it refuses."""
    if not isinstance(value, dict):
        raise _expected("START_OBJECT", value)
    out: dict[str, Any] = {}
    for category, body in value.items():
        if category == DATA_SOURCE:
            groups = _data_source_groups(body)
            if groups:
                out[DATA_SOURCE] = out.get(DATA_SOURCE, []) + groups
            continue
        if category not in CATEGORIES:
            raise _fail(f"expected one of [{', '.join(CATEGORIES)}] but found [{category}] instead")
        if not isinstance(body, dict):
            raise _expected("START_OBJECT", body)
        kind = _KIND[category]
        for name, inner in body.items():
            if name != kind:
                raise _field(kind, name)
            if category == "role":
                out[category] = {kind: {"indices": _index_groups(_single(inner, "indices"))}}
            else:
                out[category] = {kind: {"applications": _strings(_single(inner, "applications"))}}
    return out


def display(canonical: dict[str, Any]) -> dict[str, Any]:
    """How a role shows ``global``: every category, empty ones included, when any privilege is set;
    ``data_source`` (optional in Elasticsearch's response) only when it holds entries."""
    out: dict[str, Any] = {category: canonical.get(category, {}) for category in CATEGORIES}
    if DATA_SOURCE in canonical:
        out[DATA_SOURCE] = canonical[DATA_SOURCE]
    return out


def listed(canonical: dict[str, Any]) -> list[tuple[str, Any]]:
    """Each privilege on its own, as ``GET /_security/user/_privileges`` lists them: (category, privilege)."""
    return [(category, canonical[category]) for category in PARSED_CATEGORIES if category in canonical]


def _matches(pattern: str, name: str) -> bool:
    if len(pattern) > 1 and pattern.startswith("/") and pattern.endswith("/"):
        try:
            return re.fullmatch(pattern[1:-1], name) is not None
        except re.error:
            return False
    return privs.glob_match(pattern, name)


def _covers(patterns: list[str], names: Iterable[str], *, none_needs_star: bool) -> bool:
    names = list(names)
    if not names:
        return "*" in patterns if none_needs_star else True
    return all(any(_matches(p, n) for p in patterns) for n in names)


def grants_applications(canonical: dict[str, Any], action: str, applications: Iterable[str]) -> bool:
    """Whether a global privilege allows ``action`` over these applications (privileges or profile data)."""
    if action in PRIVILEGE_ACTIONS and "application" in canonical:
        patterns = canonical["application"]["manage"]["applications"]
        return _covers(patterns, applications, none_needs_star=True)
    if action == PROFILE_DATA_ACTION and "profile" in canonical:
        patterns = canonical["profile"]["write"]["applications"]
        return _covers(patterns, applications, none_needs_star=False)
    return False


def role_index_groups(canonical: dict[str, Any]) -> list[dict[str, list[str]]]:
    return list(canonical.get("role", {}).get("manage", {}).get("indices", []))
