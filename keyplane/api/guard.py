"""The security filter every request passes: read credentials, resolve run-as, check the action."""

from __future__ import annotations

import base64
import binascii
from dataclasses import replace
from typing import TYPE_CHECKING

from keyplane.apikeys import hashing
from keyplane.apikeys.core import API_KEY_REALM, ApiKey
from keyplane.apikeys.service import GRANT
from keyplane.errors import CredentialsRejected, Forbidden, Unauthenticated
from keyplane.http.request import RestRequest
from keyplane.security.authc import Authentication
from keyplane.security.authz import Permission, denial_message
from keyplane.security.users import User
from keyplane.service_accounts import core as service_core

if TYPE_CHECKING:
    from keyplane.services import Services

RUN_AS_HEADER = "es-security-runas-user"
ANONYMOUS_REFUSED = (
    "unable to authenticate with provided credentials and anonymous access is not allowed for this request"
)

AUTHENTICATE = "cluster:admin/xpack/security/user/authenticate"
CHANGE_PASSWORD = "cluster:admin/xpack/security/user/change_password"
HAS_PRIVILEGES = "cluster:admin/xpack/security/user/has_privileges"
LIST_PRIVILEGES = "cluster:admin/xpack/security/user/list_privileges"


def _rejected(kind: str, exc: CredentialsRejected) -> Unauthenticated:
    if exc.terminal:
        return Unauthenticated(str(exc))
    return Unauthenticated(ANONYMOUS_REFUSED, {"additional_unsuccessful_credentials": f"{kind}: {exc}"})


class SecurityGuard:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def authenticate(self, request: RestRequest) -> Authentication:
        header = request.headers.get("authorization")
        if not header:
            raise Unauthenticated(f"missing authentication credentials for REST request [{request.uri}]")
        scheme, _, credential = header.strip().partition(" ")
        scheme, credential = scheme.lower(), credential.strip()
        if scheme == "basic":
            username, password = _basic(credential, request.uri)
            auth = await self.services.passwords.authenticate(username, password, request.uri)
        elif scheme == "apikey":
            auth = await self.api_key(credential)
        elif scheme == "bearer":
            auth = await self.bearer(credential)
        else:
            raise Unauthenticated(ANONYMOUS_REFUSED)
        target = request.headers.get(RUN_AS_HEADER)
        if target is not None:
            auth = await self._run_as(auth, target)
        return auth

    async def api_key(self, credential: str) -> Authentication:
        parts = hashing.decode(credential)
        if parts is None:
            raise _rejected("API key", CredentialsRejected("invalid ApiKey value"))
        try:
            entry = await self.services.apikeys.authenticate(*parts)
        except CredentialsRejected as exc:
            raise _rejected("API key", exc) from None
        if entry.authentication is None:
            entry.authentication = self._for_key(entry.key, entry.permission)
        return entry.authentication

    @staticmethod
    def _for_key(key: ApiKey, permission: Permission) -> Authentication:
        creator = key.creator
        owner = User(
            creator.principal, roles=[], full_name=creator.full_name, email=creator.email, metadata=creator.metadata
        )
        api_key = {"id": key.id} if key.name is None else {"id": key.id, "name": key.name}
        auth = Authentication(
            owner, owner, API_KEY_REALM, API_KEY_REALM, "api_key", [], [], permission, api_key=api_key
        )
        auth.extra["api_key_has_descriptors"] = bool(key.role_descriptors)
        return auth

    async def bearer(self, credential: str) -> Authentication:
        service_token = service_core.decode(credential)
        if service_token is not None:
            return await self._service_account(*service_token)
        try:
            token = await self.services.tokens.check(credential)
        except CredentialsRejected as exc:
            raise _rejected("Bearer token", exc) from None
        user = await self.services.passwords.lookup(token.username)
        if user is None or not user.enabled:
            raise _rejected("Bearer token", CredentialsRejected("token owner no longer exists or is disabled"))
        auth = await self.services.passwords.for_user(user)
        auth.type = "token"
        return auth

    async def _service_account(self, token: service_core.TokenId, secret: str) -> Authentication:
        try:
            principal = await self.services.service_accounts.authenticate(token, secret)
        except CredentialsRejected as exc:
            raise _rejected("Service account", exc) from None
        user = service_core.user(principal)
        permission = Permission([service_core.ACCOUNTS[principal]])
        realm = service_core.REALM
        auth = Authentication(user, user, realm, realm, "token", [], [], permission)
        auth.extra["token"] = {"name": token.name, "type": "_service_account_index"}
        return auth

    async def _run_as(self, auth: Authentication, target: str) -> Authentication:
        if auth.permission.can_run_as(target):
            user = await self.services.passwords.lookup(target)
            if user is not None and user.enabled:
                return await self.services.passwords.for_user(user, authenticating=auth)
        # A copy: the authentication may be cached and shared by other requests.
        return replace(auth, extra={**auth.extra, "run_as_denied": target})

    async def authorize(self, request: RestRequest, action: str | None, *, self_checked: bool) -> None:
        auth: Authentication = request.auth
        denied_target = auth.extra.get("run_as_denied")
        if denied_target is not None:
            raise Forbidden(
                f"action [{action}] is unauthorized for {auth.subject().describe()}, because user "
                f"[{auth.authenticating_user.username}] is unauthorized to run as [{denied_target}]"
            )
        if self_checked or action is None or self._same_user(request, action, auth):
            return
        if not auth.permission.grants_action(action):
            raise Forbidden(denial_message(action, auth.subject()))

    @staticmethod
    def _same_user(request: RestRequest, action: str, auth: Authentication) -> bool:
        """Actions a user may always take on their own account (RBACEngine.checkSameUserPermissions)."""
        if action == AUTHENTICATE or action == LIST_PRIVILEGES:
            return True
        username = request.path_params.get("username", request.path_params.get("user"))
        if action == HAS_PRIVILEGES:
            return username is None or username == auth.user.username
        if action == CHANGE_PASSWORD:
            own = username is None or username == auth.user.username
            return own and not auth.is_run_as and auth.type == "realm"
        return False

    async def grant_credentials(
        self,
        grant_type: str,
        username: str | None,
        password: str | None,
        access_token: str | None,
        run_as: str | None,
        uri: str,
        *,
        failure: str = "Failed to authenticate api key grant",
        action: str = GRANT,
    ) -> Authentication:
        """Authenticate the user something is granted to (an API key, a profile); failures are 403."""
        try:
            if grant_type == "password":
                assert username is not None and password is not None
                auth = await self.services.passwords.authenticate(username, password, uri)
            else:
                assert access_token is not None
                auth = await self.bearer(access_token)
        except Unauthenticated:
            raise Forbidden(failure) from None
        if run_as is not None:
            auth = await self._run_as(auth, run_as)
            if auth.extra.get("run_as_denied"):
                raise Forbidden(
                    f"action [{action}] is unauthorized for "
                    f"{auth.subject().describe()}, because user [{auth.authenticating_user.username}] "
                    f"is unauthorized to run as [{run_as}]"
                )
        return auth


def _basic(credential: str, uri: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(credential, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated(f"missing authentication credentials for REST request [{uri}]") from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise Unauthenticated(f"missing authentication credentials for REST request [{uri}]")
    return username, password
