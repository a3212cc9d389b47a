"""Connector documents: defaults, index-name rules, the status machine, configuration schemas,
filtering rules and schedules, as Elasticsearch's ent-search module defines them.

A connector is kept as the JSON document Elasticsearch stores (its ``_source``), so fields written
by other consumers survive. Functions here build or change such documents; nothing here knows
HTTP or SQL.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from keyplane.errors import InvalidArgument, ParseError, StatusError, ValidationError

Doc = dict[str, Any]

DEFAULT_INTERVAL = "0 0 0 * * ?"
STATUSES = ("created", "needs_configuration", "configured", "connected", "error")
_TRANSITIONS = {
    "created": {"needs_configuration", "error"},
    "needs_configuration": {"configured", "error"},
    "configured": {"needs_configuration", "configured", "connected", "error"},
    "connected": {"configured", "connected", "error"},
    "error": {"configured", "connected", "error"},
}
MANAGED_PREFIX = "content-"
SYNC_STATUSES = ("canceling", "canceled", "completed", "error", "in_progress", "pending", "suspended")

_last_stamp = 0


# -- time ----------------------------------------------------------------------------------------------


def now_ns() -> int:
    """Strictly increasing nanoseconds on this node, so consecutive writes always order."""
    global _last_stamp
    stamp = max(time.time_ns() // 1000 * 1000, _last_stamp + 1000)
    _last_stamp = stamp
    return stamp


def format_ns(ns: int) -> str:
    """ISO-8601 UTC with at least millisecond precision, as Elasticsearch prints dates."""
    seconds, rest = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{rest:09d}".rstrip("0")
    return f"{base}.{fraction.ljust(3, '0')}Z"


def now_iso() -> str:
    return format_ns(now_ns())


_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}(?::\d{2})?)(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$")


def parse_timestamp(value: Any, field: str) -> str:
    """A date field of a request, re-printed the way Elasticsearch stores it."""
    if isinstance(value, bool) or value is None:
        raise ParseError(f"failed to parse date field [{value}] for [{field}]")
    if isinstance(value, (int, float)):
        return format_ns(int(value) * 1_000_000)
    match = _ISO.match(str(value))
    if not match:
        raise ParseError(f"failed to parse date field [{value}] for [{field}]")
    day, clock, fraction, zone = match.groups()
    if clock.count(":") == 1:
        clock += ":00"
    try:
        parsed = datetime.fromisoformat(f"{day}T{clock}{_zone(zone)}")
    except ValueError:
        raise ParseError(f"failed to parse date field [{value}] for [{field}]") from None
    nanos = int((fraction or "0").ljust(9, "0"))
    return format_ns(int(parsed.timestamp()) * 1_000_000_000 + nanos)


def _zone(zone: str | None) -> str:
    if zone in (None, "Z"):
        return "+00:00"
    assert zone is not None
    return zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"


# -- index names -------------------------------------------------------------------------------------

_BAD_CHARS = set('\\/*?"<>|, ')


def index_name_problem(name: str) -> str | None:
    """Elasticsearch's index-name rules; the reason a name is invalid, or None."""
    if any(c in _BAD_CHARS for c in name):
        reason = "must not contain the following characters [' ','\"','*',',','/','<','>','?','\\\\','|']"
    elif "#" in name:
        reason = "must not contain '#'"
    elif ":" in name:
        reason = "must not contain ':'"
    elif name.startswith(("_", "-", "+")):
        reason = "must not start with '_', '-', or '+'"
    elif len(name.encode()) > 255:
        reason = f"index name is too long, ({len(name.encode())} > 255)"
    elif name in (".", ".."):
        reason = "must not be '.' or '..'"
    elif not name:
        reason = "must not be empty"
    else:
        return None
    return f"[{name}] org.elasticsearch.indices.InvalidIndexNameException: Invalid index name [{name}], {reason}"


def check_index_names(names: list[str]) -> None:
    problems = [p for n in names if (p := index_name_problem(n))]
    if problems:
        raise ValidationError(*problems)


# -- connector documents -------------------------------------------------------------------------------


