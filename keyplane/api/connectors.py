"""``/_connector``: connectors and their field updates. Parsing here, rules in ``keyplane.connectors``."""

from __future__ import annotations

from typing import Any

from keyplane.api.common import required_body
from keyplane.connectors import core
from keyplane.connectors.backends.base import ConnectorFilter
from keyplane.connectors.service import set_fields
from keyplane.documents import deep_merge
from keyplane.errors import InvalidArgument, KeyplaneError, ParseError, StatusError, ValidationError
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
    return await request.services.connectors.list(selector, start, size)


async def delete(request: RestRequest) -> dict[str, Any]:
    await request.services.connectors.delete(_id(request), request.flag("hard"), request.flag("delete_sync_jobs"))
    return {"acknowledged": True}


# -- field updates ---------------------------------------------------------------------------------------


async def check_in(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    stamp = core.now_iso()
    return _result(await request.services.connectors.update(connector_id, set_fields({"last_seen": stamp}), blind=True))


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
        if value is None:
            continue  # only given values are written
        try:
            if field in LAST_SYNC_DATES:
                values[field] = core.parse_timestamp(value, field)
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
    return _result(await request.services.connectors.update(connector_id, set_fields(values), blind=True))


async def api_key_id(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    body = required_body(request, "connector_update_api_key_id_request", {"api_key_id", "api_key_secret_id"})
    values = {f: v for f in ("api_key_id", "api_key_secret_id") if (v := _string_or_null(body, f)) is not None}
    if not values:
        raise ValidationError(
            "[api_key_id] and [api_key_secret_id] cannot both be [null]. "
            "Please provide a value for at least one of them."
        )
    return _result(await request.services.connectors.update(connector_id, set_fields(values), blind=True))


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
            parsed = {key: core.parse_field_schema(key, spec) for key, spec in schema.items()}
        except KeyplaneError as exc:
            raise _wrap(body, "configuration", exc) from None

        def replace(doc: core.Doc) -> None:
            doc["configuration"] = parsed
            doc["status"] = "configured"

        return _result(await service.update(connector_id, replace, blind=False, always=True))
    assert values is not None
    await service.get(connector_id)  # 404 before the schema check, as Elasticsearch orders them

    def set_values(doc: core.Doc) -> None:
        registered = doc.get("configuration") or {}
        core.unknown_value_fields(registered, values)
        deep_merge(doc, {"configuration": {k: {"value": v} for k, v in values.items()}, "status": "configured"})

    return _result(await service.update(connector_id, set_values, blind=False))


async def error(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    body = required_body(request, "connector_update_error_request", {"error"})
    if "error" not in body.data:
        raise InvalidArgument("Required [error]")
    message = _string_or_null(body, "error")
    status = "error" if message else "connected"
    return _result(
        await request.services.connectors.update(
            connector_id, set_fields({"error": message, "status": status}), blind=True
        )
    )


FEATURE_FLAGS = ("document_level_security", "incremental_sync", "native_connector_api_keys")


def _flag(value: Any, name: str) -> dict[str, bool]:
    if not isinstance(value, dict) or not isinstance(value.get("enabled"), bool):
        raise ParseError(f"[{name}] needs a boolean [enabled]")
    return {"enabled": value["enabled"]}


async def features(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    body = required_body(request, "connector_update_features_request", {"features"})
    raw = body.obj("features")
    if raw is None:
        raise ValidationError("[features] cannot be [null].")
    parsed: dict[str, Any] = {}
    try:
        for name in FEATURE_FLAGS:
            if name in raw:
                parsed[name] = _flag(raw[name], name)
        if "sync_rules" in raw:
            rules = raw["sync_rules"]
            if not isinstance(rules, dict):
                raise ParseError("[sync_rules] must be an object")
            parsed["sync_rules"] = {k: _flag(rules[k], k) for k in ("advanced", "basic") if k in rules}
    except KeyplaneError as exc:
        raise _wrap(body, "features", exc) from None
    return _result(await request.services.connectors.update(connector_id, set_fields({"features": parsed}), blind=True))


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
    stamp = core.now_iso()
    service = request.services.connectors
    try:
        if full is not None:
            if not isinstance(full, list):
                raise ParseError("[filtering] must be an array")
            elements = [core.parse_filtering_element(e, stamp) for e in full]
            return _result(await service.update(connector_id, set_fields({"filtering": elements}), blind=True))
        new_snippet = core.parse_snippet(snippet, stamp) if snippet is not None else None
        if rules is not None and not isinstance(rules, list):
            raise ParseError("[rules] must be an array")
        new_rules = [core.parse_rule(r, stamp) for r in rules] if rules is not None else None
    except KeyplaneError as exc:
        raise _wrap(
            body, "filtering" if full is not None else ("rules" if rules is not None else "advanced_snippet"), exc
        ) from None

    def edit_draft(element: core.Doc) -> None:
        draft = element["draft"]
        if new_snippet is not None:
            draft["advanced_snippet"] = new_snippet
        if new_rules is not None:
            draft["rules"] = core.sort_rules(new_rules, stamp)
        draft["validation"] = {"errors": [], "state": "edited"}

    return _result(
        await service.update(connector_id, lambda doc: core.edit_first_filtering(doc, edit_draft), blind=False)
    )


async def filtering_validation(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    body = required_body(request, "connector_update_filtering_validation_request", {"validation"})
    if body.data.get("validation") is None:
        raise ValidationError("[validation] cannot be [null].")
    try:
        validation = core.parse_validation(body.data["validation"])
    except KeyplaneError as exc:
        raise _wrap(body, "validation", exc) from None

    def set_validation(element: core.Doc) -> None:
        element["draft"]["validation"] = validation

    return _result(
        await request.services.connectors.update(
            connector_id, lambda doc: core.edit_first_filtering(doc, set_validation), blind=False
        )
    )


async def activate_filtering(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)

    def activate(element: core.Doc) -> None:
        state = element["draft"]["validation"]["state"]
        if state != "valid":
            raise StatusError(
                "Filtering draft needs to be validated by the connector service before activation. Current filtering "
                f"draft validation state [{state}] is not equal to [valid]."
            )
        element["active"] = element["draft"]

    return _result(
        await request.services.connectors.update(
            connector_id, lambda doc: core.edit_first_filtering(doc, activate), blind=False, always=True
        )
    )


async def index_name(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    body = required_body(request, "connector_update_index_name_request", {"index_name"})
    if "index_name" not in body.data:
        raise InvalidArgument("Required [index_name]")
    name = _string_or_null(body, "index_name")
    service = request.services.connectors
    if name is not None:
        core.check_index_names([name])
        if await service.index_in_use(name, connector_id):
            raise StatusError(f"Index name [{name}] is used by another connector.")

    def rename(doc: core.Doc) -> None:
        if doc.get("is_native") and name is not None and not name.startswith(core.MANAGED_PREFIX):
            raise StatusError(
                "Index attached to an Elastic-managed connector must start with the prefix: "
                f"[{core.MANAGED_PREFIX}]. The index name in the payload [{name}] doesn't comply with this requirement."
            )
        doc["index_name"] = name

    return _result(await service.update(connector_id, rename, blind=False))


async def name(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    body = required_body(request, "connector_update_name_request", {"name", "description"})
    values = {f: v for f in ("name", "description") if (v := _string_or_null(body, f)) is not None}
    if not values:
        raise ValidationError(
            "[name] and [description] cannot both be [null]. Please provide a value for at least one of them."
        )
    return _result(await request.services.connectors.update(connector_id, set_fields(values), blind=True))


async def native(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    body = required_body(request, "connector_update_native_request", {"is_native"})
    if "is_native" not in body.data:
        raise InvalidArgument("Required [is_native]")
    is_native = body.boolean("is_native")

    def set_native(doc: core.Doc) -> None:
        current = doc.get("index_name")
        if is_native and current is not None and not current.startswith(core.MANAGED_PREFIX):
            raise StatusError(
                f"The index name [{current}] attached to the connector [{connector_id}] must start with the required "
                f"prefix: [{core.MANAGED_PREFIX}] to be Elastic-managed. Please update the attached index first to "
                "comply with this requirement."
            )
        doc["is_native"] = is_native
        if doc.get("status") == "connected":
            doc["status"] = "configured"

    return _result(await request.services.connectors.update(connector_id, set_native, blind=False))


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

    def set_pipeline(doc: core.Doc) -> None:
        doc["pipeline"] = value

    return _result(await request.services.connectors.update(connector_id, set_pipeline, blind=True))


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
    parsed: dict[str, Any] = {}
    try:
        for kind in ("access_control", "full", "incremental"):
            if kind not in raw:
                continue
            entry = raw[kind]
            if not isinstance(entry, dict) or not isinstance(entry.get("enabled"), bool) or "interval" not in entry:
                raise ParseError(f"[{kind}] needs [enabled] and [interval]")
            core.check_cron(entry["interval"])
            parsed[kind] = {"enabled": entry["enabled"], "interval": entry["interval"]}
    except KeyplaneError as exc:
        raise _wrap(body, "scheduling", exc) from None
    return _result(
        await request.services.connectors.update(connector_id, set_fields({"scheduling": parsed}), blind=True)
    )


async def service_type(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    body = required_body(request, "connector_update_service_type_request", {"service_type"})
    value = _string_or_null(body, "service_type")
    if not value:
        raise ValidationError('[service_type] cannot be [null] or [""].')

    def set_type(doc: core.Doc) -> None:
        doc["service_type"] = value
        if doc.get("status") != "created":
            doc["status"] = "needs_configuration"

    return _result(await request.services.connectors.update(connector_id, set_type, blind=False))


async def status(request: RestRequest) -> dict[str, str]:
    connector_id = _id(request)
    body = required_body(request, "connector_update_status_request", {"status"})
    if body.data.get("status") is None:
        raise ValidationError("[status] cannot be [null].")
    try:
        wanted = core.parse_status(body.data["status"])
    except KeyplaneError as exc:
        raise _wrap(body, "status", exc) from None

    def set_status(doc: core.Doc) -> None:
        core.check_transition(doc.get("status", "created"), wanted)
        doc["status"] = wanted

    return _result(await request.services.connectors.update(connector_id, set_status, blind=False, always=True))


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
