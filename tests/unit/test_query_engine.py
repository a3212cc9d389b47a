"""The query engine on its own: field maps, the parser's tree, in-memory evaluation, aggregation rendering."""

from __future__ import annotations

from typing import Any

import pytest

from keyplane.api.aggregations import render_aggregations
from keyplane.errors import InvalidArgument, ParseError
from keyplane.query import memory
from keyplane.query.aggs import (
    Bucket,
    CompositeAgg,
    CompositeResult,
    DateRangeAgg,
    FilterAgg,
    FiltersAgg,
    FiltersResult,
    RangeAgg,
    RangeBucket,
    RangeResult,
    RangeSpec,
    SingleBucket,
    TermsAgg,
    TermsResult,
    ValueResult,
)
from keyplane.query.fields import DOC, Field, FieldMap, FieldType
from keyplane.query.parser import Rules, parse_aggs, parse_query, parse_sort
from keyplane.query.tree import (
    MATCH_ALL,
    Bool,
    Exists,
    Ids,
    Match,
    MatchNone,
    Prefix,
    Range,
    SimpleQueryString,
    SortKey,
    Term,
    Terms,
    Wildcard,
)

# A content index as the next issue will map one: keyword, text, date, boolean and a flattened object.
FIELDS = FieldMap(
    {
        "title": Field("title", FieldType.KEYWORD),
        "body": Field("body", FieldType.TEXT),
        "published": Field("published", FieldType.DATE),
        "draft": Field("draft", FieldType.BOOLEAN),
        "labels": Field("labels", FieldType.FLATTENED),
        "author": Field("meta.author", FieldType.KEYWORD),  # an alias of a field at a dotted path
    }
)
STRICT = Rules(FIELDS, aggregations=frozenset({"terms", "range", "date_range", "filter", "filters", "composite"}))
LENIENT = Rules(FIELDS, strict=False)
TITLE, BODY, PUBLISHED, DRAFT, LABELS, AUTHOR = (
    FIELDS.field(n) for n in ("title", "body", "published", "draft", "labels", "author")
)


def test_field_map_resolves_names_aliases_and_flattened_keys() -> None:
    assert FIELDS.resolve("title") == Field("title", FieldType.KEYWORD)
    assert FIELDS.resolve("author") == Field("meta.author", FieldType.KEYWORD)
    env = FIELDS.resolve("labels.env.region")
    assert env == Field("labels.env.region", FieldType.KEYWORD, "labels")
    assert env.path == ("env", "region")
    assert FIELDS.resolve("labels.") is None
    assert FIELDS.resolve("title.x") is None  # only flattened fields have keys
    assert FIELDS.resolve("nope") is None
    assert FIELDS.resolve(["title"]) is None  # type: ignore[arg-type]
    only_keys = FieldMap.of({"metadata": FieldType.FLATTENED}, subfields_only=frozenset({"metadata"}))
    assert only_keys.resolve("metadata") is None
    assert only_keys.resolve("metadata.a") == Field("metadata.a", FieldType.KEYWORD, "metadata")
    nested = FieldMap.of({"a.b": FieldType.FLATTENED})
    assert nested.resolve("a.b.c") == Field("a.b.c", FieldType.KEYWORD, "a.b")


