"""``/_security/api_key`` and ``/_security/cross_cluster/api_key``: request parsing and responses.

Parsing follows Elasticsearch's object parsers (their names appear in error messages); the rules
live in ``keyplane.apikeys``.
"""

from __future__ import annotations

from typing import Any

from keyplane.api.aggregations import render_aggregations
from keyplane.api.apikey_view import render_created, render_hits, render_key
from keyplane.api.bulk import error_detail, errors_body
from keyplane.api.common import nodes_answer, page_window, with_profile_uid
from keyplane.apikeys import core
from keyplane.apikeys import service as svc
from keyplane.apikeys.grants import ClientAuthenticationRefused, GrantRequest
from keyplane.apikeys.query import parse_aggs, parse_query, parse_sort, search_after_message
from keyplane.apikeys.service import (
    BULK_GRANT,
    GRANT,
    BulkResult,
    CloneSpec,
    GetSpec,
    KeySpec,
    QuerySpec,
    UpdateSpec,
)
from keyplane.errors import InvalidArgument, KeyplaneError, ParseError, ValidationError
from keyplane.http.body import Body
from keyplane.http.errors import EsError, from_domain, x_content_parse
from keyplane.http.request import Reply, RestRequest
from keyplane.http.routing import Router
from keyplane.security import roles as role_mod
from keyplane.security.authentication import Grant
from keyplane.security.roles import IndicesPrivileges
from keyplane.timevalue import parse_duration_ms

KEY_FIELDS = {"name", "role_descriptors", "expiration", "metadata"}


def _build_failed(parser: str, exc: KeyplaneError) -> EsError:
    """Errors raised while Elasticsearch's parser builds the request are wrapped like this."""
    inner = from_domain(exc)
    return x_content_parse(f"Failed to build [{parser}] after last required field arrived", inner)


def _role_descriptors(body: Body) -> list[role_mod.RoleDescriptor] | None:
    value = body.obj("role_descriptors")
    if value is None:
        return None
    try:
        return core.parse_role_descriptors(value)
    except ParseError as exc:
        err = body.failed("role_descriptors")
        err.root_cause = {"type": "parse_exception", "reason": str(exc)}
        raise err from None


def _expiration(body: Body, *, nullable: bool = False) -> str | None:
    value = body.string("expiration", nullable=nullable)
    if value is not None:
        try:
            parse_duration_ms(value, "expiration")
        except ParseError as exc:
            raise _build_failed(body.parser, exc) from None
    return value


def _metadata(body: Body) -> dict[str, Any] | None:
    return body.obj("metadata")


def parse_key_spec(data: Any, parser: str, raw: bytes = b"") -> KeySpec:
    body = Body(data, parser, raw)
    body.check_fields(KEY_FIELDS)
    if "name" not in body.data:
        raise InvalidArgument("Required [name]")
    return KeySpec(
        name=body.string("name"),
        expiration=_expiration(body),
        role_descriptors=_role_descriptors(body),
        metadata=_metadata(body),
        name_is_string=isinstance(body.data["name"], str),
    )


async def create(request: RestRequest) -> dict[str, Any]:
    request.param("refresh")
    spec = parse_key_spec(request.json(required=True), "api_key_request", request.raw_body)
    return render_created(await request.services.apikeys.create(request.auth, spec))


async def clone(request: RestRequest) -> dict[str, Any]:
    request.param("refresh")
    body = request.body("clone_api_key_request", required=True)
    assert body is not None
    body.check_fields({"api_key", "name", "expiration", "metadata"})
    spec = CloneSpec(
        credential=body.string("api_key"),
        name=body.string("name"),
        keep_expiration="expiration" not in body.data,
        expiration=_expiration(body, nullable=True),  # null: the clone never expires
        metadata=_metadata(body),
    )
    return render_created(await request.services.apikeys.clone(request.auth, spec))


GRANT_FIELDS = frozenset({"grant_type", "username", "password", "access_token", "run_as", "client_authentication"})


