"""``/_security/api_key`` and ``/_security/cross_cluster/api_key``: request parsing and responses.

Parsing follows Elasticsearch's object parsers (their names appear in error messages); the rules
live in ``keyplane.apikeys``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

from keyplane.api.common import add_profile_uids, page_window
from keyplane.apikeys import core
from keyplane.apikeys import service as svc
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
from keyplane.security.authc import Authentication
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
    )


async def create(request: RestRequest) -> dict[str, Any]:
    request.param("refresh")
    spec = parse_key_spec(request.json(required=True), "api_key_request", request.raw_body)
    return await request.services.apikeys.create(request.auth, spec)


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
    return await request.services.apikeys.clone(request.auth, spec)


GRANT_FIELDS = frozenset({"grant_type", "username", "password", "access_token", "run_as", "client_authentication"})


@dataclass
class _Grant:
    """Whose credentials a grant request carries; shared by grant and bulk grant."""

    type: str | None
    username: str | None
    password: str | None
    access_token: str | None
    run_as: str | None
    # The scheme of ``client_authentication`` (JWT realms' shared secret); "" when the block has none.
    client_scheme: str | None = None

    @classmethod
    def of(cls, body: Body) -> _Grant:
        client = body.obj("client_authentication")
        scheme = None
        if client is not None:
            inner = Body(client, "client_authentication", body.raw)
            inner.check_fields({"scheme", "value"})
            inner.string("value")
            scheme = inner.string("scheme") or ""
        return cls(
            body.string("grant_type"),
            body.string("username"),
            body.string("password"),
            body.string("access_token"),
            body.string("run_as"),
            scheme,
        )

    def messages(self) -> list[str]:
        if self.type is None:
            return ["[grant_type] is required"]
        out = []
        if self.type == "password":
            if self.username is None:
                out.append("[username] is required for grant_type [password]")
            if self.password is None:
                out.append("[password] is required for grant_type [password]")
            if self.access_token is not None:
                out.append("[access_token] is not supported for grant_type [password]")
            if self.client_scheme is not None:
                out.append("[client_authentication] is not supported for grant_type [password]")
        elif self.type == "access_token":
            if self.access_token is None:
                out.append("[access_token] is required for grant_type [access_token]")
            if self.username is not None:
                out.append("[username] is not supported for grant_type [access_token]")
            if self.password is not None:
                out.append("[password] is not supported for grant_type [access_token]")
            if self.client_scheme is not None and self.client_scheme != "SharedSecret":
                out.append("[client_authentication.scheme] must be set to [SharedSecret]")
        else:
            out.append(f"grant_type [{self.type}] is not supported")
        return out

    async def authenticate(self, request: RestRequest, action: str) -> Authentication:
        """Check the caller may grant, then authenticate the user the keys are granted to."""
        assert self.type is not None
        request.services.apikeys.authorize(request.auth, action, own=False)
        if self.client_scheme is not None and not _is_jwt(self.access_token or ""):
            # Client authentication belongs to JWT realms; an ordinary token cannot carry it.
            raise EsError(
                400, "security_exception", "[client_authentication] not supported with the supplied access_token type"
            )
        return await request.services.guard.grant_credentials(
            self.type, self.username, self.password, self.access_token, self.run_as, request.uri, action=action
        )


def _is_jwt(token: str) -> bool:
    """Whether a bearer token has a JWT's form: three base64url parts, the first a JSON header."""
    parts = token.split(".")
    if len(parts) != 3:
        return False
    try:
        header = orjson.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return False
    return isinstance(header, dict) and "alg" in header


async def grant(request: RestRequest) -> dict[str, Any]:
    request.param("refresh")
    body = request.body("grant_api_key_request", required=True)
    assert body is not None
    body.check_fields(GRANT_FIELDS | {"api_key"})
    api_key = body.obj("api_key")
    messages = []
    spec = None
    if api_key is None or not isinstance(api_key.get("name"), str) or not api_key.get("name"):
        messages.append("api key name is required")
    if api_key is not None:
        spec = parse_key_spec(api_key, "api_key_request", request.raw_body)
        if spec.name:
            messages += core.name_messages(spec.name)
    credentials = _Grant.of(body)
    messages += credentials.messages()
    if messages:
        raise ValidationError(*messages)
    assert spec is not None
    owner = await credentials.authenticate(request, GRANT)
    return await request.services.apikeys.create(owner, spec, check=False)


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
    messages = [] if specs else ["[api_keys] must not be empty"]
    for spec in specs:
        messages += core.name_messages(spec.name or "")
    credentials = _Grant.of(body)
    messages += credentials.messages()
    if messages:
        raise ValidationError(*messages)
    owner = await credentials.authenticate(request, BULK_GRANT)
    created, failed = await request.services.apikeys.bulk_create(owner, specs)
    return {"created": created, **_errors_body(failed)}