def test_strict_parse_builds_typed_clauses() -> None:
    def q(query: Any) -> Any:
        return parse_query(query, STRICT)

    assert q(None) is MATCH_ALL and q({"match_all": {}}) == MATCH_ALL
    assert q({"term": {"title": 5}}) == Term(TITLE, "5")
    assert q({"term": {"draft": "TRUE"}}) == Term(DRAFT, True)
    assert q({"term": {"published": "1970-01-01T00:00:01Z"}}) == Term(PUBLISHED, 1000)
    assert q({"term": {"author": {"value": "Ann", "case_insensitive": True}}}) == Term(AUTHOR, "Ann", True)
    assert q({"match": {"title": "a b"}}) == Term(TITLE, "a b")  # a keyword is one term
    assert q({"match": {"body": {"query": "a b", "operator": "AND"}}}) == Match(BODY, "a b", "and")
    assert q({"terms": {"labels.env": ["prod", 1], "boost": 2}}) == Terms(FIELDS.field("labels.env"), ("prod", "1"))
    assert q({"prefix": {"title": {"value": "ab"}}}) == Prefix(TITLE, "ab")
    assert q({"wildcard": {"title": {"wildcard": "a?*"}}}) == Wildcard(TITLE, "a?*")
    assert q({"exists": {"field": "labels"}}) == Exists(LABELS)
    assert q({"ids": {"values": ["a", 1]}}) == Ids(("a", "1"))
    assert q({"range": {"published": {"from": 1, "lte": "1970-01-01||/d", "boost": 2}}}) == Range(
        PUBLISHED, (("gte", 1), ("lte", 86_399_999))
    )
    assert q({"range": {"title": {"gt": None, "lt": 3}}}) == Range(TITLE, (("lt", "3"),))
    clause = q({"bool": {"must": {"term": {"title": "a"}}, "should": [{"exists": {"field": "body"}}]}})
    assert clause == Bool(must=(Term(TITLE, "a"),), should=(Exists(BODY),))
    assert clause.required_should() == 0


def test_strict_minimum_should_match_reading() -> None:
    """The API-key reading: without should clauses the minimum says nothing, and should clauses beside
    only must_not clauses are optional (explicitly 0)."""
    alone = parse_query({"bool": {"should": [{"term": {"title": "a"}}]}}, STRICT)
    assert isinstance(alone, Bool) and alone.required_should() == 1
    beside_not = parse_query({"bool": {"should": [{"term": {"title": "a"}}], "must_not": [MATCH_NONE_JSON]}}, STRICT)
    assert isinstance(beside_not, Bool) and beside_not.minimum_should_match == 0
    no_should = parse_query({"bool": {"filter": [], "minimum_should_match": "100%"}}, STRICT)
    assert no_should == Bool()
    lenient = parse_query({"bool": {"should": [{"term": {"title": "a"}}], "must_not": [MATCH_NONE_JSON]}}, LENIENT)
    assert isinstance(lenient, Bool) and lenient.required_should() == 1


MATCH_NONE_JSON = {"term": {"title": "zzz"}}


def test_simple_query_string_is_expanded_per_keyword_field() -> None:
    sqs = parse_query({"simple_query_string": {"query": "ab* -x", "fields": ["ti*", "published"]}}, STRICT)
    prefix = Bool(should=(Prefix(TITLE, "ab", True),), minimum_should_match=1)
    negated = Bool(should=(Term(TITLE, "x", True),), minimum_should_match=1)
    assert sqs == Bool(should=(prefix,), must_not=(negated,), minimum_should_match=1)
    assert parse_query({"simple_query_string": {"query": "x", "fields": ["pub*"]}}, STRICT) == MatchNone()
    words = parse_query({"simple_query_string": {"query": "ab", "fields": ["body"]}}, LENIENT)
    assert words == SimpleQueryString("ab", (BODY,))


