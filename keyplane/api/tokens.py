"""``/_security/oauth2/token``: access tokens by password, client credentials or refresh token."""

from __future__ import annotations

from typing import Any

from keyplane.api.authentication_view import render_authentication
from keyplane.errors import InvalidGrant
from keyplane.http.errors import RawError
from keyplane.http.request import RestRequest
from keyplane.http.routing import Router
from keyplane.tokens.core import TokenRequest
from keyplane.tokens.service import Invalidated, IssuedToken

CREATE = "cluster:admin/xpack/security/token/create"
INVALIDATE = "cluster:admin/xpack/security/token/invalidate"


def _invalid_grant(exc: InvalidGrant) -> RawError:
    # The token API answers in OAuth2's error format, as Elasticsearch does.
    return RawError(400, {"error": "invalid_grant", "error_description": str(exc)})


def _issued(token: IssuedToken) -> dict[str, Any]:
    out: dict[str, Any] = {"access_token": token.access_token, "type": "Bearer", "expires_in": token.expires_in}
    if token.refresh_token:
        out["refresh_token"] = token.refresh_token
    out["authentication"] = render_authentication(token.authentication)
    return out


def _invalidated(result: Invalidated) -> dict[str, Any]:
    return {
        "invalidated_tokens": result.invalidated,
        "previously_invalidated_tokens": result.previously_invalidated,
        "error_count": 0,
    }


async def get_token(request: RestRequest) -> dict[str, Any]:
    body = request.body("token_request", required=True)
    assert body is not None
    body.check_fields({"grant_type", "username", "password", "refresh_token", "scope", "kerberos_ticket"})
    grant_type = body.string("grant_type")
    # Only the fields of the grant type are read: an odd value in another one is ignored.
    if grant_type == "password":
        token_request = TokenRequest(grant_type, username=body.string("username"), password=body.string("password"))
    elif grant_type == "refresh_token":
        token_request = TokenRequest(grant_type, refresh_token=body.string("refresh_token"))
    else:
        token_request = TokenRequest(grant_type)
    try:
        return _issued(await request.services.tokens.grant(token_request, request.auth, request.uri))
    except InvalidGrant as exc:
        raise _invalid_grant(exc) from None


async def invalidate_token(request: RestRequest) -> dict[str, Any]:
    body = request.body("invalidate_token_request", required=True)
    assert body is not None
    body.check_fields({"token", "refresh_token", "realm_name", "username"})
    token, refresh = body.string("token"), body.string("refresh_token")
    realm, username = body.string("realm_name"), body.string("username")
    result = await request.services.tokens.invalidate(
        token=token, refresh_token=refresh, username=username, realm=realm
    )
    return _invalidated(result)


def register(router: Router) -> None:
    router.add("POST", "/_security/oauth2/token", get_token, action=CREATE)
    router.add("DELETE", "/_security/oauth2/token", invalidate_token, action=INVALIDATE)
