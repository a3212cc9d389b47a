"""Which index privileges an index-level action needs, and the 403 Elasticsearch gives without them."""

from __future__ import annotations

from keyplane.errors import Forbidden
from keyplane.security.identity import Authentication
from keyplane.security.permission import LimitedPermission, Permission
from keyplane.security.privileges import index_privilege_covers

DELETE_INDEX = "indices:admin/delete"
GET_INDEX = "indices:admin/get"
CREATE_INDEX = "indices:admin/create"
AUTO_CREATE = "indices:admin/auto_create"
REFRESH = "indices:admin/refresh"
INDEX_DOC = "indices:data/write/index"
UPDATE_DOC = "indices:data/write/update"
DELETE_DOC = "indices:data/write/delete"
GET_DOC = "indices:data/read/get"
SEARCH = "indices:data/read/search"
GET_MAPPINGS = "indices:admin/mappings/get"
PUT_MAPPING = "indices:admin/mapping/put"
STATS = "indices:monitor/stats"
GET_SETTINGS = "indices:monitor/settings/get"
MANAGE_ALIASES = "indices:admin/aliases"
DELETE_BY_QUERY = "indices:data/write/delete/byquery"
UPDATE_BY_QUERY = "indices:data/write/update/byquery"

# The named privileges granting each action, in the order a 403 lists them (Elasticsearch's order:
# narrower privileges first, then by name, ``all`` last).
_GRANTED_BY = {
    DELETE_INDEX: ("delete_index", "manage", "all"),
    GET_INDEX: ("view_index_metadata", "manage", "all"),
    CREATE_INDEX: ("create_index", "manage", "all"),
    AUTO_CREATE: ("auto_configure", "create_index", "manage", "all"),
    REFRESH: ("maintenance", "manage", "all"),
    INDEX_DOC: ("create_doc", "create", "index", "write", "all"),
    UPDATE_DOC: ("index", "write", "all"),
    DELETE_DOC: ("delete", "write", "all"),
    GET_DOC: ("read", "all"),
    SEARCH: ("read", "all"),
    # Elasticsearch's delete privilege is indices:data/write/delete*, index covers indices:data/write/update*.
    DELETE_BY_QUERY: ("delete", "write", "all"),
    UPDATE_BY_QUERY: ("index", "write", "all"),
}
# An index request that may only create (op_type=create) is also allowed by create_doc; one that may
# overwrite needs at least create (Elasticsearch's create privilege covers overwriting index requests).
_OVERWRITE = ("create", "index", "write", "all")


def granting(action: str) -> list[str]:
    """Named index privileges that grant ``action``, as a 403 lists them."""
    return list(_GRANTED_BY[action])


def allowed(auth: Authentication, action: str, name: str, *, overwrite: bool = False) -> bool:
    """Whether the caller may run ``action`` on the index ``name``."""
    permission = auth.permission
    names = _OVERWRITE if overwrite else _GRANTED_BY[action]
    return permission.has_index_privilege(name, action) or any(
        permission.has_index_privilege(name, privilege) for privilege in names
    )


def authorize(auth: Authentication, action: str, names: list[str], *, overwrite: bool = False) -> None:
    """Allow ``action`` on every concrete name, or raise Elasticsearch's index-level 403."""
    denied = [name for name in names if not allowed(auth, action, name, overwrite=overwrite)]
    if denied:
        raise Forbidden(
            f"action [{action}] is unauthorized for {auth.subject().describe()} on indices [{','.join(denied)}], "
            f"this action is granted by the index privileges [{','.join(granting(action))}]"
        )


# -- bulk and multi-get ------------------------------------------------------------------------------

BULK = "indices:data/write/bulk"
MGET = "indices:data/read/mget"
MGET_SHARD = "indices:data/read/mget[shard]"
# The actions Elasticsearch authorizes for each bulk item on its index (index and create are told apart).
BULK_ITEM_ACTIONS = {
    "index": "indices:data/write/index:op_type/index",
    "create": "indices:data/write/index:op_type/create",
    "update": UPDATE_DOC,
    "delete": DELETE_DOC,
}
_GRANTED_BY.update(
    {
        BULK: ("create_doc", "create", "delete", "index", "write", "all"),
        BULK_ITEM_ACTIONS["index"]: ("create", "index", "write", "all"),
        BULK_ITEM_ACTIONS["create"]: ("create_doc", "create", "index", "write", "all"),
        MGET: ("read", "all"),
        MGET_SHARD: ("read", "all"),
    }
)


def _grants_somewhere(permission: Permission, action: str) -> bool:
    if isinstance(permission, LimitedPermission):
        return _grants_somewhere(permission.assigned, action) and _grants_somewhere(permission.limited_by, action)
    names = set(_GRANTED_BY[action]) | {action}
    return any(
        index_privilege_covers(held, wanted)
        for group in permission.indices
        for held in group.privileges
        for wanted in names
    )


def authorize_somewhere(auth: Authentication, action: str) -> None:
    """A request over many indices (bulk, mget) needs its action granted on some index before its items are
    looked at one by one; without it, Elasticsearch's 403 names no index."""
    if not _grants_somewhere(auth.permission, action):
        raise Forbidden(
            f"action [{action}] is unauthorized for {auth.subject().describe()}, "
            f"this action is granted by the index privileges [{','.join(granting(action))}]"
        )


# -- index metadata: mappings, settings, statistics --------------------------------------------------

_GRANTED_BY.update(
    {
        GET_MAPPINGS: ("view_index_metadata", "manage", "all"),
        # Since 8.x the write privileges grant only the automatic mapping update of a document write.
        PUT_MAPPING: ("manage", "all"),
        STATS: ("monitor", "manage", "all"),
        GET_SETTINGS: ("monitor", "view_index_metadata", "manage", "all"),
        MANAGE_ALIASES: ("manage", "all"),
    }
)