@pytest.mark.parametrize(
    ("query", "error", "message"),
    [
        ({"fuzzy": {"title": "x"}}, InvalidArgument, "Query type [fuzzy] is not currently supported in this context"),
        ({"term": {"nope": "x"}}, InvalidArgument, "Field [nope] is not allowed for querying or aggregation"),
        ({"term": {"ti*": "x"}}, InvalidArgument, "Field name pattern [ti*] is not allowed"),
        ({"a": 1, "b": 2}, ParseError, "query malformed, must start with start_object"),
        ({"term": {"title": {"foo": 1}}}, ParseError, "[term] query does not support [foo]"),
        ({"term": {"draft": "maybe"}}, ParseError, "Can't parse boolean value [maybe]"),
        ({"term": {"title": ["a"]}}, ParseError, "[title] expects a single value"),
        ({"range": {"title": {"near": 1}}}, ParseError, "[range] query does not support [near]"),
        ({"bool": {"must": [], "boost_me": 1}}, ParseError, "[bool] query does not support [boost_me]"),
        ({"terms": {"title": {"index": "i"}}}, InvalidArgument, "terms lookup is not currently supported"),
    ],
)
def test_strict_refusals(query: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as exc:
        parse_query(query, STRICT)
    assert type(exc.value) is error and message in str(exc.value)


def test_lenient_parse_keeps_values_and_ignores_unknown_options() -> None:
    assert parse_query({"term": {"draft": "maybe"}}, LENIENT) == Term(DRAFT, "maybe")
    assert parse_query({"term": {"title": {"foo": 1, "query": "a"}}}, LENIENT) == Term(TITLE, "a")
    assert parse_query({"match": {"title": "A b"}}, LENIENT) == Match(TITLE, "A b")
    assert parse_query({"range": {"title": {"from": 1, "gt": "a"}}}, LENIENT) == Range(TITLE, (("gt", "a"),))
    with pytest.raises(InvalidArgument, match="query malformed"):  # not a parse error here
        parse_query({"a": 1, "b": 2}, LENIENT)
    with pytest.raises(InvalidArgument, match="Field \\[ti\\*\\] is not allowed"):
        parse_query({"term": {"ti*": "x"}}, LENIENT)


def test_queries_nest_at_most_30_deep() -> None:
    query: dict[str, Any] = {"match_all": {}}
    for _ in range(29):
        query = {"bool": {"must": [query]}}
    parse_query(query, STRICT)
    with pytest.raises(InvalidArgument, match="nested depth"):
        parse_query({"bool": {"must": [query]}}, STRICT)


def test_sort_keys() -> None:
    keys = parse_sort(["title", {"published": {"order": "desc", "format": "strict_date"}}, "_doc:desc"], STRICT)
    assert keys == [SortKey(TITLE), SortKey(PUBLISHED, True, "strict_date"), SortKey(DOC, True)]
    with pytest.raises(ParseError, match="unknown order \\[up\\]"):
        parse_sort([{"title": "up"}], STRICT)
    with pytest.raises(InvalidArgument, match="nested sorting"):
        parse_sort([{"title": {"nested": {}}}], STRICT)
    assert parse_sort([{"title": "up"}], LENIENT) == [SortKey(TITLE)]
    with pytest.raises(InvalidArgument, match="Field \\[_doc\\]"):
        parse_sort(["_doc"], LENIENT)


def test_aggregation_requests_are_typed_and_read_their_options_when_run() -> None:
    aggs = parse_aggs(
        {
            "t": {"terms": {"field": "title", "size": "x"}, "aggs": {"d": {"date_range": {"field": "title"}}}},
            "r": {"range": {"field": "published", "ranges": [{"from": "1970-01-02", "key": "k"}, {"to": 5}]}},
            "f": {"filter": {"term": {"draft": False}}},
            "fs": {"filters": {"filters": [{"match_all": {}}]}},
            "c": {"composite": {"sources": [{"s": {"terms": {"field": "labels.env", "order": "desc"}}}]}},
        },
        STRICT,
    )
    terms, ranges, one, several, composite = aggs
    assert isinstance(terms, TermsAgg) and terms.field == TITLE and isinstance(terms.subs[0], DateRangeAgg)
    with pytest.raises(ValueError):  # a bad size fails when the aggregation runs, not when parsed
        _ = terms.size
    assert isinstance(ranges, RangeAgg) and ranges.ranges() == [
        RangeSpec("k", 86_400_000, None, True),
        RangeSpec(None, None, 5),
    ]
    assert isinstance(one, FilterAgg) and one.query == Term(DRAFT, False)
    assert isinstance(several, FiltersAgg) and not several.keyed and several.filters == [("0", MATCH_ALL)]
    assert isinstance(composite, CompositeAgg) and composite.sources[0].descending
    with pytest.raises(InvalidArgument, match="Unsupported agg \\[g\\] of type \\[global\\]"):
        parse_aggs({"g": {"global": {}}}, STRICT)
    with pytest.raises(InvalidArgument, match="Unsupported aggregation of type \\[bucket_sort\\]"):
        parse_aggs({"g": {"bucket_sort": {}}}, STRICT)


# -- in memory ---------------------------------------------------------------------------------------

DOCS = [
    {"_id": "1", "title": "alpha", "body": "The quick fox", "published": 1000, "draft": False,
     "labels": {"env": ["prod", "eu"], "n": 3}, "meta": {"author": "Ann"}},
    {"_id": "2", "title": "beta", "body": "lazy dog", "published": 2000, "draft": True, "labels": {"env": "dev"}},
    {"_id": "3", "title": "Gamma", "published": None, "labels": {}, "meta": {"author": "bob"}},
]  # fmt: skip


def ids(query: Any, rules: Rules = STRICT) -> list[str]:
    matches = memory.compile_query(parse_query(query, rules))
    return [d["_id"] for d in DOCS if matches(d)]


def test_memory_evaluation() -> None:
    assert ids(None) == ["1", "2", "3"]
    assert ids({"term": {"labels.env": "eu"}}) == ["1"]  # array elements one by one
    assert ids({"term": {"labels.n": 3}}) == ["1"]  # leaves are keywords
    assert ids({"term": {"draft": "true"}}) == ["2"]
    assert ids({"term": {"author": {"value": "ANN", "case_insensitive": True}}}) == ["1"]
    assert ids({"terms": {"title": ["beta", "Gamma"]}}) == ["2", "3"]
    assert ids({"prefix": {"title": {"value": "G", "case_insensitive": True}}}) == ["3"]
    assert ids({"wildcard": {"title": "?e*"}}) == ["2"]
    assert ids({"exists": {"field": "published"}}) == ["1", "2"]
    assert ids({"range": {"published": {"gte": 1500}}}) == ["2"]
    assert ids({"ids": {"values": ["3", "9"]}}) == ["3"]
    assert ids({"match": {"body": "FOX cat"}}) == ["1"]
    assert ids({"match": {"body": {"query": "fox cat", "operator": "and"}}}) == []
    assert ids({"bool": {"should": [{"term": {"title": "alpha"}}, {"term": {"title": "beta"}}]}}) == ["1", "2"]
    live_labelled = {"filter": [{"exists": {"field": "labels.env"}}], "must_not": [{"term": {"draft": True}}]}
    assert ids({"bool": live_labelled}) == ["1"]
    assert ids({"simple_query_string": {"query": "qui*", "fields": ["body"]}}, LENIENT) == ["1"]
    assert ids({"simple_query_string": {"query": "dog"}}, LENIENT) == ["2"]  # every field of the document


def test_memory_sort() -> None:
    keys = parse_sort([{"draft": "desc"}, "title"], STRICT)
    ordered = memory.sort_docs(DOCS, keys)
    # A missing value sorts as "", after every boolean (so first, descending); then True, False.
    assert [d["_id"] for d in ordered] == ["3", "2", "1"]
    assert memory.sort_values(ordered[1], keys) == [True, "beta"]
    assert [d["_id"] for d in memory.sort_docs(DOCS, parse_sort(["title"], STRICT))] == ["3", "1", "2"]
    assert memory.sort_values(DOCS[2], parse_sort(["published"], STRICT)) == [None]


# -- rendering ---------------------------------------------------------------------------------------


def test_rendering_with_typed_keys() -> None:
    aggs = parse_aggs(
        {
            "by_title": {"terms": {"field": "title"}, "aggs": {"drafts": {"filter": {"term": {"draft": True}}}}},
            "by_day": {"terms": {"field": "published"}},
            "by_draft": {"terms": {"field": "draft"}},
            "when": {"date_range": {"field": "published", "keyed": True, "ranges": [{"to": 1500}, {"from": 1500}]}},
            "size": {"range": {"field": "title", "ranges": [{"from": 1, "key": "big"}]}},
            "kinds": {"filters": {"filters": {"drafts": {"term": {"draft": True}}}}},
            "pages": {"composite": {"sources": [{"t": {"terms": {"field": "title"}}}]}},
        },
        STRICT,
    )
    results = {
        "by_title": TermsResult([Bucket("alpha", 1, {"drafts": SingleBucket(0)})], 2),
        "by_day": TermsResult([Bucket(86_400_000, 2)], 0),
        "by_draft": TermsResult([Bucket(True, 1), Bucket(False, 2)], 0),
        "when": RangeResult([RangeBucket(RangeSpec(None, None, 1500), 1), RangeBucket(RangeSpec(None, 1500, None), 2)]),
        "size": RangeResult([RangeBucket(RangeSpec("big", 1, None, True), 0)]),
        "kinds": FiltersResult([("drafts", SingleBucket(1, {}))]),
        "pages": CompositeResult([Bucket({"t": "alpha"}, 1), Bucket({"t": "beta"}, 1)], {"t": "beta"}),
    }
    out = render_aggregations(aggs, results, typed_keys=True)
    assert list(out) == [
        "sterms#by_title",
        "lterms#by_day",
        "lterms#by_draft",
        "date_range#when",
        "range#size",
        "filters#kinds",
        "composite#pages",
    ]
    assert out["sterms#by_title"] == {
        "doc_count_error_upper_bound": 0,
        "sum_other_doc_count": 2,
        "buckets": [{"key": "alpha", "doc_count": 1, "filter#drafts": {"doc_count": 0}}],
    }
    assert out["lterms#by_day"]["buckets"] == [
        {"key_as_string": "1970-01-02T00:00:00.000Z", "key": 86_400_000, "doc_count": 2}
    ]
    assert out["lterms#by_draft"]["buckets"][0] == {"key": 1, "key_as_string": "true", "doc_count": 1}
    assert out["date_range#when"] == {
        "buckets": {
            "*-1970-01-01T00:00:01.500Z": {"to": 1500, "to_as_string": "1970-01-01T00:00:01.500Z", "doc_count": 1},
            "1970-01-01T00:00:01.500Z-*": {"from": 1500, "from_as_string": "1970-01-01T00:00:01.500Z", "doc_count": 2},
        }
    }
    assert out["range#size"] == {"buckets": [{"key": "big", "from": 1, "doc_count": 0}]}
    assert out["filters#kinds"] == {"buckets": {"drafts": {"doc_count": 1}}}
    assert out["composite#pages"]["after_key"] == {"t": "beta"}
    plain = render_aggregations(aggs[-1:], {"pages": CompositeResult([], None)})
    assert plain == {"pages": {"buckets": []}}
    unnamed = render_aggregations(
        parse_aggs({"r": {"range": {"field": "title", "ranges": [{"from": 1, "to": 2}]}}}, STRICT),
        {"r": RangeResult([RangeBucket(RangeSpec(None, 1, 2), 4)])},
    )
    assert unnamed == {"r": {"buckets": [{"key": "1.0-2.0", "from": 1, "to": 2, "doc_count": 4}]}}
    metric = parse_aggs({"n": {"terms": {"field": "title"}}}, STRICT)
    assert render_aggregations(metric, {"n": TermsResult([], 0)})["n"]["buckets"] == []
    assert render_aggregations([], {"x": ValueResult(3)}) == {}


def test_every_now_of_a_query_is_one_instant() -> None:
    # Elasticsearch reads the clock once per request: two "now-30d" of one query are equal, whatever
    # time passes while it is parsed (the unused-keys view's count relies on it).
    clauses = [{"range": {"published": {"lt": "now-30d"}}} for _ in range(200)]
    parsed = parse_query({"bool": {"filter": clauses}}, STRICT)
    assert isinstance(parsed, Bool)
    ranges = [clause for clause in parsed.filter if isinstance(clause, Range)]
    assert len(ranges) == 200
    assert len({bound for clause in ranges for bound in clause.bounds}) == 1
