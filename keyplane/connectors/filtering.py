"""Connector filtering: sync rules and advanced snippets, drafted, validated, then activated.

A connector has one filtering element (domain ``DEFAULT``) holding an ``active`` set of rules, which
syncs use, and a ``draft``. Editing the draft resets its validation to ``edited``; the connector
service validates it; only a ``valid`` draft may become active.

Parsing reads no clock: a rule or snippet whose request leaves out ``created_at`` or ``updated_at``
holds None there, and the update that writes it stamps the time it runs at (:func:`stamped`).
"""

from __future__ import annotations

import copy
from typing import Any

from keyplane.connectors.clock import parse_timestamp
from keyplane.connectors.model import Doc
from keyplane.errors import InvalidArgument, ParseError, StatusError

RULE_CONDITIONS = ("contains", "ends_with", "equals", ">", "<", "regex", "starts_with")
VALIDATION_STATES = ("edited", "invalid", "valid")


# -- rules -----------------------------------------------------------------------------------------------


def default_filtering(stamp: str, order: int = 0) -> list[Doc]:
    rules = {
        "advanced_snippet": {"created_at": stamp, "updated_at": stamp, "value": {}},
        "rules": [default_rule(stamp, order)],
        "validation": {"errors": [], "state": "valid"},
    }
    return [{"active": rules, "domain": "DEFAULT", "draft": copy.deepcopy(rules)}]


def default_rule(stamp: str, order: int) -> Doc:
    """The catch-all rule every rule set ends with: include everything."""
    return {
        "created_at": stamp,
        "field": "_",
        "id": "DEFAULT",
        "order": order,
        "policy": "include",
        "rule": "regex",
        "updated_at": stamp,
        "value": ".*",
    }


def edit_draft(doc: Doc, snippet: Doc | None, rules: list[Doc] | None, stamp: str) -> None:
    """New draft rules and/or advanced snippet, dated ``stamp`` where the request gave no date; the
    draft then waits for validation again."""
    draft = _first_element(doc, stamp)["draft"]
    if snippet is not None:
        draft["advanced_snippet"] = _dated(snippet, stamp)
    if rules is not None:
        draft["rules"] = sort_rules([_dated(r, stamp) for r in rules], stamp)
    draft["validation"] = {"errors": [], "state": "edited"}


def set_draft_validation(doc: Doc, validation: Doc, stamp: str) -> None:
    """The connector service's verdict on the draft."""
    _first_element(doc, stamp)["draft"]["validation"] = validation


def activate_draft(doc: Doc, stamp: str) -> None:
    """The draft becomes the active rule set, once validated."""
    element = _first_element(doc, stamp)
    state = element["draft"]["validation"]["state"]
    if state != "valid":
        raise StatusError(
            "Filtering draft needs to be validated by the connector service before activation. Current filtering "
            f"draft validation state [{state}] is not equal to [valid]."
        )
    element["active"] = element["draft"]


def stamped(elements: list[Doc], stamp: str) -> list[Doc]:
    """Whole filtering elements as parsed, dated ``stamp`` wherever the request gave no date."""
    return [
        {
            "active": _dated_rules_object(element["active"], stamp),
            "domain": element["domain"],
            "draft": _dated_rules_object(element["draft"], stamp),
        }
        for element in elements
    ]


def _dated_rules_object(rules_object: Doc, stamp: str) -> Doc:
    return {
        "advanced_snippet": _dated(rules_object["advanced_snippet"], stamp),
        "rules": [_dated(r, stamp) for r in rules_object["rules"]],
        "validation": rules_object["validation"],
    }


def _dated(part: Doc, stamp: str) -> Doc:
    """A rule or snippet with ``stamp`` for each date its request left out (None), in its key order."""
    return {k: stamp if k in _DATES and v is None else v for k, v in part.items()}


_DATES = ("created_at", "updated_at")


def _first_element(doc: Doc, stamp: str) -> Doc:
    """The connector's (first, DEFAULT-domain) filtering element, created if absent."""
    elements: list[Doc] = doc.get("filtering") or default_filtering(stamp)
    doc["filtering"] = elements
    return elements[0]


def _is_default_rule(rule: Doc) -> bool:
    return (rule["field"], rule["id"], rule["policy"], rule["rule"], rule["value"]) == (
        "_",
        "DEFAULT",
        "include",
        "regex",
        ".*",
    )


