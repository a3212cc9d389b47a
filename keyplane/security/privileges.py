"""Named privileges: what each cluster privilege grants, and how index privileges imply each other.

A cluster privilege is a set of transport action patterns (``*`` matches any run of characters)
minus some excluded patterns, as Elasticsearch's ClusterPrivilegeResolver defines them. Only the
actions Keyplane serves are listed precisely; the other names Elasticsearch knows are accepted in
role descriptors and map to their own action families, which Keyplane never serves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache


@lru_cache(maxsize=4096)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Elasticsearch's simple wildcard: ``*`` matches anything, everything else is literal."""
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in pattern), re.DOTALL)


def glob_match(pattern: str, value: str) -> bool:
    if pattern == "*":
        return True
    if "*" not in pattern:
        return pattern == value
    return glob_regex(pattern).fullmatch(value) is not None


@dataclass(frozen=True)
class ClusterPrivilege:
    name: str
    actions: tuple[str, ...]
    excluded: tuple[str, ...] = field(default=())
    # Grants its actions only over the caller's own resources (manage_own_api_key); the service
    # that knows the request decides whether it is about the caller's own keys.
    owner_scoped: bool = False

    def grants(self, action: str) -> bool:
        if any(glob_match(p, action) for p in self.excluded):
            return False
        return any(glob_match(p, action) for p in self.actions)


SECURITY = "cluster:admin/xpack/security/"
CONNECTOR = "cluster:admin/xpack/connector/"
REINDEX_MONITOR = "cluster:monitor/reindex/*"

_CLUSTER = [
    ClusterPrivilege("none", ()),
    ClusterPrivilege("all", ("cluster:*",)),
    ClusterPrivilege("monitor", ("cluster:monitor/*",)),
    ClusterPrivilege("manage", ("cluster:*",), (SECURITY + "*",)),
    ClusterPrivilege("manage_security", (SECURITY + "*",), (SECURITY + "delegate_pki",)),
    ClusterPrivilege(
        "read_security",
        (
            SECURITY + "*/get",
            SECURITY + "*/query",
            SECURITY + "user/has_privileges",
            SECURITY + "user/list_privileges",
            SECURITY + "profile/has_privileges",
            SECURITY + "profile/suggest",
        ),
    ),
    ClusterPrivilege("manage_api_key", (SECURITY + "api_key/*",)),
    ClusterPrivilege("manage_own_api_key", (SECURITY + "api_key/*",), (SECURITY + "api_key/grant*",), True),
    ClusterPrivilege("grant_api_key", (SECURITY + "api_key/grant*",)),
    # Elasticsearch 9.4: the clone API key action alone (manage_api_key and manage_security hold it too).
    ClusterPrivilege("clone_api_key", (SECURITY + "api_key/clone",)),
    ClusterPrivilege("manage_token", (SECURITY + "token/*", SECURITY + "refresh_token/*")),
    ClusterPrivilege("manage_user_profile", (SECURITY + "profile/*",)),
    ClusterPrivilege("manage_service_account", (SECURITY + "service_account/*",)),
    ClusterPrivilege("manage_saml", (SECURITY + "saml/*",)),
    ClusterPrivilege("manage_oidc", (SECURITY + "oidc/*",)),
    ClusterPrivilege("delegate_pki", (SECURITY + "delegate_pki",)),
    ClusterPrivilege("cross_cluster_search", ("cluster:internal/remote_cluster/*",)),
    ClusterPrivilege("cross_cluster_replication", ("cluster:internal/remote_cluster/*",)),
    ClusterPrivilege("manage_connector", (CONNECTOR + "*",), (CONNECTOR + "secret/*",)),
    ClusterPrivilege(
        "monitor_connector",
        (CONNECTOR + "get", CONNECTOR + "list", CONNECTOR + "sync_job/get", CONNECTOR + "sync_job/list"),
    ),
    ClusterPrivilege("read_connector_secrets", (CONNECTOR + "secret/get",)),
    # Elasticsearch 9.5: the reindex task APIs (list, get: cluster:monitor/reindex/*; cancel,
    # rethrottle: cluster:admin/reindex/*). Keyplane serves none of them.
    ClusterPrivilege("monitor_reindex", (REINDEX_MONITOR,)),
    ClusterPrivilege("manage_reindex", (REINDEX_MONITOR, "cluster:admin/reindex/*")),
    ClusterPrivilege(
        "write_connector_secrets",
        (CONNECTOR + "secret/post", CONNECTOR + "secret/put", CONNECTOR + "secret/delete"),
    ),
]

