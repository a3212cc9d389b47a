"""By-query parameter rules and the accounting of a run, without a server."""

from __future__ import annotations

import asyncio

import pytest

from keyplane.errors import InvalidArgument, ParseError, ValidationError
from keyplane.indices import by_query
from keyplane.indices.by_query import Action, ByQuery, Candidate, Conflicted, Progress


class _Target:
    """Documents in a list; the ids in ``conflicting`` were written since they were read."""

    def __init__(self, candidates: list[Candidate], conflicting: frozenset[str]) -> None:
        self.candidates = candidates
        self.conflicting = conflicting
        self.written: list[str] = []

    async def matches(self, request: ByQuery) -> list[Candidate]:
        return self.candidates

    async def write(self, action: Action, candidate: Candidate) -> str:
        if candidate.id in self.conflicting:
            raise Conflicted(f"[{candidate.id}]: version conflict, required seqNo [{candidate.seq_no}]", "uuid")
        self.written.append(candidate.id)
        return "deleted" if action == "delete" else "updated"


def _run(request: ByQuery, candidates: list[Candidate], conflicting: frozenset[str] = frozenset()) -> Progress:
    return asyncio.run(by_query.run(request, _Target(candidates, conflicting)))


def _docs(count: int) -> list[Candidate]:
    return [Candidate("idx", str(n), n, 1) for n in range(count)]


def test_parse_reads_body_and_url() -> None:
    parsed = by_query.parse(
        "delete",
        {"query": {"term": {"a": 1}}, "max_docs": 5, "conflicts": "proceed"},
        scroll_size=2,
        slices_param="auto",
        rps_param="10",
    )
    assert parsed == ByQuery("delete", {"term": {"a": 1}}, None, 5, False, 2, 1, 10.0)
    # The URL's conflicts wins over the body's.
    assert by_query.parse("update", {"conflicts": "proceed"}, conflicts_param="abort").abort_on_conflict is True
    # Update without a body is a match_all; -1 disables throttling.
    assert by_query.parse("update", None, rps_param="-1") == ByQuery("update")


_RPS = "[requests_per_second] must be a float greater than 0. Use -1 to disable throttling."


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"conflicts_param": "cat"}, 'conflicts may only be "proceed" or "abort" but was [cat]'),
        ({"max_docs_param": -4}, "[max_docs] parameter cannot be negative, found [-4]"),
        ({"max_docs_param": 1, "slices_param": "2"}, "[max_docs] should be >= [slices]"),
        ({"max_docs_param": 0}, "[max_docs] should be >= [slices]"),
        ({"slices_param": "junk"}, '[slices] must be a positive integer or the string "auto", but was [junk]'),
        ({"slices_param": "0"}, '[slices] must be a positive integer or the string "auto", but was [0]'),
        ({"rps_param": ""}, _RPS),
        ({"rps_param": "0"}, _RPS),
        ({"rps_param": "-12"}, _RPS),
        (
            {"rps_param": "unlimited"},
            "[requests_per_second] must be a float greater than 0. Use -1 to disable throttling.",
        ),
    ],
)
def test_parameters_refused_as_elasticsearch_refuses_them(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        by_query.parse("delete", {"query": {"match_all": {}}}, **kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_body_rules() -> None:
    with pytest.raises(ValidationError) as caught:
        by_query.parse("delete", {})
    assert caught.value.messages == ["query is missing"]
    with pytest.raises(ValidationError) as caught:
        by_query.parse("delete", {"stored_fields": ["_id"], "from": 1})
    assert caught.value.messages == [
        "from is not supported in this context",
        "stored_fields is not supported in this context",
        "query is missing",
    ]
    with pytest.raises(ValidationError) as caught:
        by_query.parse("update", None, scroll_size=0)
    assert caught.value.messages == ["[size] cannot be [0] in a scroll context"]
    with pytest.raises(ParseError, match=r"Unknown key for a VALUE_STRING in \[script\]\."):
        by_query.parse("delete", {"query": {"match_all": {}}, "script": "ctx.op = 'noop'"})
    with pytest.raises(by_query.ScriptUnsupported):
        by_query.parse("update", {"script": {"source": "ctx._source.n++"}})
    with pytest.raises(InvalidArgument, match=r"set to two different values \[2\] and \[3\]"):
        by_query.parse("delete", {"query": {"match_all": {}}, "max_docs": 2}, max_docs_param=3)
    with pytest.raises(InvalidArgument, match=r"use \[max_docs\] instead"):
        by_query.parse("update", {"size": 3})


def test_remote_indices_are_refused() -> None:
    by_query.check_remote(["test", "logs-*"])
    with pytest.raises(ValidationError) as caught:
        by_query.check_remote(["remote:test", "local"])
    assert caught.value.messages == [
        "Cross-cluster calls are not supported in this context but remote indices were requested: [remote:test]",
    ]


def test_batches_follow_scroll_size_and_max_docs() -> None:
    progress = _run(ByQuery("delete", scroll_size=2), _docs(5))
    assert (progress.total, progress.deleted, progress.batches, progress.failures) == (5, 5, 3, [])
    progress = _run(ByQuery("update", max_docs=3, scroll_size=2), _docs(5))
    assert (progress.total, progress.updated, progress.batches) == (3, 3, 2)
    progress = _run(ByQuery("delete"), [])
    assert (progress.total, progress.batches) == (0, 0)


def test_a_conflict_aborts_after_its_batch() -> None:
    progress = _run(ByQuery("delete", scroll_size=2), _docs(5), conflicting=frozenset({"0"}))
    assert (progress.total, progress.deleted, progress.version_conflicts, progress.batches) == (5, 1, 1, 1)
    [failure] = progress.failures
    assert (failure.index, failure.id, failure.status, failure.index_uuid) == ("idx", "0", 409, "uuid")
    assert failure.reason.startswith("[0]: version conflict, required seqNo [0]")


def test_proceed_counts_conflicts_and_fills_max_docs() -> None:
    progress = _run(ByQuery("delete", max_docs=2, abort_on_conflict=False), _docs(4), conflicting=frozenset({"1"}))
    assert (progress.deleted, progress.version_conflicts, progress.total, progress.failures) == (2, 1, 3, [])
