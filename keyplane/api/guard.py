"""The security filter every request passes: read credentials, resolve run-as, check the action."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from keyplane.errors import Forbidden, Unauthenticated
from keyplane.http.request import RestRequest
from keyplane.security.authc import Authentication
from keyplane.security.authz import denial_message

if TYPE_CHECKING:
    from keyplane.services import Services

RUN_AS_HEADER = "es-security-runas-user"

AUTHENTICATE = "cluster:admin/xpack/security/user/authenticate"
CHANGE_PASSWORD = "cluster:admin/xpack/security/user/change_password"
HAS_PRIVILEGES = "cluster:admin/xpack/security/user/has_privileges"
LIST_PRIVILEGES = "cluster:admin/xpack/security/user/list_privileges"


class SecurityGuard:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def authenticate(self, request: RestRequest) -> Authentication:
        header = request.headers.get("authorization")
        if not header:
            raise Unauthenticated(f"missing authentication credentials for REST request [{request.uri}]")
        scheme, _, credential = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            username, password = _basic(credential.strip(), request.uri)
            auth = await self.services.passwords.authenticate(username, password, request.uri)
        else:
            raise Unauthenticated(
                "unable to authenticate with provided credentials and anonymous access is not allowed "
                "for this request"
            )
        target = request.headers.get(RUN_AS_HEADER)
        if target is not None:
            auth = await self._run_as(auth, target)
        return auth

    async def _run_as(self, auth: Authentication, target: str) -> Authentication:
        if auth.permission.can_run_as(target):
            user = await self.services.passwords.lookup(target)
            if user is not None and user.enabled:
                return await self.services.passwords.for_user(user, authenticating=auth)
        auth.extra["run_as_denied"] = target
        return auth

    async def authorize(self, request: RestRequest, action: str) -> None:
        auth: Authentication = request.auth
        denied_target = auth.extra.get("run_as_denied")
        if denied_target is not None:
            who = auth.subject().describe()
            raise Forbidden(
                f"action [{action}] is unauthorized for {who}, because user "
                f"[{auth.authenticating_user.username}] is unauthorized to run as [{denied_target}]"
            )
        if self._same_user(request, action, auth):
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


def _basic(credential: str, uri: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(credential, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated(f"missing authentication credentials for REST request [{uri}]") from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise Unauthenticated(f"missing authentication credentials for REST request [{uri}]")
    return username, password
