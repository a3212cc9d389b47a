"""``/_connector``: connectors and their field updates.

Each handler parses the request, calls one ``ConnectorService`` operation and renders its answer;
the rules live in ``keyplane.connectors``.
"""

from __future__ import annotations

from typing import Any

from keyplane.api.common import required_body
from keyplane.connectors import core
from keyplane.connectors.clock import parse_timestamp
from keyplane.connectors.configuration import parse_schema
from keyplane.connectors.filtering import parse_filtering, parse_rules, parse_snippet, parse_validation
from keyplane.connectors.model import ConnectorFilter
from keyplane.connectors.scheduling import parse_scheduling
from keyplane.errors import InvalidArgument, KeyplaneError, ValidationError
from keyplane.http.body import Body
from keyplane.http.errors import x_content_parse
from keyplane.http.request import Reply, RestRequest
from keyplane.http.routing import Router

A = "cluster:admin/xpack/connector/"
EMPTY_ID = '[connector_id] cannot be [null] or [""].'


def _id(request: RestRequest) -> str:
    connector_id = request.path_params["connector_id"]
    if not connector_id:
        raise ValidationError(EMPTY_ID)
    return connector_id


def _wrap(body: Body, field: str, exc: KeyplaneError) -> KeyplaneError | Exception:
    """A value the parser could not build: Elasticsearch's failed-to-parse-field envelope."""
    err = body.failed(field)
    err.root_cause = {"type": "illegal_argument_exception", "reason": str(exc)}
    return err


def _string_or_null(body: Body, field: str) -> str | None:
    value = body.data.get(field)
    if value is not None and not isinstance(value, str):
        raise body.failed(field)
    return value


def _result(result: str) -> dict[str, str]:
    return {"result": result}


# -- create, read, list, delete ------------------------------------------------------------------------

PUT_FIELDS = {"description", "index_name", "is_native", "language", "name", "service_type"}


def _put_fields(request: RestRequest) -> dict[str, Any]:
    body = request.body("connector_put_request")
    if body is None:
        return {}
    body.check_fields(PUT_FIELDS)
    fields: dict[str, Any] = {}
    for name in ("description", "language", "name", "service_type"):
        if name in body.data:
            value = body.data[name]
            if not isinstance(value, str):
                raise (
                    body.failed(name)
                    if value is not None
                    else x_content_parse(
                        f"{body.where(name)} [connector_put_request] {name} doesn't support values of type: VALUE_NULL"
                    )
                )
            fields[name] = value
    fields["index_name"] = _string_or_null(body, "index_name")
    if "is_native" in body.data:
        fields["is_native"] = body.boolean("is_native")
    return fields


async def put(request: RestRequest) -> Reply:
    connector_id = request.path_params.get("connector_id")
    if connector_id == "":
        raise ValidationError(EMPTY_ID)
    connector_id, created = await request.services.connectors.put(connector_id, _put_fields(request))
    return Reply({"id": connector_id, "result": "created" if created else "updated"}, status=201 if created else 200)


async def post(request: RestRequest) -> Reply:
    connector_id, _ = await request.services.connectors.put(None, _put_fields(request))
    return Reply({"id": connector_id, "result": "created"}, status=201)


async def get(request: RestRequest) -> dict[str, Any]:
    return await request.services.connectors.get(_id(request), request.flag("include_deleted"))


def page_params(request: RestRequest) -> tuple[int, int]:
    start = request.int_param("from", 0) or 0
    size = request.int_param("size", 100)
    size = 100 if size is None else size
    if start < 0:
        raise InvalidArgument("Parameter [from] cannot be < 0")
    if size < 0:
        raise InvalidArgument("Parameter [size] cannot be < 0")
    if start + size > 10_000:
        raise InvalidArgument(
            f"Result window is too large, from + size must be less than or equal to: [10000] but was [{start + size}]"
        )
    return start, size


async def list_(request: RestRequest) -> dict[str, Any]:
    start, size = page_params(request)
    selector = ConnectorFilter(
        index_names=request.list_param("index_name"),
        names=request.list_param("connector_name"),
        service_types=request.list_param("service_type"),
        query=request.param("query") or None,
        include_deleted=request.flag("include_deleted"),
    )
    service = request.services.connectors
    if "pretty" in request.query or "filter_path" in request.query:
        total, connectors = await service.list(selector, start, size)
    else:  # written by orjson as it is: each connector a fragment of JSON kept from an earlier list
        total, connectors = await service.list_rendered(selector, start, size)
    return {"count": total, "results": connectors}


async def delete(request: RestRequest) -> dict[str, Any]:
    await request.services.connectors.delete(_id(request), request.flag("hard"), request.flag("delete_sync_jobs"))
    return {"acknowledged": True}


# -- field updates ---------------------------------------------------------------------------------------


async def check_in(request: RestRequest) -> dict[str, str]:
    return _result(await request.services.connectors.check_in(_id(request)))


