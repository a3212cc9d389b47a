"""Connector documents: defaults, index-name rules, the status machine and the rules of each field
update, as Elasticsearch's ent-search module defines them.

A connector is kept as the JSON document Elasticsearch stores (its ``_source``), so fields written
by other consumers survive. Functions here build or change such documents; nothing here knows
HTTP or SQL. Configuration, filtering and schedules have their own modules beside this one.
"""

from __future__ import annotations

from typing import Any

from keyplane.connectors.filtering import default_filtering
from keyplane.connectors.model import Doc
from keyplane.connectors.scheduling import default_scheduling
from keyplane.errors import InvalidArgument, ParseError, StatusError, ValidationError

STATUSES = ("created", "needs_configuration", "configured", "connected", "error")
_TRANSITIONS = {
    "created": {"needs_configuration", "error"},
    "needs_configuration": {"configured", "error"},
    "configured": {"needs_configuration", "configured", "connected", "error"},
    "connected": {"configured", "connected", "error"},
    "error": {"configured", "connected", "error"},
}
# Elastic-managed (native) connectors may only write to indices named with this prefix.
MANAGED_PREFIX = "content-"
SYNC_STATUSES = ("canceling", "canceled", "completed", "error", "in_progress", "pending", "suspended")
FEATURE_FLAGS = ("document_level_security", "incremental_sync", "native_connector_api_keys")


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


def index_taken(index_name: str | None) -> StatusError:
    """Two live connectors may not write to the same index."""
    return StatusError(f"Index name [{index_name}] is used by another connector.")


# -- new connectors ------------------------------------------------------------------------------------


def new_connector(fields: Doc, stamp: str) -> Doc:
    """A connector document with Elasticsearch's defaults, in its field order, created at ``stamp``."""
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
    doc["scheduling"] = default_scheduling()
    if fields.get("service_type") is not None:
        doc["service_type"] = fields["service_type"]
    # A native connector is run by Elastic, which still needs its configuration.
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


# -- status --------------------------------------------------------------------------------------------


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


# -- field updates -------------------------------------------------------------------------------------
# Partial documents (merged into the stored one) for plain field writes; functions changing a
# document in place where the change depends on what is stored.


def given(values: Doc) -> Doc:
    """Only the fields given a value: a null leaves the stored field as it is."""
    return {field: value for field, value in values.items() if value is not None}


def checked_in(stamp: str) -> Doc:
    return {"last_seen": stamp}


def error_fields(message: str | None) -> Doc:
    """An error puts the connector in ``error``; clearing it means the connector is ``connected`` again."""
    return {"error": message, "status": "error" if message else "connected"}


def set_status(doc: Doc, wanted: str) -> None:
    check_transition(doc.get("status", "created"), wanted)
    doc["status"] = wanted


def set_index_name(doc: Doc, index_name: str | None) -> None:
    if doc.get("is_native") and index_name is not None and not index_name.startswith(MANAGED_PREFIX):
        raise StatusError(
            "Index attached to an Elastic-managed connector must start with the prefix: "
            f"[{MANAGED_PREFIX}]. The index name in the payload [{index_name}] doesn't comply with this requirement."
        )
    doc["index_name"] = index_name


def set_native(doc: Doc, connector_id: str, is_native: bool) -> None:
    """Elastic-managed connectors need a managed index; a connected one must be checked again."""
    current = doc.get("index_name")
    if is_native and current is not None and not current.startswith(MANAGED_PREFIX):
        raise StatusError(
            f"The index name [{current}] attached to the connector [{connector_id}] must start with the required "
            f"prefix: [{MANAGED_PREFIX}] to be Elastic-managed. Please update the attached index first to "
            "comply with this requirement."
        )
    doc["is_native"] = is_native
    if doc.get("status") == "connected":
        doc["status"] = "configured"


def set_service_type(doc: Doc, service_type: str) -> None:
    """Another service type needs another configuration (a new connector keeps ``created``)."""
    doc["service_type"] = service_type
    if doc.get("status") != "created":
        doc["status"] = "needs_configuration"


def set_pipeline(doc: Doc, pipeline: Doc) -> None:
    """The ingest pipeline settings are replaced whole, never merged."""
    doc["pipeline"] = pipeline


def mark_deleted(doc: Doc) -> None:
    """A soft delete: the document stays, hidden from reads unless asked for."""
    doc["deleted"] = True


def parse_features(raw: Doc) -> Doc:
    """The feature flags of a request, each ``{"enabled": bool}``; unknown flags are dropped."""
    parsed: Doc = {}
    for name in FEATURE_FLAGS:
        if name in raw:
            parsed[name] = _flag(raw[name], name)
    if "sync_rules" in raw:
        rules = raw["sync_rules"]
        if not isinstance(rules, dict):
            raise ParseError("[sync_rules] must be an object")
        parsed["sync_rules"] = {k: _flag(rules[k], k) for k in ("advanced", "basic") if k in rules}
    return parsed


def _flag(value: Any, name: str) -> dict[str, bool]:
    if not isinstance(value, dict) or not isinstance(value.get("enabled"), bool):
        raise ParseError(f"[{name}] needs a boolean [enabled]")
    return {"enabled": value["enabled"]}
