"""The rules of the connector system indices as pure functions: names, versions, compare-and-set,
_source filtering, the dates a query compares, and the in-memory search."""

from __future__ import annotations

import pytest

from keyplane.connectors import system_index as si
from keyplane.connectors.system_index import DocumentRead, Kind
from keyplane.errors import Conflict, InvalidArgument, ValidationError
from keyplane.source_filtering import source_filter


def test_names_and_aliases() -> None:
    assert si.kind_of(".elastic-connectors") is Kind.CONNECTORS
    assert si.kind_of(".elastic-connectors-v1") is Kind.CONNECTORS
    assert si.kind_of(".elastic-connectors-sync-jobs") is Kind.SYNC_JOBS
    assert si.kind_of(".elastic-connectors-sync-jobs-v1") is Kind.SYNC_JOBS
    assert si.kind_of(".elastic-connectors-v2") is None and si.kind_of("search-x") is None
    assert Kind.SYNC_JOBS.alias == ".elastic-connectors-sync-jobs"


def test_versions_from_the_write_counter() -> None:
    assert (si.seq_no_of(1), si.version_of(1)) == (0, 1)
    assert si.writes_of(si.seq_no_of(7)) == 7


def test_precondition_and_conflict_message() -> None:
    assert si.precondition(None, None) is None
    with pytest.raises(ValidationError):
        si.precondition(3, None)
    with pytest.raises(ValidationError):
        si.precondition(None, 1)
    cas = si.precondition(4, 1)
    assert cas is not None
    cas.check("x", 5)  # seq_no 4 is the fifth write
    with pytest.raises(Conflict) as exc:
        cas.check("x", 7)
    assert str(exc.value) == (
        "[x]: version conflict, required seqNo [4], primary term [1]. "
        "current document has seqNo [6] and primary term [1]"
    )
    with pytest.raises(Conflict) as exc:
        cas.check("x", None)
    assert str(exc.value).endswith("but no document was found")
    wrong_term = si.precondition(4, 2)
    assert wrong_term is not None
    with pytest.raises(Conflict):
        wrong_term.check("x", 5)


def test_source_filter() -> None:
    doc = {"a": 1, "b": {"c": 2, "d": 3}, "e": None}
    assert source_filter(True).apply(doc) == doc
    assert source_filter(False).apply(doc) is None
    assert source_filter("false").apply(doc) is None
    assert source_filter(["a", "b.c"]).apply(doc) == {"a": 1, "b": {"c": 2}}
    assert source_filter("b").apply(doc) == {"b": {"c": 2, "d": 3}}
    assert source_filter({"includes": ["b.*"], "excludes": ["b.d"]}).apply(doc) == {"b": {"c": 2}}
    assert source_filter(True, excludes=["e"]).apply(doc) == {"a": 1, "b": {"c": 2, "d": 3}}


def test_query_view_dates_as_ms_and_id() -> None:
    doc = {
        "last_seen": "2026-01-01T00:00:00.000Z",
        "filtering": [{"active": {"rules": [{"created_at": "1970-01-01T00:00:01Z"}]}}],
    }
    view = si.query_view(Kind.CONNECTORS, "c1", doc)
    assert view["_id"] == "c1" and view["last_seen"] == 1767225600000
    assert view["filtering"][0]["active"]["rules"][0]["created_at"] == 1000
    assert doc["last_seen"] == "2026-01-01T00:00:00.000Z"  # the stored document is untouched
    assert doc["filtering"][0]["active"]["rules"][0]["created_at"] == "1970-01-01T00:00:01Z"
    assert si.query_view(Kind.CONNECTORS, "c", {"last_seen": "not a date"})["last_seen"] == "not a date"


def _docs() -> list[DocumentRead]:
    return [
        DocumentRead("a", {"status": "pending", "connector": {"id": "c1"}, "created_at": "2026-01-02T00:00:00Z"}, 1),
        DocumentRead(
            "b",
            {
                "status": "in_progress",
                "connector": {"id": "c1"},
                "created_at": "2026-01-01T00:00:00Z",
                "last_seen": "2000-01-01T00:00:00Z",
            },
            3,
        ),
        DocumentRead("c", {"status": "pending", "connector": {"id": "c2"}, "created_at": "2026-01-03T00:00:00Z"}, 2),
    ]


def _search(
    query: object, sort: object = None, start: int = 0, size: int = 10, track: bool | int = True
) -> si.SearchResult:
    return si.search(Kind.SYNC_JOBS, _docs(), si.search_request(Kind.SYNC_JOBS, query, sort, start, size, track))


def test_search_queries_the_service_sends() -> None:
    pending = {
        "bool": {"must": [{"terms": {"status": ["pending", "suspended"]}}, {"terms": {"connector.id": ["c1", "c2"]}}]}
    }
    found = _search(pending, [{"created_at": "asc"}])
    assert [h.document.id for h in found.hits] == ["a", "c"] and found.total == 2
    assert found.max_score is None and found.hits[0].score is None
    assert found.hits[0].sort == (1767312000000,)
    idle = {"bool": {"filter": [{"terms": {"status": ["in_progress"]}}, {"range": {"last_seen": {"lte": "now-300s"}}}]}}
    assert [h.document.id for h in _search(idle).hits] == ["b"]
    assert _search(idle).hits[0].score == 0.0
    assert [h.document.id for h in _search({"bool": {"must_not": {"terms": {"connector.id": ["c1"]}}}}).hits] == ["c"]
    assert [h.document.id for h in _search({"terms": {"_id": ["c", "x"]}}).hits] == ["c"]
    assert _search({"match_all": {}}).hits[0].score == 1.0
    assert _search({"exists": {"field": "last_seen"}}).total == 1
    assert _search({"prefix": {"status": "in_"}}).total == 1
    assert _search({"term": {"configuration.anything": "x"}}).total == 0  # unmapped paths match nothing stored


def test_search_pages_and_counts() -> None:
    page = _search(None, ["created_at:desc"], start=1, size=1)
    assert [h.document.id for h in page.hits] == ["a"] and page.total == 3
    capped = _search(None, track=2)
    assert (capped.total, capped.total_is_exact) == (2, False)
    assert _search(None, size=0).hits == ()
    with pytest.raises(InvalidArgument):
        _search(None, start=-1)