def default_filtering(stamp: str, order: int = 0) -> list[Doc]:
    rules = {
        "advanced_snippet": {"created_at": stamp, "updated_at": stamp, "value": {}},
        "rules": [default_rule(stamp, order)],
        "validation": {"errors": [], "state": "valid"},
    }
    return [{"active": rules, "domain": "DEFAULT", "draft": copy.deepcopy(rules)}]


def default_rule(stamp: str, order: int) -> Doc:
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


def new_connector(fields: Doc) -> Doc:
    """A connector document with Elasticsearch's defaults, in its field order."""
    stamp = now_iso()
    native = bool(fields.get("is_native"))
    doc: Doc = {"configuration": {}, "custom_scheduling": {}}
    if fields.get("description") is not None:
        doc["description"] = fields["description"]
    doc["filtering"] = default_filtering(stamp)
    if fields.get("index_name") is not None:
        doc["index_name"] = fields["index_name"]
    doc["is_native"] = native
    if fields.get("language") is not None:
        doc["language"] = fields["language"]
    doc["name"] = fields.get("name") or ""
    schedule = {"enabled": False, "interval": DEFAULT_INTERVAL}
    doc["scheduling"] = {"access_control": dict(schedule), "full": dict(schedule), "incremental": dict(schedule)}
    if fields.get("service_type") is not None:
        doc["service_type"] = fields["service_type"]
    doc["status"] = "needs_configuration" if native else "created"
    doc["sync_now"] = False
    doc["deleted"] = False
    return doc


def check_new_connector(fields: Doc) -> None:
    index_name = fields.get("index_name")
    messages = []
    if index_name is not None:
        problem = index_name_problem(index_name)
        if problem:
            messages.append(problem)
        elif fields.get("is_native") and not index_name.startswith(MANAGED_PREFIX):
            messages.append(
                f"Index [{index_name}] is invalid. Index attached to an Elastic-managed connector must start with "
                f"the prefix: [{MANAGED_PREFIX}]"
            )
    if messages:
        raise ValidationError(*messages)


def check_transition(current: str, wanted: str) -> None:
    if wanted not in _TRANSITIONS.get(current, set()):
        raise StatusError(
            f"Invalid transition attempt from [{current}] to [{wanted}]. Such a status transition is not supported "
            "by the Connector Protocol."
        )


def parse_status(value: Any) -> str:
    if not isinstance(value, str):
        raise ParseError("[connector_update_status_request] failed to parse field [status]")
    if value.lower() not in STATUSES:
        raise InvalidArgument(f"Unknown ConnectorStatus [{value}].")
    return value.lower()


def parse_sync_status(value: Any) -> str:
    if not isinstance(value, str) or value.lower() not in SYNC_STATUSES:
        raise InvalidArgument(f"Unknown ConnectorSyncStatus [{value}].")
    return value.lower()


# -- configuration ---------------------------------------------------------------------------------------

DISPLAY_TYPES = ("text", "textbox", "textarea", "numeric", "toggle", "dropdown")
FIELD_TYPES = ("str", "int", "list", "bool")
VALIDATION_TYPES = ("less_than", "greater_than", "list_type", "included_in", "regex")
_SCALAR = (str, int, float, bool)


def _scalar(value: Any, what: str, *, allow_object: bool = False) -> Any:
    if value is None or isinstance(value, _SCALAR) or (allow_object and isinstance(value, dict)):
        return value
    token = "START_ARRAY" if isinstance(value, list) else "START_OBJECT"
    raise ParseError(f"[connector_configuration] failed to parse field [{what}]: Unsupported token [{token}]")