LAST_SYNC_DATES = {
    "last_access_control_sync_scheduled_at",
    "last_incremental_sync_scheduled_at",
    "last_sync_scheduled_at",
    "last_synced",
}
LAST_SYNC_STRINGS = {"last_access_control_sync_error", "last_sync_error"}
LAST_SYNC_STATUSES = {"last_access_control_sync_status", "last_sync_status"}
LAST_SYNC_COUNTS = {"last_deleted_document_count", "last_indexed_document_count"}


async def last_sync(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    body = required_body(
        request,
        "connector_update_last_sync_stats_request",
        LAST_SYNC_DATES | LAST_SYNC_STRINGS | LAST_SYNC_STATUSES | LAST_SYNC_COUNTS | {"sync_cursor"},
    )
    values: dict[str, Any] = {}
    for field, value in body.data.items():
        try:
            if value is None:
                values[field] = None  # a null is not parsed: it leaves the stored field alone
            elif field in LAST_SYNC_DATES:
                values[field] = parse_timestamp(value, field)
            elif field in LAST_SYNC_STATUSES:
                values[field] = core.parse_sync_status(value)
            elif field in LAST_SYNC_COUNTS:
                values[field] = body.integer(field)
            elif field == "sync_cursor":
                values[field] = value
            elif not isinstance(value, str):
                raise body.failed(field)
            else:
                values[field] = value
        except KeyplaneError as exc:
            raise _wrap(body, field, exc) from None
    return _result(await request.services.connectors.update_last_sync_stats(connector_id, values))


async def api_key_id(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    body = required_body(request, "connector_update_api_key_id_request", {"api_key_id", "api_key_secret_id"})
    key_id, secret_id = _string_or_null(body, "api_key_id"), _string_or_null(body, "api_key_secret_id")
    if key_id is None and secret_id is None:
        raise ValidationError(
            "[api_key_id] and [api_key_secret_id] cannot both be [null]. "
            "Please provide a value for at least one of them."
        )
    return _result(await request.services.connectors.update_api_key_id(connector_id, key_id, secret_id))


async def configuration(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    body = required_body(request, "connector_update_configuration_request", {"configuration", "values"})
    schema = body.obj("configuration", nullable=True)
    values = body.obj("values", nullable=True)
    if schema is None and values is None:
        raise ValidationError("[configuration] and [values] cannot both be null.")
    if schema is not None and values is not None:
        raise ValidationError("[configuration] and [values] cannot both be provided in the same request.")
    service = request.services.connectors
    if schema is not None:
        try:
            parsed = parse_schema(schema)
        except KeyplaneError as exc:
            raise _wrap(body, "configuration", exc) from None
        return _result(await service.update_configuration(connector_id, parsed))
    assert values is not None
    return _result(await service.update_configuration_values(connector_id, values))


async def error(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    body = required_body(request, "connector_update_error_request", {"error"})
    if "error" not in body.data:
        raise InvalidArgument("Required [error]")
    message = _string_or_null(body, "error")
    return _result(await request.services.connectors.update_error(connector_id, message))


async def features(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    body = required_body(request, "connector_update_features_request", {"features"})
    raw = body.obj("features")
    if raw is None:
        raise ValidationError("[features] cannot be [null].")
    try:
        parsed = core.parse_features(raw)
    except KeyplaneError as exc:
        raise _wrap(body, "features", exc) from None
    return _result(await request.services.connectors.update_features(connector_id, parsed))


async def filtering(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    body = required_body(request, "connector_update_filtering_request", {"filtering", "advanced_snippet", "rules"})
    full, snippet, rules = body.data.get("filtering"), body.data.get("advanced_snippet"), body.data.get("rules")
    if full is None and snippet is None and rules is None:
        raise ValidationError("[advanced_snippet] and [rules] cannot be both [null].")
    if full is not None and (snippet is not None or rules is not None):
        raise ValidationError(
            "If [filtering] is specified, [rules] and [advanced_snippet] should not be present in the request body."
        )
    service = request.services.connectors
    try:
        if full is not None:
            elements = parse_filtering(full)
            # Inside the try, as before: an error of the update itself is reported as a parse error of [filtering].
            return _result(await service.update_filtering(connector_id, elements))
        new_snippet = parse_snippet(snippet) if snippet is not None else None
        new_rules = parse_rules(rules) if rules is not None else None
    except KeyplaneError as exc:
        raise _wrap(
            body, "filtering" if full is not None else ("rules" if rules is not None else "advanced_snippet"), exc
        ) from None
    return _result(await service.update_filtering_draft(connector_id, new_snippet, new_rules))


async def filtering_validation(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    body = required_body(request, "connector_update_filtering_validation_request", {"validation"})
    if body.data.get("validation") is None:
        raise ValidationError("[validation] cannot be [null].")
    try:
        validation = parse_validation(body.data["validation"])
    except KeyplaneError as exc:
        raise _wrap(body, "validation", exc) from None
    return _result(await request.services.connectors.update_filtering_validation(connector_id, validation))


async def activate_filtering(request: RestRequest) -> dict[str, str]:
    return _result(await request.services.connectors.activate_draft_filtering(_id(request)))


async def index_name(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    body = required_body(request, "connector_update_index_name_request", {"index_name"})
    if "index_name" not in body.data:
        raise InvalidArgument("Required [index_name]")
    name = _string_or_null(body, "index_name")
    return _result(await request.services.connectors.update_index_name(connector_id, name))


async def name(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    body = required_body(request, "connector_update_name_request", {"name", "description"})
    new_name, description = _string_or_null(body, "name"), _string_or_null(body, "description")
    if new_name is None and description is None:
        raise ValidationError(
            "[name] and [description] cannot both be [null]. Please provide a value for at least one of them."
        )
    return _result(await request.services.connectors.update_name(connector_id, new_name, description))


async def native(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    body = required_body(request, "connector_update_native_request", {"is_native"})
    if "is_native" not in body.data:
        raise InvalidArgument("Required [is_native]")
    is_native = body.boolean("is_native")
    assert is_native is not None  # the field is present, and a null raises
    return _result(await request.services.connectors.update_native(connector_id, is_native))


PIPELINE_FIELDS = ("extract_binary_content", "name", "reduce_whitespace", "run_ml_inference")


async def pipeline(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    body = required_body(request, "connector_update_pipeline_request", {"pipeline"})
    raw = body.obj("pipeline", nullable=True)
    if raw is None:
        raise ValidationError("[pipeline] cannot be [null].")
    missing = [f for f in PIPELINE_FIELDS if f not in raw]
    if missing:
        raise x_content_parse(f"[ingest_pipeline_params] failed to parse: Required [{', '.join(missing)}]")
    for field in ("extract_binary_content", "reduce_whitespace", "run_ml_inference"):
        if not isinstance(raw[field], bool):
            raise body.failed("pipeline")
    if not isinstance(raw["name"], str):
        raise body.failed("pipeline")
    value = {f: raw[f] for f in PIPELINE_FIELDS}
    return _result(await request.services.connectors.update_pipeline(connector_id, value))


async def scheduling(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    body = required_body(request, "connector_update_scheduling_request", {"scheduling"})
    raw = body.obj("scheduling", nullable=True)
    if raw is None:
        raise ValidationError("[scheduling] cannot be [null].")
    # Elasticsearch checks [full] and [incremental] only, so access_control alone is refused too.
    if "full" not in raw and "incremental" not in raw:
        raise ValidationError(
            "[scheduling] object needs to define at least one schedule type: [full | incremental | access_control]"
        )
    try:
        parsed = parse_scheduling(raw)
    except KeyplaneError as exc:
        raise _wrap(body, "scheduling", exc) from None
    return _result(await request.services.connectors.update_scheduling(connector_id, parsed))


async def service_type(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    body = required_body(request, "connector_update_service_type_request", {"service_type"})
    value = _string_or_null(body, "service_type")
    if not value:
        raise ValidationError('[service_type] cannot be [null] or [""].')
    return _result(await request.services.connectors.update_service_type(connector_id, value))


async def status(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    body = required_body(request, "connector_update_status_request", {"status"})
    if body.data.get("status") is None:
        raise ValidationError("[status] cannot be [null].")
    try:
        wanted = core.parse_status(body.data["status"])
    except KeyplaneError as exc:
        raise _wrap(body, "status", exc) from None
    return _result(await request.services.connectors.update_status(connector_id, wanted))


def register(router: Router) -> None:
    one = "/_connector/{connector_id}"
    router.add("PUT", one, put, action=A + "put")
    router.add("PUT", "/_connector", put, action=A + "put")
    router.add("POST", "/_connector", post, action=A + "post")
    router.add("GET", one, get, action=A + "get", params=("include_deleted",))
    router.add(
        "GET",
        "/_connector",
        list_,
        action=A + "list",
        params=(
            "from",
            "size",
            "index_name",
            "connector_name",
            "service_type",
            "query",
            "include_deleted",
        ),
    )
    router.add("DELETE", one, delete, action=A + "delete", params=("hard", "delete_sync_jobs"))
    for suffix, handler, action in [
        ("_check_in", check_in, "update_last_seen"),
        ("_last_sync", last_sync, "update_last_sync_stats"),
        ("_api_key_id", api_key_id, "update_api_key_id"),
        ("_configuration", configuration, "update_configuration"),
        ("_error", error, "update_error"),
        ("_features", features, "update_features"),
        ("_filtering", filtering, "update_filtering"),
        ("_filtering/_validation", filtering_validation, "update_filtering/draft_validation"),
        ("_filtering/_activate", activate_filtering, "update_filtering/activate"),
        ("_index_name", index_name, "update_index_name"),
        ("_name", name, "update_name"),
        ("_native", native, "update_native"),
        ("_pipeline", pipeline, "update_pipeline"),
        ("_scheduling", scheduling, "update_scheduling"),
        ("_service_type", service_type, "update_service_type"),
        ("_status", status, "update_status"),
    ]:
        router.add("PUT", f"{one}/{suffix}", handler, action=A + action)
