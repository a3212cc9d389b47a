"""Which index privileges an index-level action needs, and the 403 Elasticsearch gives without them."""

from __future__ import annotations

from keyplane.errors import Forbidden
from keyplane.security import privileges as privs
from keyplane.security.identity import Authentication

DELETE_INDEX = "indices:admin/delete"
GET_INDEX = "indices:admin/get"

# The narrowest named privilege granting each action; broader ones are found through the privilege table.
_NEEDS = {DELETE_INDEX: "delete_index", GET_INDEX: "view_index_metadata"}


def granting(action: str) -> list[str]:
    """Named index privileges that grant ``action``, least powerful first (as a 403 lists them)."""
    wanted = _NEEDS[action]
    return [wanted] + [p for p in ("manage", "all") if p != wanted and privs.index_privilege_covers(p, wanted)]


def authorize(auth: Authentication, action: str, names: list[str]) -> None:
    """Allow ``action`` on every concrete name, or raise Elasticsearch's index-level 403."""
    permission = auth.permission
    wanted = _NEEDS[action]
    denied = [
        name
        for name in names
        if not (permission.has_index_privilege(name, wanted) or permission.has_index_privilege(name, action))
    ]
    if denied:
        raise Forbidden(
            f"action [{action}] is unauthorized for {auth.subject().describe()} on indices [{','.join(denied)}], "
            f"this action is granted by the index privileges [{','.join(granting(action))}]"
        )
