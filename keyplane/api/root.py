"""Cluster-level endpoints consumers read before anything else: info, license, xpack, health."""

from __future__ import annotations

from typing import Any

from keyplane import __version__
from keyplane.http.request import Reply, RestRequest
from keyplane.http.routing import Router


def _info(request: RestRequest) -> dict[str, Any]:
    s = request.services
    return {
        "name": s.settings.node_name,
        "cluster_name": s.settings.cluster_name,
        "cluster_uuid": s.cluster_uuid,
        "version": {
            "number": s.settings.es_version,
            "build_flavor": "default",
            "build_type": "keyplane",
            "build_hash": "keyplane-" + __version__,
            "build_date": "2026-11-01T00:00:00.000Z",
            "build_snapshot": False,
            "lucene_version": "10.2.2",
            "minimum_wire_compatibility_version": "8.19.0",
            "minimum_index_compatibility_version": "8.0.0",
            "distribution": "keyplane",
            "keyplane_version": __version__,
        },
        "tagline": "You Know, for Search",
    }


async def info(request: RestRequest) -> dict[str, Any]:
    return _info(request)


async def ping(request: RestRequest) -> Reply:
    return Reply(None)


async def license_(request: RestRequest) -> dict[str, Any]:
    request.flag("local")
    request.flag("accept_enterprise")
    s = request.services
    return {
        "license": {
            "status": "active",
            "uid": s.cluster_uuid,
            "type": "trial",
            "issue_date": "2026-01-01T00:00:00.000Z",
            "issue_date_in_millis": 1767225600000,
            "expiry_date": "2099-12-31T23:59:59.999Z",
            "expiry_date_in_millis": 4102444799999,
            "max_nodes": 1000,
            "max_resource_units": None,
            "issued_to": s.settings.cluster_name,
            "issuer": "keyplane",
            "start_date_in_millis": -1,
        }
    }


async def xpack(request: RestRequest) -> dict[str, Any]:
    s = request.services
    return {
        "build": {"hash": "keyplane-" + __version__, "date": "2026-11-01T00:00:00.000Z"},
        "license": {
            "uid": s.cluster_uuid,
            "type": "trial",
            "mode": "trial",
            "status": "active",
            "expiry_date_in_millis": 4102444799999,
        },
        "features": {
            "security": {"available": True, "enabled": True},
        },
        "tagline": "You know, for X",
    }


async def health(request: RestRequest) -> dict[str, Any]:
    wanted = request.param("wait_for_status")
    if wanted is not None and wanted not in ("green", "yellow", "red"):
        from keyplane.http.errors import bad_request

        raise bad_request(f"unknown cluster health status [{wanted}]")
    return {
        "cluster_name": request.services.settings.cluster_name,
        "status": "green",
        "timed_out": False,
        "number_of_nodes": 1,
        "number_of_data_nodes": 1,
        "active_primary_shards": 0,
        "active_shards": 0,
        "relocating_shards": 0,
        "initializing_shards": 0,
        "unassigned_shards": 0,
        "unassigned_primary_shards": 0,
        "delayed_unassigned_shards": 0,
        "number_of_pending_tasks": 0,
        "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0,
        "active_shards_percent_as_number": 100.0,
    }


HEALTH_PARAMS = (
    "expand_wildcards",
    "level",
    "local",
    "master_timeout",
    "timeout",
    "wait_for_active_shards",
    "wait_for_nodes",
    "wait_for_events",
    "wait_for_no_relocating_shards",
    "wait_for_no_initializing_shards",
    "wait_for_status",
)


def register(router: Router) -> None:
    router.add("GET", "/", info, action="cluster:monitor/main")
    router.add("HEAD", "/", ping, action="cluster:monitor/main")
    router.add(
        "GET", "/_license", license_, action="cluster:monitor/xpack/license/get", params=("local", "accept_enterprise")
    )
    router.add("GET", "/_xpack", xpack, action="cluster:monitor/xpack/info", params=("categories", "accept_enterprise"))
    router.add("GET", "/_cluster/health", health, action="cluster:monitor/health", params=HEALTH_PARAMS)
    router.add("GET", "/_cluster/health/{index}", health, action="cluster:monitor/health", params=HEALTH_PARAMS)
