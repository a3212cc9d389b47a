"""Granting API keys to another user (grant and bulk grant): the request's rules, and the operation.

A grant carries the credentials of the user the keys are for, by password or by access token,
optionally running as a third user. The caller needs ``grant_api_key``; the grantee is authenticated
by the security domain and owns the keys as if they had created them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import orjson

from keyplane.apikeys import core
from keyplane.apikeys.core import CreatedKey
from keyplane.apikeys.service import BULK_GRANT, GRANT, ApiKeyService, BulkResult, KeySpec
from keyplane.errors import KeyplaneError, ValidationError
from keyplane.security.authentication import Grant, Grantees
from keyplane.security.identity import Authentication

FAILURE = "Failed to authenticate api key grant"
SHARED_SECRET = "SharedSecret"


@dataclass(frozen=True)
class GrantRequest:
    """Whose credentials a grant request carries, shared by grant and bulk grant."""

    credentials: Grant
    # The scheme of ``client_authentication`` (JWT realms' shared secret); "" when the block names none,
    # ``None`` without the block.
    client_scheme: str | None = None


class ClientAuthenticationRefused(KeyplaneError):
    """``client_authentication`` came with an access token that is no JWT (a 400 security_exception)."""

    def __init__(self) -> None:
        super().__init__("[client_authentication] not supported with the supplied access_token type")


def credential_messages(request: GrantRequest) -> list[str]:
    """Validation messages for the grant type and the credentials that go with it."""
    grant, scheme = request.credentials, request.client_scheme
    if grant.type is None:
        return ["[grant_type] is required"]
    out = []
    if grant.type == "password":
        if grant.username is None:
            out.append("[username] is required for grant_type [password]")
        if grant.password is None:
            out.append("[password] is required for grant_type [password]")
        if grant.access_token is not None:
            out.append("[access_token] is not supported for grant_type [password]")
        if scheme is not None:
            out.append("[client_authentication] is not supported for grant_type [password]")
    elif grant.type == "access_token":
        if grant.access_token is None:
            out.append("[access_token] is required for grant_type [access_token]")
        if grant.username is not None:
            out.append("[username] is not supported for grant_type [access_token]")
        if grant.password is not None:
            out.append("[password] is not supported for grant_type [access_token]")
        if scheme is not None and scheme != SHARED_SECRET:
            out.append("[client_authentication.scheme] must be set to [SharedSecret]")
    else:
        out.append(f"grant_type [{grant.type}] is not supported")
    return out


def key_messages(spec: KeySpec | None) -> list[str]:
    """Messages for the one key of a grant; ``None`` when the request names no key.

    A grant counts the key's name only when the request gives it as a JSON string: a number or a
    boolean, read as text by create and bulk grant, is refused here as a missing name.
    """
    return core.name_messages(spec.name if spec is not None and spec.name_is_string else None)


def bulk_key_messages(specs: list[KeySpec]) -> list[str]:
    messages = [] if specs else ["[api_keys] must not be empty"]
    for spec in specs:
        messages += core.name_messages(spec.name or "")
    return messages


def is_jwt(token: str) -> bool:
    """Whether a bearer token has a JWT's form: three base64url parts, the first a JSON header."""
    parts = token.split(".")
    if len(parts) != 3:
        return False
    try:
        header = orjson.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return False
    return isinstance(header, dict) and "alg" in header


def client_authentication_allowed(request: GrantRequest) -> bool:
    """Client authentication belongs to JWT realms: an ordinary access token cannot carry it."""
    return request.client_scheme is None or is_jwt(request.credentials.access_token or "")


class ApiKeyGrants:
    def __init__(self, apikeys: ApiKeyService, grantees: Grantees) -> None:
        self.apikeys = apikeys
        self.grantees = grantees

    async def grant(self, caller: Authentication, request: GrantRequest, spec: KeySpec | None, uri: str) -> CreatedKey:
        """A key for the user ``request`` authenticates, asked for by ``caller``."""
        messages = key_messages(spec) + credential_messages(request)
        if spec is not None:
            messages += self.apikeys.lifetime_messages(spec)  # before the grantee is authenticated
        if messages:
            raise ValidationError(*messages)
        assert spec is not None  # a key without one has no name, refused above
        owner = await self._grantee(caller, request, GRANT, uri)
        return await self.apikeys.create(owner, spec, check=False)

    async def bulk_grant(
        self, caller: Authentication, request: GrantRequest, specs: list[KeySpec], uri: str
    ) -> tuple[list[CreatedKey], BulkResult]:
        """Keys for the user ``request`` authenticates: those created, and the failures by key id."""
        messages = bulk_key_messages(specs) + credential_messages(request)
        messages += [m for spec in specs for m in self.apikeys.lifetime_messages(spec)]
        if messages:
            raise ValidationError(*messages)
        owner = await self._grantee(caller, request, BULK_GRANT, uri)
        return await self.apikeys.bulk_create(owner, specs)

    async def _grantee(self, caller: Authentication, request: GrantRequest, action: str, uri: str) -> Authentication:
        """Check the caller may grant, then authenticate the user the keys are granted to."""
        self.apikeys.authorize(caller, action, own=False)
        if not client_authentication_allowed(request):
            raise ClientAuthenticationRefused
        return await self.grantees.grantee(request.credentials, uri, action=action, failure=FAILURE)
