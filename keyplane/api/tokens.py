"""``/_security/oauth2/token``: access tokens by password, client credentials or refresh token."""

from __future__ import annotations

from typing import Any

from keyplane.errors import InvalidGrant, Unauthenticated, ValidationError
from keyplane.http.errors import RawError
from keyplane.http.request import RestRequest
from keyplane.http.routing import Router
from keyplane.security.authc import Authentication
from keyplane.tokens.core import Client

CREATE = "cluster:admin/xpack/security/token/create"
INVALIDATE = "cluster:admin/xpack/security/token/invalidate"


def _invalid_grant(description: str) -> RawError:
    # The token API answers in OAuth2's error format, as Elasticsearch does.
    return RawError(400, {"error": "invalid_grant", "error_description": description})


def _client(auth: Authentication) -> Client:
    """The client of a token request: the caller, as Elasticsearch records it (user and realm)."""
    return Client(auth.user.username, auth.lookup_realm["name"])


async def get_token(request: RestRequest) -> dict[str, Any]:
    body = request.body("token_request", required=True)
    assert body is not None
    body.check_fields({"grant_type", "username", "password", "refresh_token", "scope", "kerberos_ticket"})
    grant_type = body.string("grant_type")
    services = request.services
    if grant_type == "password":
        username, password = body.string("username"), body.string("password")
        messages = []
        if not username:
            messages.append("username is missing")
        if password is None:
            messages.append("password is missing")
        if messages:
            raise ValidationError(*messages)
        assert username is not None and password is not None
        try:
            auth = await services.passwords.authenticate(username, password, request.uri)
        except Unauthenticated:
            raise _invalid_grant(f"failed to authenticate user [{username}]") from None
        with_refresh = True
    elif grant_type == "client_credentials":
        auth, with_refresh = request.auth, False
        if auth.type == "api_key":
            raise _invalid_grant("an API key cannot create tokens")
    elif grant_type == "refresh_token":
        refresh = body.string("refresh_token")
        if not refresh:
            raise ValidationError("refresh_token is missing")
        try:
            token = await services.tokens.refresh(refresh, _client(request.auth))
        except InvalidGrant as exc:
            raise _invalid_grant(str(exc)) from None
        user = await services.passwords.lookup(token.username)
        if user is None:
            raise _invalid_grant("token has already been refreshed or is invalid")
        auth, with_refresh = await services.passwords.for_user(user), True
    elif grant_type is None:
        raise ValidationError("grant_type is missing")
    else:
        raise ValidationError(f"grant_type [{grant_type}] is not supported")
    out = await services.tokens.create(auth, _client(request.auth), with_refresh=with_refresh)
    out["authentication"] = auth.to_dict()
    return out


async def invalidate_token(request: RestRequest) -> dict[str, Any]:
    body = request.body("invalidate_token_request", required=True)
    assert body is not None
    body.check_fields({"token", "refresh_token", "realm_name", "username"})
    token, refresh = body.string("token"), body.string("refresh_token")
    realm, username = body.string("realm_name"), body.string("username")
    if not (token or refresh or realm or username):
        raise ValidationError("one of [token, refresh_token, realm_name, username] must be specified")
    if (token or refresh) and (realm or username):
        raise ValidationError("[realm_name] and [username] may not be used with [token] or [refresh_token]")
    if token and refresh:
        raise ValidationError("only one of [token, refresh_token] may be sent per request")
    return await request.services.tokens.invalidate(token=token, refresh_token=refresh, username=username, realm=realm)


def register(router: Router) -> None:
    router.add("POST", "/_security/oauth2/token", get_token, action=CREATE)
    router.add("DELETE", "/_security/oauth2/token", invalidate_token, action=INVALIDATE)
