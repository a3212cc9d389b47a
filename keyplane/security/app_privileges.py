"""Application privileges: named sets of actions that roles grant on an application's resources.

A privilege is kept as the document Elasticsearch stores, ``{application, name, actions,
metadata}``; this module reads the put privileges body with Elasticsearch's messages.
"""

from __future__ import annotations

import re
from typing import Any

from keyplane.errors import InvalidArgument, ValidationError
from keyplane.limits import id_messages

_APP_NAME = re.compile(r"[a-z][A-Za-z0-9_-]{2,}")
_FIELDS = ("application", "name", "actions", "metadata")


def _actions(app: str, name: str, spec: dict[str, Any], messages: list[str]) -> list[str]:
    actions = spec.get("actions")
    if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
        messages.append(f"application privilege [{app}:{name}] must have at least one action")
        return []
    for action in actions:
        if "/" not in action and "*" not in action and ":" not in action:
            messages.append(f"action [{action}] must contain one of [/*:] in application privilege [{app}:{name}]")
    return actions


def _privilege(app: str, name: str, spec: Any, messages: list[str]) -> dict[str, Any]:
    """One privilege of the body; structural faults raise at once, the rest add to ``messages``."""
    if not isinstance(spec, dict):
        raise InvalidArgument(f"expected an object for privilege [{app}:{name}]")
    for key in spec:
        if key not in _FIELDS:
            raise InvalidArgument(f"failed to parse application privileges. unexpected field [{key}]")
    if spec.get("application", app) != app:
        raise InvalidArgument(
            f"Application privilege [{app}] has application name [{spec['application']}] which does not match"
        )
    if spec.get("name", name) != name:
        raise InvalidArgument(f"Application privilege [{name}] has name [{spec['name']}] which does not match")
    actions = _actions(app, name, spec, messages)
    metadata = spec.get("metadata", {})
    if not isinstance(metadata, dict):
        raise InvalidArgument("[metadata] must be an object")
    if any(k.startswith("_") for k in metadata):
        messages.append("metadata keys may not start with [_]")
    if not _APP_NAME.fullmatch(app):
        messages.append(f"Application names must match the pattern ^[a-z][A-Za-z0-9_-]{{2,}}$ (found '{app}')")
    # Elasticsearch stores each privilege as a document of this id, under the id length limit.
    messages += id_messages(f"application-privilege_{app}:{name}")
    return {"application": app, "name": name, "actions": actions, "metadata": metadata}


def parse_put(body: Any) -> list[dict[str, Any]]:
    """The privileges a put privileges body defines, ``{application: {name: {actions, metadata}}}``.

    Every validation message of every privilege is reported at once, as Elasticsearch does.
    """
    if not isinstance(body, dict):
        raise InvalidArgument("expected an object of applications")
    parsed: list[dict[str, Any]] = []
    messages: list[str] = []
    for app, privileges in body.items():
        if not isinstance(privileges, dict):
            raise InvalidArgument(f"expected an object of privileges for application [{app}]")
        for name, spec in privileges.items():
            parsed.append(_privilege(app, name, spec, messages))
    if messages:
        raise ValidationError(*messages)
    return parsed


def applications_named(body: Any) -> list[str]:
    """The applications a put privileges body names, which its authorization looks at."""
    return list(body) if isinstance(body, dict) else []
