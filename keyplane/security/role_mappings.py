"""Role mappings: which roles users of external realms (LDAP, SAML, PKI, ...) receive.

Keyplane's realms are the native and reserved ones, to which Elasticsearch never applies role
mappings, so mappings are kept and served exactly as Elasticsearch keeps them, for the tools that
manage them, and grant nothing here.
"""

from __future__ import annotations

from typing import Any

from keyplane.errors import ParseError, ValidationError
from keyplane.limits import check_id

DOC_ID_PREFIX = "role-mapping_"

_FIELDS = {"enabled", "roles", "role_templates", "rules", "metadata", "run_as"}
_RULE_KINDS = {"field", "any", "all", "except"}


def _check_rule(root: Any, name: str) -> None:
    # Iterative: rules may nest as deep as the body parser allows (1000 levels).
    pending = [root]
    while pending:
        rule = pending.pop()
        if not isinstance(rule, dict) or len(rule) != 1:
            raise ParseError(f"failed to parse rules expression for role-mapping [{name}]. expected a single field")
        kind, value = next(iter(rule.items()))
        if kind not in _RULE_KINDS:
            raise ParseError(f"failed to parse rules expression for role-mapping [{name}]. unexpected field [{kind}]")
        if kind in ("any", "all"):
            if not isinstance(value, list):
                raise ParseError(f"failed to parse rules expression for role-mapping [{name}]. [{kind}] needs an array")
            pending.extend(reversed(value))
        elif kind == "except":
            pending.append(value)
        elif not isinstance(value, dict) or not value:
            raise ParseError(f"failed to parse rules expression for role-mapping [{name}]. [field] needs an object")


def parse(name: str, body: Any) -> dict[str, Any]:
    """The stored form of a role mapping, in Elasticsearch's key order."""
    if not isinstance(body, dict):
        raise ParseError(f"failed to parse role-mapping [{name}]. expected an object")
    check_id(DOC_ID_PREFIX + name)  # the mapping's document id in Elasticsearch's security index
    for key in body:
        if key not in _FIELDS:
            raise ParseError(f"failed to parse role-mapping [{name}]. unexpected field [{key}]")
    messages = []
    roles, templates = body.get("roles"), body.get("role_templates")
    if roles is None and templates is None:
        messages.append("role-mapping requires one of [roles] or [role_templates]")
    if roles is not None and templates is not None:
        messages.append("role-mapping cannot have both [roles] and [role_templates]")
    if "rules" not in body:
        messages.append("role-mapping rules are missing")
    if not isinstance(body.get("enabled", True), bool):
        messages.append("role-mapping [enabled] must be a boolean")
    metadata = body.get("metadata", {})
    if not isinstance(metadata, dict) or any(k.startswith("_") for k in metadata):
        messages.append("metadata keys may not start with [_]")
    if messages:
        raise ValidationError(*messages)
    _check_rule(body["rules"], name)
    if roles is not None and (not isinstance(roles, list) or not all(isinstance(x, str) for x in roles)):
        raise ParseError(f"failed to parse role-mapping [{name}]. [roles] must be an array of strings")
    out: dict[str, Any] = {"enabled": body.get("enabled", True)}
    if roles is not None:
        out["roles"] = roles
    if templates is not None:
        out["role_templates"] = templates
    out["rules"] = body["rules"]
    out["metadata"] = metadata
    return out