def _grant_request(body: Body) -> GrantRequest:
    """Whose credentials a grant or bulk grant request carries."""
    client = body.obj("client_authentication")
    scheme = None
    if client is not None:
        inner = Body(client, "client_authentication", body.raw)
        inner.check_fields({"scheme", "value"})
        inner.string("value")
        scheme = inner.string("scheme") or ""
    credentials = Grant(
        body.string("grant_type"),
        body.string("username"),
        body.string("password"),
        body.string("access_token"),
        body.string("run_as"),
    )
    return GrantRequest(credentials, scheme)


def _granted_key(body: Body, raw: bytes) -> KeySpec | None:
    """The key a grant asks for, ``None`` without one."""
    api_key = body.obj("api_key")
    return None if api_key is None else parse_key_spec(api_key, "api_key_request", raw)


def _client_authentication_refused(exc: ClientAuthenticationRefused) -> EsError:
    return EsError(400, "security_exception", str(exc))


async def grant(request: RestRequest) -> dict[str, Any]:
    request.param("refresh")
    body = request.body("grant_api_key_request", required=True)
    assert body is not None
    body.check_fields(GRANT_FIELDS | {"api_key"})
    spec = _granted_key(body, request.raw_body)
    credentials = _grant_request(body)
    try:
        created = await request.services.api_key_grants.grant(request.auth, credentials, spec, request.uri)
    except ClientAuthenticationRefused as exc:
        raise _client_authentication_refused(exc) from None
    return render_created(created)


async def bulk_grant(request: RestRequest) -> dict[str, Any]:
    request.param("refresh")
    body = request.body("bulk_grant_api_key_request", required=True)
    assert body is not None
    body.check_fields(GRANT_FIELDS | {"api_keys"})
    items = body.data.get("api_keys", [])
    if not isinstance(items, list):
        raise body.failed("api_keys")
    try:
        specs = [parse_key_spec(item, "api_key_request", request.raw_body) for item in items]
    except (KeyplaneError, EsError) as exc:  # a bad element fails the whole array field, as ObjectParser reports it
        inner = from_domain(exc) if isinstance(exc, KeyplaneError) else exc
        where = body.where("api_keys")
        raise x_content_parse(f"{where} [{body.parser}] failed to parse field [api_keys]", inner) from None
    credentials = _grant_request(body)
    try:
        created, failed = await request.services.api_key_grants.bulk_grant(
            request.auth, credentials, specs, request.uri
        )
    except ClientAuthenticationRefused as exc:
        raise _client_authentication_refused(exc) from None
    return {"created": [render_created(key) for key in created], **errors_body(failed.errors)}


async def get(request: RestRequest) -> Reply:
    spec = GetSpec(
        id=request.param("id") or None,
        name=request.param("name") or None,
        username=request.param("username") or None,
        realm_name=request.param("realm_name") or None,
        owner=request.flag("owner"),
        with_limited_by=request.flag("with_limited_by"),
        active_only=request.flag("active_only"),
        with_profile_uid=request.flag("with_profile_uid"),
    )
    found = await request.services.apikeys.get(request.auth, spec)
    if spec.id and not found.keys:
        return Reply({"api_keys": []}, status=404)
    keys = [render_key(key, with_limited_by=spec.with_limited_by) for key in found.keys]
    if found.profile_uids:  # else no key has one to show
        keys = [with_profile_uid(key, found.profile_uids, key["realm"]) for key in keys]
    return Reply({"api_keys": keys})


async def query(request: RestRequest) -> dict[str, Any]:
    body = request.body("query_api_key_request_payload")
    data: dict[str, Any] = {}
    if body is not None:
        body.check_fields({"query", "from", "size", "sort", "search_after", "aggs", "aggregations"})
        data = body.data
        if "search_after" in data:
            if not isinstance(data["search_after"], list):
                raise body.failed("search_after")
            message = search_after_message(data["search_after"])
            if message:
                raise body.failed("search_after", message)
    start, size = page_window(body)
    sort_param = request.param("sort")
    sort = parse_sort(data.get("sort") if sort_param is None else sort_param.split(","))
    spec = QuerySpec(
        query=parse_query(data.get("query")),
        sort=sort,
        start=start,
        size=size,
        search_after=data.get("search_after"),
        aggs=parse_aggs(data.get("aggs", data.get("aggregations"))),
        with_limited_by=request.flag("with_limited_by"),
        with_profile_uid=request.flag("with_profile_uid"),
        typed_keys=request.flag("typed_keys"),
    )
    result = await request.services.apikeys.query(request.auth, spec)
    keys = render_hits(result.hits, with_limited_by=spec.with_limited_by)
    if result.profile_uids:  # else no key has one to show
        keys = [with_profile_uid(key, result.profile_uids, key["realm"]) for key in keys]
    out: dict[str, Any] = {"total": result.total, "count": len(keys), "api_keys": keys}
    if result.aggregations is not None:
        out["aggregations"] = render_aggregations(spec.aggs, result.aggregations, typed_keys=spec.typed_keys)
    return out


