"""Which routes are content-index requests, and what each asks of Keyplane's role model.

The table is keyed by the route's template, as Keyplane's router matched it: the system-index routes are
literal templates (``/.elastic-connectors/_search``) and the security and connector APIs have templates of
their own, so none of them is ever found here and they stay in Keyplane.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from keyplane.connectors import system_index
from keyplane.security import index_access

# expression: index names and wildcards, resolved to what the caller may see; single: names taken
# literally; cluster: a cluster action the dispatcher has authorized, about indices that live upstream.
Kind = Literal["expression", "single", "delete_index", "bulk", "mget", "scroll", "cluster"]
Write = Literal["overwrite", "create"]


@dataclass(frozen=True)
class Rule:
    action: str
    kind: Kind
    # Writes that may create their index (Elasticsearch's auto-create then needs its own privilege).
    write: Write | None = None
    # For an index-less template (``/_search``), the same request over named indices, so that "every
    # index" can be sent as the list of indices the caller may see.
    indexed: str | None = None
    # A search that may open a scroll, whose id then belongs to the caller.
    opens_scroll: bool = False


_SEARCH = Rule(index_access.SEARCH, "expression", opens_scroll=True)
_SCROLL = Rule(index_access.SEARCH, "scroll")
_BULK = Rule(index_access.BULK, "bulk")
_MGET = Rule(index_access.MGET, "mget")

RULES: dict[tuple[str, str], Rule] = {
    ("PUT", "/{index}"): Rule(index_access.CREATE_INDEX, "single"),
    ("DELETE", "/{index}"): Rule(index_access.DELETE_INDEX, "delete_index"),
    ("GET", "/{index}"): Rule(index_access.GET_INDEX, "expression"),
    ("GET", "/{index}/_refresh"): Rule(index_access.REFRESH, "expression"),
    ("POST", "/{index}/_refresh"): Rule(index_access.REFRESH, "expression"),
    ("GET", "/_refresh"): Rule(index_access.REFRESH, "expression", indexed="/{index}/_refresh"),
    ("POST", "/_refresh"): Rule(index_access.REFRESH, "expression", indexed="/{index}/_refresh"),
    ("PUT", "/{index}/_doc/{id}"): Rule(index_access.INDEX_DOC, "single", write="overwrite"),
    ("POST", "/{index}/_doc/{id}"): Rule(index_access.INDEX_DOC, "single", write="overwrite"),
    ("POST", "/{index}/_doc"): Rule(index_access.INDEX_DOC, "single", write="create"),
    ("PUT", "/{index}/_create/{id}"): Rule(index_access.INDEX_DOC, "single", write="create"),
    ("POST", "/{index}/_create/{id}"): Rule(index_access.INDEX_DOC, "single", write="create"),
    ("GET", "/{index}/_doc/{id}"): Rule(index_access.GET_DOC, "single"),
    ("GET", "/{index}/_source/{id}"): Rule(index_access.GET_DOC, "single"),
    ("DELETE", "/{index}/_doc/{id}"): Rule(index_access.DELETE_DOC, "single"),
    ("POST", "/{index}/_update/{id}"): Rule(index_access.UPDATE_DOC, "single", write="create"),
    ("GET", "/{index}/_count"): Rule(index_access.SEARCH, "expression"),
    ("POST", "/{index}/_count"): Rule(index_access.SEARCH, "expression"),
    ("GET", "/_count"): Rule(index_access.SEARCH, "expression", indexed="/{index}/_count"),
    ("POST", "/_count"): Rule(index_access.SEARCH, "expression", indexed="/{index}/_count"),
    ("GET", "/{index}/_search"): _SEARCH,
    ("POST", "/{index}/_search"): _SEARCH,
    ("GET", "/_search"): Rule(index_access.SEARCH, "expression", indexed="/{index}/_search", opens_scroll=True),
    ("POST", "/_search"): Rule(index_access.SEARCH, "expression", indexed="/{index}/_search", opens_scroll=True),
    ("GET", "/_search/scroll"): _SCROLL,
    ("POST", "/_search/scroll"): _SCROLL,
    ("DELETE", "/_search/scroll"): _SCROLL,
    ("GET", "/_search/scroll/{scroll_id}"): _SCROLL,
    ("POST", "/_search/scroll/{scroll_id}"): _SCROLL,
    ("DELETE", "/_search/scroll/{scroll_id}"): _SCROLL,
    ("POST", "/_bulk"): _BULK,
    ("PUT", "/_bulk"): _BULK,
    ("POST", "/{index}/_bulk"): _BULK,
    ("PUT", "/{index}/_bulk"): _BULK,
    ("GET", "/_mget"): _MGET,
    ("POST", "/_mget"): _MGET,
    ("GET", "/{index}/_mget"): _MGET,
    ("POST", "/{index}/_mget"): _MGET,
    ("POST", "/{index}/_delete_by_query"): Rule(index_access.DELETE_BY_QUERY, "expression"),
    ("POST", "/{index}/_update_by_query"): Rule(index_access.UPDATE_BY_QUERY, "expression"),
    ("GET", "/_stats"): Rule(index_access.STATS, "expression", indexed="/{index}/_stats"),
    ("GET", "/_stats/{metric}"): Rule(index_access.STATS, "expression", indexed="/{index}/_stats/{metric}"),
    ("GET", "/{index}/_stats"): Rule(index_access.STATS, "expression"),
    ("GET", "/{index}/_stats/{metric}"): Rule(index_access.STATS, "expression"),
    # Cluster health names indices to wait for, not to read: the cluster privilege is what is checked.
    ("GET", "/_cluster/health/{index}"): Rule("cluster:monitor/health", "cluster"),
    ("GET", "/_cat/indices"): Rule(index_access.STATS, "expression", indexed="/_cat/indices/{index}"),
    ("GET", "/_cat/indices/{index}"): Rule(index_access.STATS, "expression"),
    ("GET", "/_mapping"): Rule(index_access.GET_MAPPINGS, "expression", indexed="/{index}/_mapping"),
    ("GET", "/{index}/_mapping"): Rule(index_access.GET_MAPPINGS, "expression"),
    ("PUT", "/{index}/_mapping"): Rule(index_access.PUT_MAPPING, "expression"),
    ("POST", "/{index}/_mapping"): Rule(index_access.PUT_MAPPING, "expression"),
}


def rule_for(method: str, template: str) -> Rule | None:
    """The forwarding rule of a matched route, or None when the request stays in Keyplane."""
    found = RULES.get((method, template))
    if found is None and method == "HEAD":
        found = RULES.get(("GET", template))
    return found


def is_system(name: str) -> bool:
    """A connector system index or alias (or an expression aimed at them): served by Keyplane itself."""
    return name in system_index.NAMES or name.startswith(".elastic-connectors")


def is_pattern(name: str) -> bool:
    return "*" in name or name == "_all" or name.startswith("-")
