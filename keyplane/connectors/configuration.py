"""Connector configuration: the schema of each field a connector needs, and the values set for them.

A connector counts as ``configured`` once its schema or its values change; values may only be set
for fields whose schema is registered.
"""

from __future__ import annotations

from typing import Any

from keyplane.connectors.model import Doc
from keyplane.documents import deep_merge
from keyplane.errors import InvalidArgument, ParseError, StatusError

DISPLAY_TYPES = ("text", "textbox", "textarea", "numeric", "toggle", "dropdown")
FIELD_TYPES = ("str", "int", "list", "bool")
VALIDATION_TYPES = ("less_than", "greater_than", "list_type", "included_in", "regex")
_SCALAR = (str, int, float, bool)


# -- rules -----------------------------------------------------------------------------------------------


def replace_schema(doc: Doc, schema: Doc) -> None:
    """A new schema replaces the registered one whole (values included)."""
    doc["configuration"] = schema
    doc["status"] = "configured"


def set_values(doc: Doc, values: Doc) -> None:
    """Values of registered fields; the rest of each field's schema is kept."""
    check_registered(doc.get("configuration") or {}, values)
    deep_merge(doc, {"configuration": {k: {"value": v} for k, v in values.items()}, "status": "configured"})


def check_registered(configuration: Doc, values: Doc) -> None:
    unknown = [k for k in values if k not in configuration]
    if unknown:
        raise StatusError(
            f"Unknown [configuration] fields in the request payload: [{', '.join(unknown)}]. "
            "Remove them from request or register their schema first."
        )


# -- schema parsing -------------------------------------------------------------------------------------


def parse_schema(schema: Doc) -> Doc:
    return {key: parse_field_schema(key, spec) for key, spec in schema.items()}


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


def _scalar(value: Any, what: str, *, allow_object: bool = False) -> Any:
    if value is None or isinstance(value, _SCALAR) or (allow_object and isinstance(value, dict)):
        return value
    token = "START_ARRAY" if isinstance(value, list) else "START_OBJECT"
    raise ParseError(f"[connector_configuration] failed to parse field [{what}]: Unsupported token [{token}]")


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