def parse_field_schema(key: str, spec: Any) -> Doc:
    """One entry of a configuration schema, re-serialised (unknown keys are dropped)."""
    if not isinstance(spec, dict):
        raise ParseError(f"[connector_configuration] expected an object for [{key}]")
    if not isinstance(spec.get("label"), str):
        raise ParseError(f"[connector_configuration] failed to parse field [{key}]: Required [label]")
    out: Doc = {}
    if spec.get("category") is not None:
        out["category"] = str(spec["category"])
    out["default_value"] = _scalar(spec.get("default_value"), "default_value")
    if "depends_on" in spec:
        out["depends_on"] = [
            {
                "field": _required_str(d, "field", "depends_on"),
                "value": _scalar(_required(d, "value", "depends_on"), "value"),
            }
            for d in _list(spec["depends_on"], "depends_on")
        ]
    if "display" in spec:
        display = spec["display"]
        if not isinstance(display, str) or display.lower() not in DISPLAY_TYPES:
            raise InvalidArgument(f"Unknown ConfigurationDisplayType [{display}].")
        out["display"] = display.lower()
    out["label"] = spec["label"]
    if "options" in spec:
        options = []
        for option in _list(spec["options"], "options"):
            value = _required(option, "value", "options")
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise ParseError(
                    "[connector_configuration] failed to parse field [options]: [value] must be a string or a number"
                )
            options.append({"label": _required_str(option, "label", "options"), "value": value})
        out["options"] = options
    if spec.get("order") is not None:
        if isinstance(spec["order"], bool) or not isinstance(spec["order"], int):
            raise ParseError("[connector_configuration] failed to parse field [order]")
        out["order"] = spec["order"]
    if spec.get("placeholder") is not None:
        out["placeholder"] = str(spec["placeholder"])
    out["required"] = _bool(spec.get("required", False), "required")
    out["sensitive"] = _bool(spec.get("sensitive", False), "sensitive")
    if spec.get("tooltip") is not None:
        out["tooltip"] = str(spec["tooltip"])
    if spec.get("type") is not None:
        if spec["type"] not in FIELD_TYPES:
            raise InvalidArgument(f"Unknown ConfigurationFieldType [{spec['type']}].")
        out["type"] = spec["type"]
    if "ui_restrictions" in spec:
        restrictions = _list(spec["ui_restrictions"], "ui_restrictions")
        if not all(isinstance(r, str) for r in restrictions):
            raise ParseError("[connector_configuration] failed to parse field [ui_restrictions]")
        out["ui_restrictions"] = restrictions
    if "validations" in spec:
        validations = []
        for rule in _list(spec["validations"], "validations"):
            kind = _required(rule, "type", "validations")
            if not isinstance(kind, str) or kind.lower() not in VALIDATION_TYPES:
                raise InvalidArgument(f"Unknown ConfigurationValidationType [{kind}].")
            constraint = _required(rule, "constraint", "validations")
            if isinstance(constraint, dict) or constraint is None:
                raise ParseError("[connector_configuration] failed to parse field [constraint]")
            validations.append({"constraint": constraint, "type": kind.lower()})
        out["validations"] = validations
    out["value"] = _scalar(spec.get("value"), "value", allow_object=True)
    return out


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ParseError(f"[connector_configuration] failed to parse field [{what}]: expected an array")
    return value


def _required(obj: Any, key: str, what: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise ParseError(f"[connector_configuration] failed to parse field [{what}]: Required [{key}]")
    return obj[key]


def _required_str(obj: Any, key: str, what: str) -> str:
    value = _required(obj, key, what)
    if not isinstance(value, str):
        raise ParseError(f"[connector_configuration] failed to parse field [{what}]: [{key}] must be a string")
    return value


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ParseError(f"[connector_configuration] failed to parse field [{what}]")
    return value


def unknown_value_fields(configuration: Doc, values: Doc) -> None:
    unknown = [k for k in values if k not in configuration]
    if unknown:
        raise StatusError(
            f"Unknown [configuration] fields in the request payload: [{', '.join(unknown)}]. "
            "Remove them from request or register their schema first."
        )


# -- filtering -------------------------------------------------------------------------------------------

RULE_CONDITIONS = ("contains", "ends_with", "equals", ">", "<", "regex", "starts_with")
VALIDATION_STATES = ("edited", "invalid", "valid")


def parse_rule(raw: Any, stamp: str) -> Doc:
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
        "created_at": parse_timestamp(raw["created_at"], "created_at") if raw.get("created_at") else stamp,
        "field": str(raw["field"]),
        "id": str(raw["id"]),
        "order": order,
        "policy": policy.lower(),
        "rule": raw["rule"],
        "updated_at": parse_timestamp(raw["updated_at"], "updated_at") if raw.get("updated_at") else stamp,
        "value": str(raw["value"]),
    }


