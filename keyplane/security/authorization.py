"""May an authenticated caller take a REST action? The check every route passes before its handler.

A refused run-as fails every action; a few actions are always allowed on the caller's own account
(Elasticsearch's ``RBACEngine.checkSameUserPermissions``); anything else needs a cluster privilege
granting the action. Routes whose privileges depend on the request body check them in their
service instead (``self_checked``).
"""

from __future__ import annotations

from collections.abc import Mapping

from keyplane.errors import Forbidden
from keyplane.security.identity import Authentication
from keyplane.security.permission import denial_message

AUTHENTICATE = "cluster:admin/xpack/security/user/authenticate"
CHANGE_PASSWORD = "cluster:admin/xpack/security/user/change_password"
HAS_PRIVILEGES = "cluster:admin/xpack/security/user/has_privileges"
LIST_PRIVILEGES = "cluster:admin/xpack/security/user/list_privileges"


def run_as_refused(action: str | None, auth: Authentication, target: str) -> Forbidden:
    """The 403 of a request whose authenticated user may not run as ``target``."""
    return Forbidden(
        f"action [{action}] is unauthorized for {auth.subject().describe()}, because user "
        f"[{auth.authenticating_user.username}] is unauthorized to run as [{target}]"
    )


def named_user(path_params: Mapping[str, str]) -> str | None:
    """The account a request names in its path (``{username}`` or ``{user}``), if any."""
    return path_params.get("username", path_params.get("user"))


def on_own_account(action: str, auth: Authentication, username: str | None) -> bool:
    """Actions a user may always take on their own account; ``username`` is the one the request names."""
    if action == AUTHENTICATE or action == LIST_PRIVILEGES:
        return True
    own = username is None or username == auth.user.username
    if action == HAS_PRIVILEGES:
        return own
    if action == CHANGE_PASSWORD:
        # Only a password the caller proved: not when running as another, nor with a key or token.
        return own and not auth.is_run_as and auth.type == "realm"
    return False


def authorize(auth: Authentication, action: str | None, path_params: Mapping[str, str], *, self_checked: bool) -> None:
    """Allow the route's action, or raise Elasticsearch's 403."""
    if auth.run_as_denied is not None:
        raise run_as_refused(action, auth, auth.run_as_denied)
    if self_checked or action is None or on_own_account(action, auth, named_user(path_params)):
        return
    if not auth.permission.grants_action(action):
        raise Forbidden(denial_message(action, auth.subject()))


def require_superuser(auth: Authentication, action: str) -> None:
    """Allow only a user (not an API key) holding the cluster privilege ``all``."""
    if auth.api_key is not None or not auth.permission.has_cluster_privilege("all"):
        raise Forbidden(f"action [{action}] is unauthorized for {auth.subject().describe()}")