def _update_spec(body: Body | None, ids: list[str]) -> UpdateSpec:
    if body is None:
        return UpdateSpec(ids)
    return UpdateSpec(ids, _role_descriptors(body), _metadata(body), _expiration(body))


async def update(request: RestRequest) -> dict[str, Any]:
    ids = [request.path_params["ids"]]
    body = request.body("update_api_key_request_payload")
    if body is not None:
        body.check_fields(KEY_FIELDS - {"name"})
    updated = await request.services.apikeys.update_one(request.auth, _update_spec(body, ids), kind=core.REST)
    return {"updated": updated}


def _bulk_body(result: BulkResult) -> dict[str, Any]:
    return {"updated": result.updated, "noops": result.noops, **errors_body(result.errors)}


async def bulk_update(request: RestRequest) -> dict[str, Any]:
    body = request.body("bulk_update_api_key_request", required=True)
    assert body is not None
    body.check_fields(KEY_FIELDS - {"name"} | {"ids"})
    if "ids" not in body.data:
        raise InvalidArgument("Required [ids]")
    ids = body.strings("ids") or []
    if not ids:
        raise ValidationError("Field [ids] cannot be empty")
    result = await request.services.apikeys.update(request.auth, _update_spec(body, ids), kind=core.REST, bulk=True)
    return _bulk_body(result)


async def invalidate(request: RestRequest) -> dict[str, Any]:
    body = request.body("invalidate_api_key", required=True)
    assert body is not None
    body.check_fields({"ids", "name", "username", "realm_name", "owner"})
    ids = body.strings("ids")
    if ids is not None:
        if not ids:
            raise _build_failed("invalidate_api_key", ValidationError("Field [ids] cannot be an empty array"))
        blank = [str(i) for i, v in enumerate(ids) if not v.strip()]
        if blank:
            where = "position" if len(blank) == 1 else "positions"
            raise _build_failed(
                "invalidate_api_key",
                ValidationError(
                    f"Field [ids] must not contain blank id, but got blank id at index {where}: [{', '.join(blank)}]"
                ),
            )
    result = await request.services.apikeys.invalidate(
        request.auth,
        ids,
        body.string("name") or None,
        body.string("username") or None,
        body.string("realm_name") or None,
        bool(body.boolean("owner")),
    )
    out: dict[str, Any] = {
        "invalidated_api_keys": result.invalidated,
        "previously_invalidated_api_keys": [],
        "error_count": len(result.errors),
    }
    if result.errors:
        out["error_details"] = [error_detail(exc) for exc in result.errors]
    return out


async def clear_cache(request: RestRequest) -> dict[str, Any]:
    request.services.apikeys.clear_cache(request.path_list("ids"))
    return nodes_answer(request)


# -- cross-cluster -------------------------------------------------------------------------------------


def _access(value: Any, parser: str) -> tuple[list[IndicesPrivileges], list[IndicesPrivileges]]:
    access = Body(value, "cross_cluster_api_key_request_access")
    access.check_fields({"search", "replication"})
    groups: dict[str, list[IndicesPrivileges]] = {"search": [], "replication": []}
    for name in ("search", "replication"):
        if name not in access.data:
            continue
        entries = access.data[name]
        if entries is None:
            raise x_content_parse(
                f"[1:2] [cross_cluster_api_key_request_access] {name} doesn't support values of type: VALUE_NULL"
            )
        if not isinstance(entries, list):
            raise access.failed(name)
        for entry in entries:
            if isinstance(entry, dict) and "privileges" in entry:
                raise ParseError(
                    "failed to parse indices privileges for role [cross_cluster]. field [privileges] must not present"
                )
            if isinstance(entry, dict):
                entry = {**entry, "privileges": []}
            parsed = role_mod.parse(core.CROSS_CLUSTER, {"indices": [entry]})
            groups[name] += parsed.indices
    return groups["search"], groups["replication"]


