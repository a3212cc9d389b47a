"""A content-index request authorized against Keyplane's roles, then sent to the upstream cluster.

The upstream authenticates Keyplane, not the caller, and would serve any index to it: everything the
caller may not see is settled here, before the request leaves.

- Concrete index names are authorized one by one with the route's action (Elasticsearch's 403 otherwise).
- Wildcards, ``_all`` and index-less paths (``/_search``) are resolved against the upstream's indices and
  the request is rewritten to the concrete names the caller may see, as Elasticsearch expands wildcards
  over authorized indices only. Sending the pattern on would let the upstream expand it over everything.
- ``_bulk`` and ``_mget`` are authorized per item from the body: only the authorized items are sent and
  the refused ones are answered in their place with the 403 Elasticsearch gives an unauthorized item.
- A write that would create its index needs the auto-create privilege, as in Elasticsearch: when the
  caller lacks it, the upstream is asked whether the index exists first.
- Scroll ids from the upstream belong to the caller whose search opened them.
- Connector system indices stay in Keyplane: a request naming one is not forwarded.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import orjson

from keyplane.errors import Forbidden, InvalidArgument, KeyplaneError
from keyplane.indices import bulk as bulk_rules
from keyplane.indices.bulk import BulkItem
from keyplane.security import index_access
from keyplane.security.identity import Authentication
from keyplane.upstream.client import Answer, UpstreamClient
from keyplane.upstream.rules import Rule, is_pattern, is_system, rule_for

# An expression no index can match (index names are lower case): "none of the indices" once the
# caller's wildcards matched nothing it may see, which Elasticsearch answers as an empty result.
NO_INDEX = "KEYPLANE-NO-INDEX-*"
_RENDERING = ("pretty", "filter_path", "human")
# Actions whose body holds a query, which may read documents of other indices.
_QUERYING = (index_access.SEARCH, "indices:data/write/delete/byquery", "indices:data/write/update/byquery")
_MAX_SCROLLS = 100_000


class ScrollNotFound(KeyplaneError):
    """A scroll id this caller did not open (or that is gone): Elasticsearch's search_context_missing."""


@dataclass(frozen=True)
class Forwarded:
    """A request as the dispatcher read it."""

    method: str
    template: str
    params: dict[str, str]
    query_string: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Spliced:
    """An answer assembled here (items refused here merged with the upstream's), rendered by the dispatcher."""

    status: int
    doc: dict[str, Any]


def owner(auth: Authentication) -> str:
    """Who a scroll belongs to: the same user from the same realm, or the same API key."""
    key = auth.api_key.get("id") if auth.api_key else None
    realm = auth.authentication_realm.get("name", "")
    return f"{auth.type}\x00{realm}\x00{key or ''}\x00{auth.user.username}"


def _refusal(exc: KeyplaneError) -> dict[str, Any]:
    kind = "security_exception" if isinstance(exc, Forbidden) else "illegal_argument_exception"
    return {"type": kind, "reason": str(exc)}


def _status(exc: KeyplaneError) -> int:
    return 403 if isinstance(exc, Forbidden) else 400


_SYSTEM_ITEM = (
    "the connector system index [{}] is served by Keyplane, not the upstream cluster: "
    "send its documents in a request of their own"
)


