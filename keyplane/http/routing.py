"""Routes and path matching, following Elasticsearch's path trie.

Starlette's router decodes the whole path before matching, which breaks ids holding ``%2F``, and
answers unknown paths and methods in its own format. Elasticsearch splits the raw path on ``/``,
decodes each segment on its own, prefers literal segments over parameters, and answers 400 for an
unknown path and 405 (with ``Allow``) for a known path with the wrong method.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from keyplane.audit.changes import CHANGES
from keyplane.http.kept_answers import KeptAnswers
from keyplane.http.params import accepted

if TYPE_CHECKING:
    from keyplane.http.request import RestRequest

Handler = Callable[["RestRequest"], Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    methods: tuple[str, ...]
    template: str
    handler: Handler
    # The transport action of the route. The dispatcher authorizes it before the handler runs, unless
    # ``self_checked``: then the handler's service decides, because the request matters
    # (manage_own_api_key allows an action only over the caller's own keys).
    action: str | None = None
    # The query parameters it accepts, Elasticsearch's common ones (``pretty``, ``filter_path``...) included.
    params: frozenset[str] = field(default_factory=frozenset)
    self_checked: bool = False
    segments: tuple[str, ...] = ()
    # The audit log reads the handler's answer: a self-checked route's access_granted (its service
    # decided) or a security change. Worked out once here, not on every request.
    audit_after: bool = False
    # Set for a route whose answer is the caller's alone (``by_caller``): its rendered answers by caller.
    kept: KeptAnswers | None = None


def split_path(path: str, *, decode: bool = True) -> list[str]:
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    parts = path.split("/")[1:]
    return [unquote(p) for p in parts] if decode and "%" in path else parts


class Router:
    def __init__(self) -> None:
        # Routes by segment count: a path is only ever compared with templates of its length.
        self._by_length: dict[int, list[Route]] = {}
        self._resolved: dict[tuple[str, str], tuple[Route | None, dict[str, str], set[str]]] = {}

    def add(
        self,
        methods: str | tuple[str, ...],
        template: str,
        handler: Handler,
        *,
        action: str | None = None,
        params: tuple[str, ...] = (),
        self_checked: bool = False,
        by_caller: bool = False,
    ) -> None:
        """``by_caller``: the handler's answer depends on the caller object alone (not on the path, the
        query, the body or anything stored), so the dispatcher may keep it rendered per caller."""
        if isinstance(methods, str):
            methods = (methods,)
        segments = tuple(split_path(template, decode=False))
        audit_after = self_checked or action in CHANGES
        if by_caller and audit_after:  # a kept answer skips the handler, and what is audited after it
            raise ValueError(f"{template}: a route audited after its handler cannot keep answers per caller")
        kept = KeptAnswers() if by_caller else None
        route = Route(
            tuple(methods), template, handler, action, accepted(params), self_checked, segments, audit_after, kept
        )
        self._by_length.setdefault(len(segments), []).append(route)
        self._resolved.clear()

    def resolve(self, method: str, segments: list[str]) -> tuple[Route | None, dict[str, str], set[str]]:
        """Return the best route for the method, its path params, and every method the path allows."""
        return self._resolve(method, segments)

    def resolve_path(self, method: str, path: str) -> tuple[Route | None, dict[str, str], set[str]]:
        """:meth:`resolve` for a raw path, split and matched only the first time it is seen (the hot path)."""
        key = (method, path)
        found = self._resolved.get(key)
        if found is None:
            found = self._resolve(method, split_path(path))
            if len(self._resolved) > 10_000:
                self._resolved.clear()
            self._resolved[key] = found
        route, params, allowed = found
        # A copy: handlers may change theirs, and the cached one serves every request to the path.
        return route, params.copy() if params else {}, allowed

    def _resolve(self, method: str, segments: list[str]) -> tuple[Route | None, dict[str, str], set[str]]:
        candidates: list[tuple[tuple[int, ...], Route, dict[str, str]]] = []
        allowed: set[str] = set()
        for route in self._by_length.get(len(segments), []):
            params = _match(route.segments, segments)
            if params is None:
                continue
            allowed.update(route.methods)
            if method in route.methods or (method == "HEAD" and "GET" in route.methods):
                score = tuple(1 if s.startswith("{") else 0 for s in route.segments)
                candidates.append((score, route, params))
        if not candidates:
            return None, {}, allowed
        candidates.sort(key=lambda c: c[0])
        _, route, params = candidates[0]
        return route, params, allowed


def _match(template: tuple[str, ...], segments: list[str]) -> dict[str, str] | None:
    if len(template) != len(segments):
        return None
    params: dict[str, str] = {}
    for pattern, value in zip(template, segments, strict=True):
        if pattern.startswith("{"):
            if pattern == "{index}" and value.startswith("_") and value != "_all":
                return None  # no index name starts with '_': such a path names an endpoint, not an index
            params[pattern[1:-1]] = value
        elif pattern != value:
            return None
    return params
