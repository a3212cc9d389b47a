"""Rules of searching content indices in memory: sort, scores, total hits, windows, scroll contexts."""

from __future__ import annotations

from typing import Any

import pytest

from keyplane.errors import InvalidArgument, ParseError
from keyplane.indices import search
from keyplane.indices.core import IndexMeta, StoredDoc
from keyplane.indices.scroll import ScrollMissing, Scrolls
from keyplane.indices.search import SearchRequest, SortSpec
from keyplane.source_filtering import source_filter

META = IndexMeta("books", "u", 0)
DOCS = [
    StoredDoc("a", {"n": 3, "tag": ["x", "z"]}, 0, 1),
    StoredDoc("b", {"n": 1}, 1, 1),
    StoredDoc("c", {"tag": "y"}, 2, 1),
    StoredDoc("d", {"n": 2, "tag": "x"}, 3, 1),
]


def _run(**kw: Any) -> search.SearchResult:
    return search.run([(META, DOCS)], SearchRequest(**kw))


def _ids(result: search.SearchResult) -> list[str]:
    return [hit.doc.id for hit in result.hits]


def test_sort_missing_last_either_way_and_arrays_by_min_or_max() -> None:
    assert _ids(_run(sort=search.parse_sort("n"))) == ["b", "d", "a", "c"]
    assert _ids(_run(sort=search.parse_sort([{"n": "desc"}]))) == ["a", "d", "b", "c"]
    assert _ids(_run(sort=search.parse_sort([{"n": {"order": "asc", "missing": "_first"}}]))) == ["c", "b", "d", "a"]
    # Ascending sorts by an array's least value, descending by its greatest.
    asc = _run(sort=search.parse_sort(["tag", "_doc"]))
    assert _ids(asc) == ["a", "d", "c", "b"] and asc.hits[0].sort == ("x", 1)
    assert _ids(_run(sort=search.parse_sort("tag:desc"))) == ["a", "c", "d", "b"]


def test_sort_parsing() -> None:
    assert search.parse_sort(["_score", {"n": {"order": "desc"}}]) == (
        SortSpec("_score", "_score", desc=True),
        SortSpec("n", desc=True),
    )
    with pytest.raises(ParseError):
        search.parse_sort([{"n": "up"}])
    with pytest.raises(InvalidArgument, match="Fielddata access on the _id field is disallowed"):
        search.parse_sort("_id")


def test_scores_and_total_hits() -> None:
    plain = _run()
    assert plain.max_score == 1.0 and {h.score for h in plain.hits} == {1.0}
    filtered = _run(query={"bool": {"filter": [{"exists": {"field": "n"}}]}})
    assert _ids(filtered) == ["a", "b", "d"] and filtered.max_score == 0.0
    sorted_ = _run(sort=search.parse_sort("n"))
    assert sorted_.max_score is None and sorted_.hits[0].score is None
    assert (_run(track_total_hits=2).total, _run(track_total_hits=2).total_is_exact) == (2, False)
    assert (_run(track_total_hits=4).total, _run(track_total_hits=4).total_is_exact) == (4, True)
    assert _run(track_total_hits=False).total is None
    assert search.track_total_hits("-1") is True and search.track_total_hits(5) == 5
    with pytest.raises(InvalidArgument, match="must be positive or equals to -1, got -2"):
        search.track_total_hits(-2)


def test_result_window_and_paging() -> None:
    search.check_window([META], 9990, 10, scroll=False)
    with pytest.raises(search.ResultWindowTooLarge, match=r"\[10000\] but was \[10001\]"):
        search.check_window([META], 9991, 10, scroll=False)
    small = IndexMeta("s", "u", 0, {"index.max_result_window": "5"})
    with pytest.raises(search.ResultWindowTooLarge, match="Batch size is too large"):
        search.check_window([small], 0, 6, scroll=True)
    with pytest.raises(InvalidArgument, match=r"\[from\] parameter cannot be negative but was \[-1\]"):
        search.check_paging(-1, 10)


def test_source_filter_forms() -> None:
    doc = {"a": 1, "b": {"c": 2, "d": 3}}
    assert source_filter(False).apply(doc) is None
    assert source_filter("b.c,a").apply(doc) == {"a": 1, "b": {"c": 2}}
    assert source_filter({"includes": "b", "excludes": ["b.d"]}).apply(doc) == {"b": {"c": 2}}
    assert source_filter(True, ["b.*"], ["b.c"]).apply(doc) == {"b": {"d": 3}}