def parse_snippet(raw: Any, stamp: str) -> Doc:
    if not isinstance(raw, dict) or "value" not in raw:
        raise ParseError("[filtering_advanced_snippet] failed to parse: Required [value]")
    if not isinstance(raw["value"], (dict, list)):
        raise ParseError("[filtering_advanced_snippet] failed to parse field [value]: must be an object or an array")
    return {
        "created_at": parse_timestamp(raw["created_at"], "created_at") if raw.get("created_at") else stamp,
        "updated_at": parse_timestamp(raw["updated_at"], "updated_at") if raw.get("updated_at") else stamp,
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


def parse_rules_object(raw: Any, stamp: str) -> Doc:
    if not isinstance(raw, dict):
        raise ParseError("[filtering_rules] expected an object")
    return {
        "advanced_snippet": parse_snippet(raw.get("advanced_snippet", {"value": {}}), stamp),
        "rules": [parse_rule(r, stamp) for r in raw.get("rules", [])],
        "validation": parse_validation(raw.get("validation", {"state": "valid", "errors": []})),
    }


def parse_filtering_element(raw: Any, stamp: str) -> Doc:
    if not isinstance(raw, dict):
        raise ParseError("[connector_filtering] expected an object")
    return {
        "active": parse_rules_object(raw.get("active", {}), stamp),
        "domain": "DEFAULT",
        "draft": parse_rules_object(raw.get("draft", {}), stamp),
    }


def edit_first_filtering(doc: Doc, change: Callable[[Doc], None]) -> None:
    """Change the connector's (first, DEFAULT-domain) filtering element, creating it if absent."""
    elements = doc.get("filtering") or default_filtering(now_iso())
    change(elements[0])
    doc["filtering"] = elements


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


# -- scheduling ------------------------------------------------------------------------------------------

_MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
_DAYS = "SUN MON TUE WED THU FRI SAT".split()


def _cron_field(text: str, low: int, high: int, names: list[str] | None, specials: str) -> bool:
    if text == "*" or (text == "?" and "?" in specials):
        return True
    for part in text.split(","):
        if not part:
            return False
        base, _, step = part.partition("/")
        if step and not (step.isdigit() and int(step) > 0):
            return False
        if base in ("*", ""):
            if not step:
                return False
            continue
        if "L" in specials and base in ("L", "LW") or (base.endswith("L") and "L" in specials and len(base) > 1):
            inner = base[:-1] if base != "L" and base != "LW" else ""
            if inner and not _cron_value(inner, low, high, names):
                return False
            continue
        if "W" in specials and base.endswith("W"):
            if not _cron_value(base[:-1], low, high, names):
                return False
            continue
        if "#" in specials and "#" in base:
            day, _, nth = base.partition("#")
            if not (_cron_value(day, low, high, names) and nth.isdigit() and 1 <= int(nth) <= 5):
                return False
            continue
        start, dash, end = base.partition("-")
        if not _cron_value(start, low, high, names) or (dash and not _cron_value(end, low, high, names)):
            return False
    return True


def _cron_value(text: str, low: int, high: int, names: list[str] | None) -> bool:
    if names and text.upper() in names:
        return True
    return text.isdigit() and low <= int(text) <= high


def check_cron(expression: Any) -> None:
    """Quartz-style cron with seconds, as Elasticsearch's scheduler accepts."""
    parts = expression.split() if isinstance(expression, str) else []
    ok = len(parts) in (6, 7) and (
        _cron_field(parts[0], 0, 59, None, "")
        and _cron_field(parts[1], 0, 59, None, "")
        and _cron_field(parts[2], 0, 23, None, "")
        and _cron_field(parts[3], 1, 31, None, "?LW")
        and _cron_field(parts[4], 1, 12, _MONTHS, "")
        and _cron_field(parts[5], 1, 7, _DAYS, "?L#")
        and (len(parts) == 6 or _cron_field(parts[6], 1970, 2199, None, ""))
    )
    if ok and parts[3] != "?" and parts[5] != "?":
        ok = False  # Quartz needs one of day-of-month and day-of-week to be '?'
    if not ok:
        raise InvalidArgument(f"invalid cron expression [{expression}]")