async def create_cross_cluster(request: RestRequest) -> dict[str, Any]:
    body = request.body("cross_cluster_api_key_request", required=True)
    assert body is not None
    body.check_fields({"name", "access", "expiration", "metadata", "certificate_identity"})
    if "name" not in body.data:
        raise InvalidArgument("Required [name]")
    if "access" not in body.data:
        raise InvalidArgument("Required [access]")
    if body.data["access"] is None:
        raise x_content_parse(
            f"{body.where('access')} [cross_cluster_api_key_request] access doesn't support values of type: VALUE_NULL"
        )
    search, replication = _access(body.obj("access"), body.parser)
    # Elasticsearch's request builder refuses empty access (the domain's rule) while parsing, before the rest.
    for message in core.access_messages(search, replication):
        raise _build_failed(body.parser, InvalidArgument(message))
    spec = KeySpec(body.string("name"), _expiration(body), None, _metadata(body), body.string("certificate_identity"))
    return render_created(await request.services.apikeys.create_cross_cluster(request.auth, spec, search, replication))


async def update_cross_cluster(request: RestRequest) -> dict[str, Any]:
    body = request.body("update_cross_cluster_api_key_request_payload", required=True)
    assert body is not None
    body.check_fields({"access", "metadata", "expiration", "certificate_identity"})
    access = _access(body.obj("access"), body.parser) if body.has("access") else None
    metadata = _metadata(body)
    spec = UpdateSpec([request.path_params["id"]], None, metadata, _expiration(body), access)
    spec.set_certificate_identity = body.has("certificate_identity")  # null clears it
    spec.certificate_identity = body.string("certificate_identity", nullable=True)
    return {"updated": await request.services.apikeys.update_one(request.auth, spec, kind=core.CROSS_CLUSTER)}


def register(router: Router) -> None:
    # self_checked: the API-key service checks privileges itself, as manage_own_api_key depends on the request.
    router.add(("PUT", "POST"), "/_security/api_key", create, action=svc.CREATE, params=("refresh",), self_checked=True)
    router.add(("PUT", "POST"), "/_security/api_key/grant", grant, action=GRANT, params=("refresh",), self_checked=True)
    router.add(
        ("POST", "PUT"), "/_security/api_key/clone", clone, action=svc.CLONE, params=("refresh",), self_checked=True
    )
    router.add(
        "POST", "/_security/api_key/_bulk_grant", bulk_grant, action=BULK_GRANT, params=("refresh",), self_checked=True
    )
    router.add(
        "GET",
        "/_security/api_key",
        get,
        action=svc.GET,
        params=(
            "id",
            "name",
            "username",
            "realm_name",
            "owner",
            "with_limited_by",
            "with_profile_uid",
            "active_only",
        ),
        self_checked=True,
    )
    router.add(
        ("GET", "POST"),
        "/_security/_query/api_key",
        query,
        action=svc.QUERY,
        params=("with_limited_by", "with_profile_uid", "typed_keys", "sort"),
        self_checked=True,
    )
    router.add("PUT", "/_security/api_key/{ids}", update, action=svc.UPDATE, self_checked=True)
    router.add("POST", "/_security/api_key/_bulk_update", bulk_update, action=svc.BULK_UPDATE, self_checked=True)
    router.add("DELETE", "/_security/api_key", invalidate, action=svc.INVALIDATE, self_checked=True)
    router.add(
        "POST", "/_security/api_key/{ids}/_clear_cache", clear_cache, action="cluster:admin/xpack/security/cache/clear"
    )
    router.add(
        "POST", "/_security/cross_cluster/api_key", create_cross_cluster, action=svc.CC_CREATE, self_checked=True
    )
    router.add(
        "PUT", "/_security/cross_cluster/api_key/{id}", update_cross_cluster, action=svc.CC_UPDATE, self_checked=True
    )
