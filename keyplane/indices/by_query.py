"""``_delete_by_query`` and ``_update_by_query``: their parameters, checked as Elasticsearch checks them,
and the accounting of a run (what was deleted, updated, in how many batches, which writes conflicted).

A run reads every matching document once (its search), then writes each one on the condition that it is
still as it was read (its sequence number and primary term): a document written meanwhile is a version
conflict, which aborts the run after the batch it happened in, or is only counted with
``conflicts=proceed``. Keyplane runs one slice and does not throttle (nothing here waits), so
``slices`` and ``requests_per_second`` are validated and reported, and change nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from keyplane.errors import InvalidArgument, KeyplaneError, ParseError, ValidationError
from keyplane.json_kinds import token_kind

Action = Literal["delete", "update"]
DEFAULT_SCROLL_SIZE = 1000
_RPS_PROBLEM = "[requests_per_second] must be a float greater than 0. Use -1 to disable throttling."
# Search-body keys a by-query request reads (others are refused as the search parser refuses them).
_SEARCH_KEYS = frozenset(
    (
        "query",
        "sort",
        "_source",
        "stored_fields",
        "from",
        "size",
        "slice",
        "timeout",
        "terminate_after",
        "track_total_hits",
        "version",
        "seq_no_primary_term",
        "search_after",
        "post_filter",
    )
)


class ScriptUnsupported(InvalidArgument):
    """An update-by-query script: Keyplane has no script engine (painless), so it refuses rather than
    ignoring the script and rewriting documents unchanged."""


class UnknownKey(ParseError):
    """A body key the search parser does not know (Elasticsearch's parsing_exception)."""


# -- parameters ------------------------------------------------------------------------------------------------


def conflicts(value: str) -> bool:
    """Whether version conflicts abort the run (``abort``, the default) or are only counted (``proceed``)."""
    if value == "abort":
        return True
    if value == "proceed":
        return False
    raise InvalidArgument(f'conflicts may only be "proceed" or "abort" but was [{value}]')


def slices(value: str | None) -> int:
    """``slices``: a positive number or ``auto`` (one slice here, as for a one-shard index)."""
    if value is None or value == "auto":
        return 1
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise InvalidArgument(f'[slices] must be a positive integer or the string "auto", but was [{value}]')
    return count


def requests_per_second(value: str | None) -> float | None:
    """The throttle asked for; None when unlimited (no parameter, or -1)."""
    if value is None:
        return None
    try:
        rate = float(value)
    except ValueError:
        raise InvalidArgument(_RPS_PROBLEM) from None
    if rate == -1:
        return None
    if not rate > 0 or math.isinf(rate):
        raise InvalidArgument(_RPS_PROBLEM)
    return rate


def max_docs(value: Any, current: int | None) -> int:
    """``max_docs`` from the URL or the body; both given must agree."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ParseError(f"[max_docs] expected a number but was [{token_kind(value)}]")
    try:
        count = int(value)
    except ValueError:
        raise InvalidArgument(f"Failed to parse int parameter [max_docs] with value [{value}]") from None
    if current is not None and current != count:
        raise InvalidArgument(f"[max_docs] set to two different values [{current}] and [{count}]")
    if count < 0:
        raise InvalidArgument(f"[max_docs] parameter cannot be negative, found [{count}]")
    return count


def check_remote(expressions: Sequence[str]) -> None:
    """Cross-cluster expressions (``cluster:index``) are refused before anything runs."""
    remote = [name for name in expressions if ":" in name]
    if remote:
        raise ValidationError(
            f"Cross-cluster calls are not supported in this context but remote indices were requested: "
            f"[{', '.join(remote)}]"
        )


@dataclass(frozen=True)
class ByQuery:
    """A parsed by-query request."""

    action: Action
    query: Any = None  # the query DSL as sent (None: match_all)
    sort: Any = None
    max_docs: int | None = None
    abort_on_conflict: bool = True
    scroll_size: int = DEFAULT_SCROLL_SIZE
    slices: int = 1
    requests_per_second: float | None = None
    refresh: bool = False  # refresh the indices written to once the run is over


def parse(
    action: Action,
    body: dict[str, Any] | None,
    *,
    conflicts_param: str | None = None,
    max_docs_param: int | None = None,
    scroll_size: int | None = None,
    slices_param: str | None = None,
    rps_param: str | None = None,
    sort_param: list[str] | None = None,
    refresh: bool = False,
) -> ByQuery:
    """The request from its body and URL parameters, refused with Elasticsearch's messages.

    Problems of the search half are gathered into one validation failure, as Elasticsearch's request
    validation reports them together."""
    abort = conflicts(conflicts_param) if conflicts_param is not None else True
    docs: int | None = None
    problems: list[str] = []
    query: Any = None
    sort: Any = None
    given = body if body is not None else {}
    for key, value in given.items():
        if key == "conflicts":
            if conflicts_param is None:
                abort = conflicts(str(value))
        elif key == "max_docs":
            docs = max_docs(value, docs)
        elif key == "script" and action == "update":
            raise ScriptUnsupported(
                "scripts are not supported by Keyplane's [_update_by_query]; send it without [script] to "
                "rewrite the matching documents as they are"
            )
        elif key not in _SEARCH_KEYS:
            raise UnknownKey(f"Unknown key for a {token_kind(value)} in [{key}].")
    if "query" in given:
        query = given["query"]
        if not isinstance(query, dict):
            raise ParseError(f"[query] expected an object but was [{token_kind(query)}]")
    sort = sort_param if sort_param else given.get("sort")  # the URL's sort replaces the body's
    if "size" in given:
        raise InvalidArgument("invalid parameter [size], use [max_docs] instead")
    if max_docs_param is not None:
        docs = max_docs(max_docs_param, docs)
    size = DEFAULT_SCROLL_SIZE if scroll_size is None else scroll_size
    count = slices(slices_param)
    rate = requests_per_second(rps_param)
    if docs is not None and docs < count:
        raise InvalidArgument("[max_docs] should be >= [slices]")
    if "from" in given:
        problems.append("from is not supported in this context")
    if "stored_fields" in given:
        problems.append("stored_fields is not supported in this context")
    if size < 0:
        problems.append(f"[size] parameter cannot be negative, found [{size}]")
    elif size == 0:
        problems.append("[size] cannot be [0] in a scroll context")
    if action == "delete" and query is None:
        problems.append("query is missing")
    if problems:
        raise ValidationError(*problems)
    return ByQuery(action, query, sort, docs, abort, size, count, rate, refresh)


# -- a run ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A matching document as the run's search read it (an update writes ``source`` back)."""

    index: str
    id: str
    seq_no: int
    primary_term: int
    source: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Failure:
    """A write that conflicted (listed when conflicts abort the run): the index, id and the conflict."""

    index: str
    id: str
    reason: str
    index_uuid: str
    status: int = 409


class Conflicted(KeyplaneError):
    """A conditional write of the run lost to another writer; ``index_uuid`` names the index in the failure."""

    def __init__(self, message: str, index_uuid: str) -> None:
        super().__init__(message)
        self.index_uuid = index_uuid


class Target(Protocol):
    """The documents a run goes over: content indices, or a connector system index."""

    async def matches(self, request: ByQuery) -> list[Candidate]:
        """Every document matching the request's query, in the request's order."""
        ...

    async def write(self, action: Action, candidate: Candidate) -> str:
        """Delete or rewrite the document if it is still as read: ``deleted``, ``updated``, or ``noop``
        (nothing written); raises Conflicted when it was written meanwhile."""
        ...


@dataclass
class Progress:
    """The counters Elasticsearch reports for a by-query run."""

    total: int = 0
    deleted: int = 0
    updated: int = 0
    batches: int = 0
    version_conflicts: int = 0
    noops: int = 0
    failures: list[Failure] = field(default_factory=list)

    def record(self, result: str) -> None:
        if result == "deleted":
            self.deleted += 1
        elif result == "updated":
            self.updated += 1
        else:
            self.noops += 1  # noop, or a document gone meanwhile: nothing written

    @property
    def done(self) -> int:
        return self.deleted + self.updated + self.noops


async def run(request: ByQuery, target: Target) -> Progress:
    """Write the target's matches a batch (``scroll_size``) at a time, in order.

    With conflicts aborting, the run takes the first ``max_docs`` matches and stops after the batch in
    which a conflict happened; with ``proceed`` it goes on until ``max_docs`` documents were written,
    as Elasticsearch does."""
    progress = Progress()
    candidates = await target.matches(request)
    limit = request.max_docs
    pending = list(candidates[:limit] if limit is not None and request.abort_on_conflict else candidates)
    if request.abort_on_conflict:
        progress.total = len(pending)
    for start in range(0, len(pending), request.scroll_size):
        if limit is not None and progress.done >= limit:
            break
        progress.batches += 1
        for candidate in pending[start : start + request.scroll_size]:
            if limit is not None and progress.done >= limit:
                break
            if not request.abort_on_conflict:
                progress.total += 1
            try:
                progress.record(await target.write(request.action, candidate))
            except Conflicted as exc:
                progress.version_conflicts += 1
                if request.abort_on_conflict:
                    progress.failures.append(Failure(candidate.index, candidate.id, str(exc), exc.index_uuid))
        if progress.failures:
            break
    return progress