async def get(request: RestRequest) -> Reply:
    spec = GetSpec(
        id=request.param("id") or None,
        name=request.param("name") or None,
        username=request.param("username") or None,
        realm_name=request.param("realm_name") or None,
        owner=request.flag("owner"),
        with_limited_by=request.flag("with_limited_by"),
        active_only=request.flag("active_only"),
    )
    keys = await request.services.apikeys.get(request.auth, spec)
    if spec.id and not keys:
        return Reply({"api_keys": []}, status=404)
    if request.flag("with_profile_uid"):
        await add_profile_uids(request.services, keys, lambda key: key["realm"])
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
        typed_keys=request.flag("typed_keys"),
    )
    result = await request.services.apikeys.query(request.auth, spec)
    if request.flag("with_profile_uid"):
        await add_profile_uids(request.services, result["api_keys"], lambda key: key["realm"])
    return result


def _update_spec(body: Body | None, ids: list[str]) -> UpdateSpec:
    if body is None:
        return UpdateSpec(ids)
    return UpdateSpec(ids, _role_descriptors(body), _metadata(body), _expiration(body))


async def update(request: RestRequest) -> dict[str, Any]:
    ids = [request.path_params["ids"]]
    body = request.body("update_api_key_request_payload")
    if body is not None:
        body.check_fields(KEY_FIELDS - {"name"})
    result = await request.services.apikeys.update(request.auth, _update_spec(body, ids), kind=core.REST, bulk=False)
    if result.errors:
        raise next(iter(result.errors.values()))
    return {"updated": bool(result.updated)}


def _errors_body(result: BulkResult) -> dict[str, Any]:
    """Per-id failures of a bulk request, as ``errors: {count, details}``; nothing when all succeeded."""
    if not result.errors:
        return {}
    details = {}
    for key_id, exc in result.errors.items():
        err = from_domain(exc)
        details[key_id] = {"type": err.type, "reason": err.reason}
    return {"errors": {"count": len(details), "details": details}}


def _bulk_body(result: BulkResult) -> dict[str, Any]:
    return {"updated": result.updated, "noops": result.noops, **_errors_body(result)}


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
    return await request.services.apikeys.invalidate(
        request.auth,
        ids,
        body.string("name") or None,
        body.string("username") or None,
        body.string("realm_name") or None,
        bool(body.boolean("owner")),
    )


async def clear_cache(request: RestRequest) -> dict[str, Any]:
    request.services.apikeys.clear_cache(request.path_list("ids"))
    return request.services.nodes_response()


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
    if not search and not replication:
        empty = InvalidArgument("must specify non-empty access for either [search] or [replication]")
        raise _build_failed(body.parser, empty)
    spec = KeySpec(body.string("name"), _expiration(body), None, _metadata(body), body.string("certificate_identity"))
    return await request.services.apikeys.create_cross_cluster(request.auth, spec, search, replication)


async def update_cross_cluster(request: RestRequest) -> dict[str, Any]:
    body = request.body("update_cross_cluster_api_key_request_payload", required=True)
    assert body is not None
    body.check_fields({"access", "metadata", "expiration", "certificate_identity"})
    access = _access(body.obj("access"), body.parser) if body.has("access") else None
    metadata = _metadata(body)
    identity = body.has("certificate_identity")  # null clears it
    if access is None and metadata is None and not identity:
        raise ValidationError("must update either [access] or [metadata] for cross-cluster API keys")
    spec = UpdateSpec([request.path_params["id"]], None, metadata, _expiration(body), access)
    spec.set_certificate_identity = identity
    spec.certificate_identity = body.string("certificate_identity", nullable=True)
    result = await request.services.apikeys.update(request.auth, spec, kind=core.CROSS_CLUSTER, bulk=False)
    if result.errors:
        raise next(iter(result.errors.values()))
    return {"updated": bool(result.updated)}


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