def sort_rules(rules: list[Doc], stamp: str) -> list[Doc]:
    """Rules ordered by ``order`` with the default rule last, numbered after the others."""
    defaults = [r for r in rules if _is_default_rule(r)]
    others = sorted((r for r in rules if not _is_default_rule(r)), key=lambda r: r["order"])
    created = defaults[0]["created_at"] if defaults else stamp
    order = others[-1]["order"] + 1 if others else 0
    rule = default_rule(created, order)
    rule["updated_at"] = created
    return others + [rule]


# -- parsing ---------------------------------------------------------------------------------------------


def parse_filtering(raw: Any) -> list[Doc]:
    """A whole ``filtering`` array; dates it leaves out are None until :func:`stamped`."""
    if not isinstance(raw, list):
        raise ParseError("[filtering] must be an array")
    return [parse_filtering_element(e) for e in raw]


def parse_rules(raw: Any) -> list[Doc]:
    if not isinstance(raw, list):
        raise ParseError("[rules] must be an array")
    return [parse_rule(r) for r in raw]


def _date(raw: Doc, field: str) -> str | None:
    """A date the request gives, re-printed; None when it gives none (the update stamps it)."""
    return parse_timestamp(raw[field], field) if raw.get(field) else None


def parse_rule(raw: Any) -> Doc:
    if not isinstance(raw, dict):
        raise ParseError("[filtering_rule] expected an object")
    for key in ("field", "id", "order", "policy", "rule", "value"):
        if key not in raw:
            raise ParseError(f"[filtering_rule] failed to parse: Required [{key}]")
    policy = raw["policy"]
    if not isinstance(policy, str) or policy.lower() not in ("include", "exclude"):
        raise InvalidArgument(f"Unknown FilteringPolicy [{policy}].")
    if raw["rule"] not in RULE_CONDITIONS:
        raise InvalidArgument(f"Unknown FilteringRuleCondition [{raw['rule']}].")
    order = raw["order"]
    if isinstance(order, bool) or not isinstance(order, int):
        raise ParseError("[filtering_rule] failed to parse field [order]")
    return {
        "created_at": _date(raw, "created_at"),
        "field": str(raw["field"]),
        "id": str(raw["id"]),
        "order": order,
        "policy": policy.lower(),
        "rule": raw["rule"],
        "updated_at": _date(raw, "updated_at"),
        "value": str(raw["value"]),
    }


def parse_snippet(raw: Any) -> Doc:
    if not isinstance(raw, dict) or "value" not in raw:
        raise ParseError("[filtering_advanced_snippet] failed to parse: Required [value]")
    if not isinstance(raw["value"], (dict, list)):
        raise ParseError("[filtering_advanced_snippet] failed to parse field [value]: must be an object or an array")
    return {
        "created_at": _date(raw, "created_at"),
        "updated_at": _date(raw, "updated_at"),
        "value": raw["value"],
    }


def parse_validation(raw: Any) -> Doc:
    if not isinstance(raw, dict) or "state" not in raw or "errors" not in raw:
        missing = "state" if not isinstance(raw, dict) or "state" not in raw else "errors"
        raise ParseError(f"[filtering_validation] failed to parse: Required [{missing}]")
    state = raw["state"]
    if not isinstance(state, str) or state.lower() not in VALIDATION_STATES:
        raise InvalidArgument(f"Unknown FilteringValidationState [{state}].")
    errors = raw["errors"]
    if not isinstance(errors, list):
        raise ParseError("[filtering_validation] failed to parse field [errors]")
    parsed = []
    for error in errors:
        if not isinstance(error, dict) or "ids" not in error or "messages" not in error:
            raise ParseError("[filtering_validation_error] failed to parse: Required [ids, messages]")
        parsed.append({"ids": list(error["ids"]), "messages": list(error["messages"])})
    return {"errors": parsed, "state": state.lower()}


def parse_rules_object(raw: Any) -> Doc:
    if not isinstance(raw, dict):
        raise ParseError("[filtering_rules] expected an object")
    return {
        "advanced_snippet": parse_snippet(raw.get("advanced_snippet", {"value": {}})),
        "rules": [parse_rule(r) for r in raw.get("rules", [])],
        "validation": parse_validation(raw.get("validation", {"state": "valid", "errors": []})),
    }


def parse_filtering_element(raw: Any) -> Doc:
    if not isinstance(raw, dict):
        raise ParseError("[connector_filtering] expected an object")
    return {
        "active": parse_rules_object(raw.get("active", {})),
        "domain": "DEFAULT",
        "draft": parse_rules_object(raw.get("draft", {})),
    }