# Names Elasticsearch accepts whose actions Keyplane does not serve.
_OTHER_NAMES = """
monitor_data_stream_global_retention monitor_inference monitor_ml monitor_text_structure
monitor_transform_deprecated monitor_transform manage_inference manage_ml manage_transform_deprecated
manage_transform manage_watcher monitor_watcher monitor_rollup manage_data_stream_global_retention
manage_ccr manage_rollup manage_index_templates manage_ingest_pipelines read_pipeline transport_client
manage_pipeline manage_autoscaling manage_ilm read_ilm manage_slm read_slm manage_enrich
manage_logstash_pipelines read_ccr create_snapshot monitor_snapshot monitor_enrich
manage_search_application manage_behavioral_analytics post_behavioral_event manage_search_query_rules
manage_search_synonyms read_fleet_secrets write_fleet_secrets monitor_esql cancel_task monitor_stats
""".split()

CLUSTER_PRIVILEGES: dict[str, ClusterPrivilege] = {p.name: p for p in _CLUSTER}
for _name in _OTHER_NAMES:
    _family = _name.split("_", 1)[1] if "_" in _name else _name
    CLUSTER_PRIVILEGES[_name] = ClusterPrivilege(_name, (f"cluster:admin/xpack/{_family}/*",))

# Least to most powerful, the order Elasticsearch lists them in a 403 message.
DENIAL_ORDER = [
    "grant_api_key",
    "clone_api_key",
    "read_connector_secrets",
    "write_connector_secrets",
    "monitor_connector",
    "manage_own_api_key",
    "read_security",
    "manage_token",
    "manage_user_profile",
    "manage_service_account",
    "monitor",
    "manage_connector",
    "manage_api_key",
    "manage_security",
    "manage",
    "all",
]


def is_action_pattern(name: str) -> bool:
    return name.startswith(("cluster:", "indices:", "internal:"))


def cluster_privilege(name: str) -> ClusterPrivilege | None:
    if name in CLUSTER_PRIVILEGES:
        return CLUSTER_PRIVILEGES[name]
    if is_action_pattern(name):
        return ClusterPrivilege(name, (name,))
    return None


def unknown_cluster_privilege_message(name: str) -> str:
    names = sorted(CLUSTER_PRIVILEGES)
    return (
        f"unknown cluster privilege [{name}]. a privilege must be either one of the predefined cluster "
        f"privilege names [{','.join(names)}] or a pattern over one of the available cluster actions"
    )


def privileges_granting(action: str, *, own: bool = False) -> list[str]:
    """Every named privilege that would allow ``action``, least powerful first.

    ``own`` says the request concerns only the caller's own resources, so owner-scoped
    privileges count too.
    """
    return [
        n
        for n in DENIAL_ORDER
        if CLUSTER_PRIVILEGES[n].grants(action) and (own or not CLUSTER_PRIVILEGES[n].owner_scoped)
    ]


# -- index privileges ---------------------------------------------------------------------------

_INDEX_IMPLIES: dict[str, set[str]] = {
    "none": set(),
    "read": {"read_cross_cluster"},
    "read_cross_cluster": set(),
    "create_doc": set(),
    "create": {"create_doc"},
    "index": {"create", "create_doc"},
    "delete": set(),
    "write": {"index", "create", "create_doc", "delete"},
    "monitor": set(),
    "view_index_metadata": set(),
    "create_index": set(),
    "delete_index": set(),
    "maintenance": set(),
    "auto_configure": set(),
    "manage_follow_index": set(),
    "manage_leader_index": set(),
    "manage_ilm": set(),
    "manage_data_stream_lifecycle": set(),
    "manage_failure_store": set(),
    "read_failure_store": set(),
    "cross_cluster_replication": set(),
    "cross_cluster_replication_internal": set(),
    # ES|QL views (9.4), granted on the view name: manage_view is the three of them, and
    # manage (like all) grants every view operation.
    "create_view": set(),
    "delete_view": set(),
    "read_view_metadata": set(),
    "manage_view": {"create_view", "delete_view", "read_view_metadata"},
    "manage": {
        "monitor",
        "view_index_metadata",
        "create_index",
        "delete_index",
        "maintenance",
        "auto_configure",
        "manage_follow_index",
        "manage_ilm",
        "manage_data_stream_lifecycle",
        "manage_failure_store",
        "manage_view",
        "create_view",
        "delete_view",
        "read_view_metadata",
    },
    "all": set(),
}
INDEX_PRIVILEGES = frozenset(_INDEX_IMPLIES)


def index_privilege_known(name: str) -> bool:
    return name in INDEX_PRIVILEGES or name.startswith("indices:")


def unknown_index_privilege_message(name: str) -> str:
    return (
        f"unknown index privilege [{name}]. a privilege must be either one of the predefined fixed indices "
        f"privileges [{','.join(sorted(INDEX_PRIVILEGES))}] or a pattern over one of the available index actions"
    )


def index_privilege_covers(held: str, wanted: str) -> bool:
    """Does holding ``held`` on an index grant ``wanted`` on it?"""
    if held == "all" or held == wanted:
        return True
    if held.startswith("indices:"):
        return glob_match(held, wanted)
    return wanted in _INDEX_IMPLIES.get(held, set())
