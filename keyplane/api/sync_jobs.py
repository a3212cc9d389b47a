"""``/_connector/_sync_job``: create, read, list, cancel, check in, claim, error, stats, delete."""

from __future__ import annotations

from typing import Any

from keyplane.api.common import required_body
from keyplane.api.connectors import page_params
from keyplane.connectors import core, sync_jobs
from keyplane.documents import deep_merge
from keyplane.errors import InvalidArgument, KeyplaneError, ValidationError
from keyplane.http.body import Body
from keyplane.http.errors import x_content_parse
from keyplane.http.request import Reply, RestRequest
from keyplane.http.routing import Router

A = "cluster:admin/xpack/connector/sync_job/"
EMPTY_ID = "[connector_sync_job_id] of the connector sync job cannot be null or empty."


def _id(request: RestRequest) -> str:
    job_id = request.path_params["connector_sync_job_id"]
    if not job_id:
        raise ValidationError(EMPTY_ID)
    return job_id


def _enum(body: Body, field: str, parse: Any, default: str) -> str:
    value = body.data.get(field)
    if value is None:
        return default
    try:
        return str(parse(value))
    except KeyplaneError as exc:
        err = body.failed(field)
        err.root_cause = {"type": "illegal_argument_exception", "reason": str(exc)}
        raise err from None


async def post(request: RestRequest) -> Reply:
    body = required_body(request, "connector_sync_job_post_request", {"id", "job_type", "trigger_method"})
    connector_id = body.string("id")
    job_type = _enum(body, "job_type", sync_jobs.parse_job_type, "full")
    trigger = _enum(body, "trigger_method", sync_jobs.parse_trigger_method, "on_demand")
    if not connector_id:
        raise ValidationError("[id] of the connector cannot be null or empty")
    job_id = await request.services.connectors.create_job(connector_id, job_type, trigger)
    return Reply({"id": job_id}, status=201)


async def get(request: RestRequest) -> dict[str, Any]:
    return await request.services.connectors.get_job(_id(request))


async def list_(request: RestRequest) -> dict[str, Any]:
    start, size = page_params(request)
    status = request.param("status")
    if status:
        status = core.parse_sync_status(status)
    job_types = [sync_jobs.parse_job_type(t) for t in request.list_param("job_type")]
    return await request.services.connectors.list_jobs(
        request.param("connector_id") or None, status or None, job_types, start, size
    )


async def delete(request: RestRequest) -> dict[str, Any]:
    await request.services.connectors.delete_job(_id(request))
    return {"acknowledged": True}


async def cancel(request: RestRequest) -> dict[str, str]:
    job_id = _id(request)
    service = request.services.connectors
    await service.get_job(job_id)

    def cancel_job(doc: core.Doc) -> None:
        stamp = core.now_iso()
        if doc["status"] in ("pending", "suspended"):
            doc.update(status="canceled", cancelation_requested_at=stamp, canceled_at=stamp, completed_at=stamp)
        else:
            sync_jobs.check_transition(doc["status"], "canceling")
            doc.update(status="canceling", cancelation_requested_at=stamp)

    return {"result": await service.update_job(job_id, cancel_job)}


async def check_in(request: RestRequest) -> dict[str, str]:
    job_id = _id(request)
    stamp = core.now_iso()
    return {"result": await request.services.connectors.update_job(job_id, lambda d: d.update(last_seen=stamp))}


async def claim(request: RestRequest) -> dict[str, str]:
    job_id = _id(request)
    body = required_body(request, "connector_sync_job_claim_request", {"worker_hostname", "sync_cursor"})
    if "worker_hostname" not in body.data:
        raise InvalidArgument("Required [worker_hostname]")
    hostname = body.string("worker_hostname")
    cursor = body.obj("sync_cursor", nullable=True)
    service = request.services.connectors
    await service.get_job(job_id)

    def claim_job(doc: core.Doc) -> None:
        stamp = core.now_iso()
        doc.update(worker_hostname=hostname, status="in_progress", last_seen=stamp, started_at=stamp)
        if cursor is not None:
            doc["connector"]["sync_cursor"] = cursor

    return {"result": await service.update_job(job_id, claim_job)}


async def error(request: RestRequest) -> dict[str, str]:
    job_id = _id(request)
    body = required_body(request, "connector_sync_job_error_request", {"error"})
    message = body.string("error", nullable=True)
    if not message:
        raise ValidationError("[error] of the connector sync job cannot be null or empty")
    service = request.services.connectors
    await service.get_job(job_id)

    def fail(doc: core.Doc) -> None:
        sync_jobs.check_transition(doc["status"], "error")
        doc.update(error=message, status="error")

    return {"result": await service.update_job(job_id, fail)}


COUNTS = ("deleted_document_count", "indexed_document_count", "indexed_document_volume")


async def stats(request: RestRequest) -> dict[str, str]:
    job_id = _id(request)
    body = required_body(
        request,
        "connector_sync_job_update_stats_request",
        set(COUNTS) | {"total_document_count", "last_seen", "metadata"},
    )
    missing = [f for f in COUNTS if f not in body.data]
    if missing:
        raise x_content_parse(
            f"[connector_sync_job_update_stats_request] failed to parse: Required [{', '.join(missing)}]"
        )
    values: dict[str, Any] = {}
    messages = []
    for field in COUNTS + ("total_document_count",):
        if field in body.data and body.data[field] is not None:
            number = body.integer(field)
            assert number is not None
            if number < 0:
                messages.append(f"[{field}] cannot be negative.")
            values[field] = number
    if messages:
        raise ValidationError(*messages)
    last_seen = body.data.get("last_seen")
    try:
        values["last_seen"] = core.parse_timestamp(last_seen, "last_seen") if last_seen is not None else core.now_iso()
    except KeyplaneError as exc:
        raise body.failed("last_seen", str(exc)) from None
    metadata = body.obj("metadata", nullable=True)

    def update_stats(doc: core.Doc) -> None:
        doc.update(values)
        if metadata is not None:
            merged = doc.get("metadata") or {}
            deep_merge(merged, metadata)
            doc["metadata"] = merged

    return {"result": await request.services.connectors.update_job(job_id, update_stats)}


def register(router: Router) -> None:
    one = "/_connector/_sync_job/{connector_sync_job_id}"
    router.add("POST", "/_connector/_sync_job", post, action=A + "post")
    router.add("GET", one, get, action=A + "get")
    router.add(
        "GET",
        "/_connector/_sync_job",
        list_,
        action=A + "list",
        params=("from", "size", "status", "connector_id", "job_type"),
    )
    router.add("DELETE", one, delete, action=A + "delete")
    router.add("PUT", one + "/_cancel", cancel, action=A + "cancel")
    router.add("PUT", one + "/_check_in", check_in, action=A + "check_in")
    router.add("PUT", one + "/_claim", claim, action=A + "claim")
    router.add("PUT", one + "/_error", error, action=A + "update_error")
    router.add("PUT", one + "/_stats", stats, action=A + "update_stats")
