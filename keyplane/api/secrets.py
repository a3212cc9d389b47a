"""``/_connector/_secret``: secret values for connectors, stored encrypted."""

from __future__ import annotations

from typing import Any

from keyplane.errors import ValidationError
from keyplane.http.errors import x_content_parse
from keyplane.http.request import Reply, RestRequest
from keyplane.http.routing import Router

A = "cluster:admin/xpack/connector/secret/"


def _value(request: RestRequest, parser: str) -> str:
    body = request.body(parser, required=True)
    assert body is not None
    body.check_fields({"value"})
    if "value" not in body.data:
        raise x_content_parse(f"[{parser}] failed to parse: Required [value]")
    value = body.data["value"]
    if not isinstance(value, str):
        if value is None:
            raise x_content_parse(f"{body.where('value')} [{parser}] value doesn't support values of type: VALUE_NULL")
        raise body.failed("value")
    return value


async def post(request: RestRequest) -> dict[str, Any]:
    value = _value(request, "post_secret_request")
    if not value:
        raise ValidationError('[value] of the connector secret cannot be [null] or [""]')
    return {"id": await request.services.connectors.post_secret(value)}


async def put(request: RestRequest) -> Reply:
    secret_id = request.path_params["id"]
    value = _value(request, "connector_secret_put_request")
    messages = []
    if not secret_id:
        messages.append('[id] cannot be [null] or [""]')
    if not value:
        messages.append('[value] cannot be [null] or [""]')
    if messages:
        raise ValidationError(*messages)
    created = await request.services.connectors.put_secret(secret_id, value)
    return Reply({"result": "created" if created else "updated"}, status=201 if created else 200)


def _id(request: RestRequest) -> str:
    secret_id = request.path_params["id"]
    if not secret_id:
        raise ValidationError("[id] of the connector secret cannot be null or empty.")
    return secret_id


async def get(request: RestRequest) -> dict[str, Any]:
    secret_id = _id(request)
    return {"id": secret_id, "value": await request.services.connectors.get_secret(secret_id)}


async def delete(request: RestRequest) -> dict[str, Any]:
    await request.services.connectors.delete_secret(_id(request))
    return {"deleted": True}


def register(router: Router) -> None:
    router.add("POST", "/_connector/_secret", post, action=A + "post")
    router.add("PUT", "/_connector/_secret/{id}", put, action=A + "put")
    router.add("GET", "/_connector/_secret/{id}", get, action=A + "get")
    router.add("DELETE", "/_connector/_secret/{id}", delete, action=A + "delete")
