"""Sync jobs: the snapshot of a connector a job works from, the job status machine, and the rules
of cancel, claim, check-in, error and stats."""

from __future__ import annotations

from typing import Any

from keyplane.connectors.clock import format_ns
from keyplane.connectors.model import Doc
from keyplane.documents import deep_copy, deep_merge
from keyplane.errors import InvalidArgument, StatusError, ValidationError

JOB_TYPES = ("full", "incremental", "access_control")
TRIGGER_METHODS = ("on_demand", "scheduled")
DEFAULT_JOB_TYPE = "full"
DEFAULT_TRIGGER_METHOD = "on_demand"
ACL_PREFIX = ".search-acl-filter-"

_NEXT = {
    "pending": {"in_progress", "canceled"},
    "in_progress": {"canceling", "completed", "suspended", "error"},
    "suspended": {"in_progress", "canceled"},
    "canceling": {"canceled", "error"},
    "completed": set(),
    "canceled": set(),
    "error": set(),
}


def parse_job_type(value: Any) -> str:
    if not isinstance(value, str) or value.lower() not in JOB_TYPES:
        raise InvalidArgument(f"Unknown ConnectorSyncJobType [{value}].")
    return value.lower()


def parse_trigger_method(value: Any) -> str:
    if not isinstance(value, str) or value.lower() not in TRIGGER_METHODS:
        raise InvalidArgument(f"Unknown ConnectorSyncJobTriggerMethod [{value}].")
    return value.lower()


def check_transition(current: str, wanted: str) -> None:
    if wanted not in _NEXT.get(current, set()):
        raise StatusError(
            f"Invalid transition attempt from [{current}] to [{wanted}]. Such a ConnectorSyncStatus transition is "
            "not supported by the Connector Protocol."
        )


def check_connector_id(connector_id: str | None) -> str:
    """A job is asked for a named connector: an empty id is refused (before it is looked up)."""
    if not connector_id:
        raise ValidationError("[id] of the connector cannot be null or empty")
    return connector_id


def new_job(connector_id: str, connector: Doc, job_type: str, trigger_method: str, created_ns: int) -> Doc:
    """A pending job holding what the connector looked like when the job was asked for."""
    index_name = connector.get("index_name")
    if not index_name:
        raise StatusError(
            f"Cannot start a sync for connector [{connector_id}] with no index attached. Set the [index_name] "
            "property for the connector to enable syncing data."
        )
    if not connector.get("service_type"):
        raise StatusError(
            f"Cannot start a sync for connector [{connector_id}] with [service_type] not defined. Set the service "
            "type of your connector before starting the sync."
        )
    snapshot: Doc = {"id": connector_id}
    filtering = connector.get("filtering") or []
    if filtering and isinstance(filtering[0], dict) and "active" in filtering[0]:
        snapshot["filtering"] = deep_copy(filtering[0]["active"])
    snapshot["index_name"] = ACL_PREFIX + index_name if job_type == "access_control" else index_name
    if connector.get("language") is not None:
        snapshot["language"] = connector["language"]
    if connector.get("pipeline") is not None:
        snapshot["pipeline"] = deep_copy(connector["pipeline"])
    snapshot["service_type"] = connector["service_type"]
    snapshot["configuration"] = deep_copy(connector.get("configuration") or {})
    stamp = format_ns(created_ns)
    return {
        "connector": snapshot,
        "created_at": stamp,
        "deleted_document_count": 0,
        "indexed_document_count": 0,
        "indexed_document_volume": 0,
        "job_type": job_type,
        "last_seen": stamp,
        "metadata": {},
        "status": "pending",
        "total_document_count": 0,
        "trigger_method": trigger_method,
    }


# -- job updates ---------------------------------------------------------------------------------------


def cancel(job: Doc, stamp: str) -> None:
    """A job nobody works on is canceled at once; a running one is asked to stop (``canceling``)."""
    if job["status"] in ("pending", "suspended"):
        job.update(status="canceled", cancelation_requested_at=stamp, canceled_at=stamp, completed_at=stamp)
    else:
        check_transition(job["status"], "canceling")
        job.update(status="canceling", cancelation_requested_at=stamp)


def claim(job: Doc, worker_hostname: str | None, sync_cursor: Doc | None, stamp: str) -> None:
    """A worker takes the job: it is in progress from now, resuming from ``sync_cursor`` if given."""
    job.update(worker_hostname=worker_hostname, status="in_progress", last_seen=stamp, started_at=stamp)
    if sync_cursor is not None:
        job["connector"]["sync_cursor"] = sync_cursor


def check_in(job: Doc, stamp: str) -> None:
    job["last_seen"] = stamp


def check_error_message(message: str | None) -> str:
    """A job fails with a reason: an empty one is refused (before the job is looked up)."""
    if not message:
        raise ValidationError("[error] of the connector sync job cannot be null or empty")
    return message


def fail(job: Doc, message: str) -> None:
    check_transition(job["status"], "error")
    job.update(error=message, status="error")


def record_stats(job: Doc, counts: dict[str, int], last_seen: str, metadata: Doc | None) -> None:
    """New document counts and a check-in; ``metadata`` merges into what the job has."""
    job.update(counts)
    job["last_seen"] = last_seen
    if metadata is not None:
        merged = job.get("metadata") or {}
        deep_merge(merged, metadata)
        job["metadata"] = merged
