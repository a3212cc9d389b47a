"""``/_connector/_sync_job``: create, read, list, cancel, check in, claim, error, stats, delete.

Each handler parses the request, calls one ``ConnectorService`` operation and renders its answer;
the job rules live in ``keyplane.connectors.sync_jobs``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keyplane.api.common import required_body
from keyplane.api.connectors import page_params
from keyplane.connectors import core, sync_jobs
from keyplane.connectors.clock import parse_timestamp
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


def _enum(body: Body, field: str, parse: Callable[[Any], str]) -> str | None:
    value = body.data.get(field)
    if value is None:
        return None
    try:
        return parse(value)
    except KeyplaneError as exc:
        err = body.failed(field)
        err.root_cause = {"type": "illegal_argument_exception", "reason": str(exc)}
        raise err from None


async def post(request: RestRequest) -> Reply:
    body = required_body(request, "connector_sync_job_post_request", {"id", "job_type", "trigger_method"})
    connector_id = body.string("id")
    job_type = _enum(body, "job_type", sync_jobs.parse_job_type)
    trigger = _enum(body, "trigger_method", sync_jobs.parse_trigger_method)
    job_id = await request.services.connectors.create_sync_job(connector_id, job_type, trigger)
    return Reply({"id": job_id}, status=201)


async def get(request: RestRequest) -> dict[str, Any]:
    return await request.services.connectors.get_sync_job(_id(request))


async def list_(request: RestRequest) -> dict[str, Any]:
    start, size = page_params(request)
    status = request.param("status")
    if status:
        status = core.parse_sync_status(status)
    job_types = [sync_jobs.parse_job_type(t) for t in request.list_param("job_type")]
    total, jobs = await request.services.connectors.list_sync_jobs(
        request.param("connector_id") or None, status or None, job_types, start, size
    )
    return {"count": total, "results": jobs}


async def delete(request: RestRequest) -> dict[str, Any]:
    await request.services.connectors.delete_sync_job(_id(request))
    return {"acknowledged": True}


async def cancel(request: RestRequest) -> dict[str, str]:
    return {"result": await request.services.connectors.cancel_sync_job(_id(request))}


async def check_in(request: RestRequest) -> dict[str, str]:
    return {"result": await request.services.connectors.check_in_sync_job(_id(request))}


async def claim(request: RestRequest) -> dict[str, str]:
    job_id = _id(request)
    body = required_body(request, "connector_sync_job_claim_request", {"worker_hostname", "sync_cursor"})
    if "worker_hostname" not in body.data:
        raise InvalidArgument("Required [worker_hostname]")
    hostname = body.string("worker_hostname")
    assert hostname is not None  # the field is present, and a null raises
    cursor = body.obj("sync_cursor", nullable=True)
    return {"result": await request.services.connectors.claim_sync_job(job_id, hostname, cursor)}


async def error(request: RestRequest) -> dict[str, str]:
    job_id = _id(request)
    body = required_body(request, "connector_sync_job_error_request", {"error"})
    message = body.string("error", nullable=True)
    return {"result": await request.services.connectors.set_sync_job_error(job_id, message)}


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
    counts: dict[str, int] = {}
    messages = []
    for field in COUNTS + ("total_document_count",):
        if field in body.data and body.data[field] is not None:
            number = body.integer(field)
            assert number is not None
            if number < 0:
                messages.append(f"[{field}] cannot be negative.")
            counts[field] = number
    if messages:
        raise ValidationError(*messages)
    last_seen = body.data.get("last_seen")
    try:
        seen = parse_timestamp(last_seen, "last_seen") if last_seen is not None else None
    except KeyplaneError as exc:
        raise body.failed("last_seen", str(exc)) from None
    metadata = body.obj("metadata", nullable=True)
    return {"result": await request.services.connectors.update_sync_job_stats(job_id, counts, seen, metadata)}


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