class Forwarder:
    def __init__(self, client: UpstreamClient) -> None:
        self.client = client
        self._scrolls: OrderedDict[str, str] = OrderedDict()

    async def close(self) -> None:
        await self.client.close()

    def rule(self, method: str, template: str, params: dict[str, str]) -> Rule | None:
        """The rule forwarding this route, or None when the request stays in Keyplane."""
        found = rule_for(method, template)
        if found is None:
            return None
        if any(is_system(name) for name in params.get("index", "").split(",")):
            return None
        return found

    async def forward(self, auth: Authentication, rule: Rule, request: Forwarded) -> Answer | Spliced | None:
        """Authorize and send the request; None when it turns out to be Keyplane's own (system documents)."""
        if rule.kind == "bulk":
            return await self._bulk(auth, request)
        if rule.kind == "mget":
            return await self._mget(auth, request)
        if rule.kind == "scroll":
            return await self._scroll(auth, request)
        params = dict(request.params)
        template = request.template
        query = dict(parse_qsl(request.query_string, keep_blank_values=True))
        index = params.get("index", "")
        if rule.kind == "delete_index":
            names = [n for n in index.split(",") if n]
            if any(is_pattern(n) for n in names):
                # Without the cluster's destructive_requires_name a wildcard would delete beyond the grant.
                raise InvalidArgument("Wildcard expressions or all indices are not allowed")
            index_access.authorize(auth, rule.action, names)
        elif rule.kind == "single":
            names = [n for n in index.split(",") if n]
            overwrite = rule.write == "overwrite" and query.get("op_type", "index") != "create"
            index_access.authorize(auth, rule.action, names, overwrite=overwrite)
            if rule.action == index_access.CREATE_INDEX:
                # An alias created with the index is a name of its own, authorized as Elasticsearch does.
                body = _json(request.body) if request.body else None
                aliases = body.get("aliases") if isinstance(body, dict) else None
                if isinstance(aliases, dict):
                    index_access.authorize(auth, index_access.MANAGE_ALIASES, sorted(aliases))
            if rule.write is not None:
                await self._may_create(auth, names)
        elif rule.kind == "expression":
            expanded = await self._expand(auth, rule.action, index, query.get("expand_wildcards"))
            if expanded is not None:
                params["index"] = expanded
                if rule.indexed is not None:
                    template = rule.indexed
            elif params.get("index") == "":
                params["index"] = "_all"  # an empty path segment (``//_refresh``) means every index
            if request.body and rule.action in _QUERYING:
                # Elasticsearch runs a query's document lookups as the caller; upstream they run as Keyplane.
                lookups = _looked_up(_json(request.body))
                if any(is_system(name) for name in lookups):
                    raise InvalidArgument(
                        "a query forwarded to the upstream cluster cannot look up connector documents"
                    )
                index_access.authorize(auth, index_access.GET_DOC, lookups)
        answer = await self.client.send(
            request.method, _path(template, params), request.query_string, request.headers, request.body
        )
        if rule.opens_scroll and "scroll" in query and answer.status == 200:
            self._remember(auth, answer.body)
        return answer

    # -- index expressions ---------------------------------------------------------------------------

    async def _expand(self, auth: Authentication, action: str, expression: str, wildcards: str | None) -> str | None:
        """The expression rewritten to what the caller may see; None when it can be sent unchanged."""
        parts = [p for p in expression.split(",") if p]
        concrete = [p for p in parts if not is_pattern(p)]
        index_access.authorize(auth, action, concrete)
        if parts and len(concrete) == len(parts):
            return None
        if index_access.allowed(auth, action, "*") and not {"all", "hidden"} & set((wildcards or "").split(",")):
            # Granted on every name (a superuser, an "*" role): the upstream's expansion is the caller's, as
            # it leaves out hidden (system) indices. No listing round trip, no long rewritten path.
            return None
        found = await self.client.index_names(expression or "_all", wildcards)
        visible = [n for n in found if n not in concrete and not is_system(n) and index_access.allowed(auth, action, n)]
        names = concrete + visible
        return ",".join(names) if names else NO_INDEX

    async def _may_create(self, auth: Authentication, names: list[str]) -> None:
        for name in names:
            if not index_access.allowed(auth, index_access.AUTO_CREATE, name) and not await self.client.exists(name):
                index_access.authorize(auth, index_access.AUTO_CREATE, [name])

    # -- bulk ----------------------------------------------------------------------------------------

    async def _bulk(self, auth: Authentication, request: Forwarded) -> Answer | Spliced | None:
        index_access.authorize_somewhere(auth, index_access.BULK)
        items = _bulk_items(request.body, request.params.get("index"))
        if items and all(item.index is not None and is_system(item.index) for item, _ in items):
            return None
        exists: dict[str, bool] = {}
        refused: dict[int, tuple[str, dict[str, Any]]] = {}
        kept: list[bytes] = []
        for position, (item, lines) in enumerate(items):
            index = item.index
            try:
                if index is not None:
                    if is_system(index):
                        raise InvalidArgument(_SYSTEM_ITEM.format(index))
                    index_access.authorize(auth, index_access.BULK_ITEM_ACTIONS[item.action], [index])
                    if item.action != "delete" and not index_access.allowed(auth, index_access.AUTO_CREATE, index):
                        if index not in exists:
                            exists[index] = await self.client.exists(index)
                        if not exists[index]:
                            index_access.authorize(auth, index_access.AUTO_CREATE, [index])
            except (Forbidden, InvalidArgument) as exc:
                shown = {"_index": index, "_id": item.id, "status": _status(exc), "error": _refusal(exc)}
                refused[position] = (item.action, shown)
                continue
            kept.extend(lines)
        if not refused:
            return await self._send(request, request.query_string, request.body)
        upstream_items: list[Any] = []
        errors = True
        took = 0
        if kept:
            answer = await self._send(request, _without_rendering(request.query_string), b"\n".join(kept) + b"\n")
            doc = _json(answer.body)
            if answer.status != 200 or not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
                return answer  # the whole request failed upstream: its answer as it is
            upstream_items = doc["items"]
            took = doc.get("took", 0)
        merged = iter(upstream_items)
        rendered = [{refused[i][0]: refused[i][1]} if i in refused else next(merged, None) for i in range(len(items))]
        return Spliced(200, {"errors": errors, "took": took, "items": rendered})

    # -- mget ----------------------------------------------------------------------------------------

    async def _mget(self, auth: Authentication, request: Forwarded) -> Answer | Spliced | None:
        index_access.authorize_somewhere(auth, index_access.MGET)
        default = request.params.get("index")
        body = _json(request.body)
        if body is None:
            return await self._send(request, request.query_string, request.body)  # the upstream refuses it
        items = bulk_rules.parse_mget(body, default)  # Elasticsearch's errors for a body that cannot be read
        docs: list[dict[str, Any]] = [
            *(body.get("docs") or ()),
            *({"_index": default, "_id": i} for i in body.get("ids") or ()),
        ]
        if all(item.index is not None and is_system(item.index) for item in items):
            return None
        refused: dict[int, dict[str, Any]] = {}
        for position, item in enumerate(items):
            if item.index is None:
                continue
            try:
                if is_system(item.index):
                    raise InvalidArgument(_SYSTEM_ITEM.format(item.index))
                index_access.authorize(auth, index_access.MGET_SHARD, [item.index])
            except (Forbidden, InvalidArgument) as exc:
                cause = _refusal(exc)
                refused[position] = {"_index": item.index, "_id": item.id, "error": {"root_cause": [cause], **cause}}
        if not refused:
            return await self._send(request, request.query_string, request.body)
        kept = [d for i, d in enumerate(docs) if i not in refused]
        fetched: list[Any] = []
        if kept:
            forwarded = {"docs": kept}
            answer = await self._send(request, _without_rendering(request.query_string), orjson.dumps(forwarded))
            doc = _json(answer.body)
            if answer.status != 200 or not isinstance(doc, dict) or not isinstance(doc.get("docs"), list):
                return answer
            fetched = doc["docs"]
        merged = iter(fetched)
        return Spliced(200, {"docs": [refused[i] if i in refused else next(merged, None) for i in range(len(docs))]})

    # -- scroll --------------------------------------------------------------------------------------

    async def _scroll(self, auth: Authentication, request: Forwarded) -> Answer | Spliced:
        caller = owner(auth)
        query = dict(parse_qsl(request.query_string, keep_blank_values=True))
        body = _json(request.body) if request.body else {}
        given: Any = body.get("scroll_id") if isinstance(body, dict) else None
        if given is None:
            given = request.params.get("scroll_id") or query.get("scroll_id") or ""
        ids = [i for i in given.split(",") if i] if isinstance(given, str) else given
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or not ids:
            return await self._send(request, request.query_string, request.body)  # the upstream's own error
        if request.method == "DELETE":
            mine = [i for i in self._scrolls if self._scrolls[i] == caller] if ids == ["_all"] else ids
            mine = [i for i in mine if self._scrolls.get(i) == caller]
            if not mine:
                return Spliced(404, {"succeeded": True, "num_freed": 0})
            for i in mine:
                self._scrolls.pop(i, None)
            rest = {k: v for k, v in query.items() if k != "scroll_id"}
            return await self.client.send(
                "DELETE",
                "/_search/scroll",
                urlencode(rest),
                {"content-type": "application/json"},
                orjson.dumps({"scroll_id": mine}),
            )
        for i in ids:
            if self._scrolls.get(i) != caller:
                raise ScrollNotFound(f"No search context found for id [{i}]")
        answer = await self._send(request, request.query_string, request.body)
        if answer.status == 200:
            self._remember(auth, answer.body)
        return answer

    def _remember(self, auth: Authentication, body: bytes) -> None:
        doc = _json(body)
        scroll_id = doc.get("_scroll_id") if isinstance(doc, dict) else None
        if isinstance(scroll_id, str):
            self._scrolls[scroll_id] = owner(auth)
            self._scrolls.move_to_end(scroll_id)
            while len(self._scrolls) > _MAX_SCROLLS:
                self._scrolls.popitem(last=False)

    async def _send(self, request: Forwarded, query_string: str, body: bytes) -> Answer:
        path = _path(request.template, request.params)
        return await self.client.send(request.method, path, query_string, request.headers, body)