def test_scroll_contexts_page_expire_and_belong_to_their_owner() -> None:
    now = [1000]
    scrolls = Scrolls(lambda: now[0])
    request = SearchRequest(size=3)
    result = search.run([(META, DOCS)], request)
    scroll_id = scrolls.open("me", result, request, 60_000)
    with pytest.raises(ScrollMissing):
        scrolls.next(scroll_id, "someone else", None)
    _, _, batch = scrolls.next(scroll_id, "me", 1000)
    assert [h.doc.id for h in batch] == ["d"]
    assert scrolls.next(scroll_id, "me", 1000)[2] == ()
    now[0] += 1001  # the renewed keep-alive ran out
    with pytest.raises(ScrollMissing, match=r"No search context found for id \[1\]"):
        scrolls.next(scroll_id, "me", None)
    with pytest.raises(InvalidArgument, match="Cannot parse scroll id"):
        scrolls.next("not-a-scroll", "me", None)
    other = scrolls.open("me", result, request, 60_000)
    assert scrolls.clear(["_all"], "someone else") == 0
    assert scrolls.clear([other], "me") == 1
    assert scrolls.clear([other], "me") == 0


def test_search_after_pages_past_the_sort_values_and_dates_sort_as_epoch_ms() -> None:
    sort = search.parse_sort([{"n": "desc"}])
    after = search.check_search_after([3], sort)
    paged = _run(sort=sort, search_after=after)
    assert _ids(paged) == ["d", "b", "c"] and paged.total == 4  # every match still counts
    with pytest.raises(InvalidArgument, match=r"search_after has 2 value\(s\) but sort has 1\."):
        search.check_search_after([1, 2], sort)
    with pytest.raises(ParseError, match="inside search_after"):
        search.check_search_after([{}], sort)
    dated = IndexMeta("d", "u", 0, mappings={"properties": {"at": {"type": "date"}}})
    docs = [StoredDoc("x", {"at": "2020-01-02"}, 0, 1), StoredDoc("y", {"at": 1577836800000}, 1, 1)]
    result = search.run([(dated, docs)], SearchRequest(sort=search.parse_sort("at")))
    assert [(h.doc.id, h.sort) for h in result.hits] == [("y", (1577836800000,)), ("x", (1577923200000,))]


def test_date_formats_read_and_print_nanoseconds() -> None:
    from keyplane.indices.date_formats import DateUnparsable, format_nanos, parse_nanos

    nanos = parse_nanos("2019-10-21 08:30:04.828733", "yyyy-MM-dd HH:mm:ss.SSSSSS")
    assert nanos == 1571646604828733000
    assert parse_nanos("15/04/2021 06:30:04.821", "dd/MM/yyyy HH:mm:ss.SSS") == 1618468204821000000
    assert parse_nanos(1000) == 1000 * 1_000_000  # a number is epoch milliseconds
    assert parse_nanos("2021-02-11T08:30:04.828+01:00") == parse_nanos("2021-02-11T07:30:04.828Z")
    assert format_nanos(nanos, "strict_date_optional_time_nanos") == "2019-10-21T08:30:04.828733Z"
    assert format_nanos(nanos, "strict_date_optional_time") == "2019-10-21T08:30:04.828Z"
    assert format_nanos(nanos, "yyyy-MM-dd | HH:mm:ss.SSS") == "2019-10-21 | 08:30:04.828"
    with pytest.raises(DateUnparsable, match="failed to parse date field"):
        parse_nanos("2021-02-11T08:30:04.828Z", "epoch_millis")


def test_date_sort_values_millis_nanos_or_formatted_and_search_after_in_either() -> None:
    dated = IndexMeta("d", "u", 0, mappings={"properties": {"t": {"type": "date_nanos", "format": "dd/MM/yyyy"}}})
    docs = [StoredDoc("a", {"t": "02/01/2020"}, 0, 1), StoredDoc("b", {"t": "01/01/2020"}, 1, 1)]
    by_t = search.parse_sort([{"t": "asc"}])
    result = search.run([(dated, docs)], SearchRequest(sort=by_t))
    assert [hit.sort for hit in result.hits] == [(1577836800000000000,), (1577923200000000000,)]
    formatted = search.parse_sort([{"t": {"order": "asc", "format": "strict_date_optional_time"}}])
    result = search.run([(dated, docs)], SearchRequest(sort=formatted, search_after=("2020-01-01T00:00:00.000Z",)))
    assert [hit.sort for hit in result.hits] == [("2020-01-02T00:00:00.000Z",)]
    with pytest.raises(InvalidArgument, match="failed to parse date field"):
        search.run([(dated, docs)], SearchRequest(sort=formatted, search_after=("yesterday",)))


def test_docvalue_values_by_type() -> None:
    from keyplane.indices.fields import IndexFields, decimal_format

    fields = IndexFields({"properties": {"at": {"type": "date"}, "price": {"type": "double"}}})
    source = {"at": "2021-02-11", "price": "2", "n": 1, "tags": ["b", "a"]}
    assert fields.values(source, "at") == ["2021-02-11T00:00:00.000Z"]
    assert fields.values(source, "price") == [2.0]
    assert fields.values(source, "n", "#.0") == ["1.0"]
    assert fields.values(source, "tags.keyword") == ["a", "b"]
    assert fields.values(source, "missing") is None
    assert decimal_format(3.14159, "0.00") == "3.14" and decimal_format(2, "#.##") == "2"