def _looked_up(body: Any) -> list[str]:
    """Indices a query reads documents from besides its targets: terms lookups (``index``/``id``),
    more_like_this items (``_index``/``_id`` or ``doc``), indexed shapes (``shapes`` by default) and
    stored percolator documents."""
    found: list[str] = []
    pending = [body]
    while pending:
        value = pending.pop()
        if isinstance(value, list):
            pending.extend(value)
            continue
        if not isinstance(value, dict):
            continue
        if "id" in value and "index" in value:
            found.append(str(value["index"]))
        if "_index" in value and ("_id" in value or "doc" in value):
            found.append(str(value["_index"]))
        shape = value.get("indexed_shape")
        if isinstance(shape, dict) and "index" not in shape:
            found.append("shapes")
        pending.extend(value.values())
    return sorted(set(found))


def _path(template: str, params: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return quote(params[name], safe=",*" if name == "index" else "")

    return re.sub(r"\{(\w+)\}", value, template)


def _without_rendering(query_string: str) -> str:
    # The dispatcher renders a spliced answer (pretty, filter_path): the upstream must answer in full.
    pairs = parse_qsl(query_string, keep_blank_values=True)
    return urlencode([(k, v) for k, v in pairs if k not in _RENDERING])


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _bulk_items(body: bytes, default: str | None) -> list[tuple[BulkItem, list[bytes]]]:
    """Each item with its lines as sent. The body is read by Keyplane's own bulk parser first, so that one
    that cannot be read gets Elasticsearch's error here: what cannot be authorized is not sent."""
    items = bulk_rules.parse_bulk(body, default, None)
    lines = [line[:-1] if line.endswith(b"\r") else line for line in body.split(b"\n")[:-1]]
    groups: list[list[bytes]] = []
    position = 0
    while position < len(lines) and len(groups) < len(items):
        if not lines[position].strip():  # blank lines between items, skipped as the parser does
            position += 1
            continue
        size = 1 if items[len(groups)].action == "delete" else 2
        groups.append(lines[position : position + size])
        position += size
    return list(zip(items, groups, strict=True))
