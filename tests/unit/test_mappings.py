"""Mapping merges (put mapping), dynamic mapping of new document fields, date math in index names,
index statistics and the _cat/indices table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyplane.errors import InvalidArgument, ParseError
from keyplane.indices import datemath, stats
from keyplane.indices.core import IndexMeta
from keyplane.indices.mappings import StrictDynamicMapping, dynamic_update, maps_every_field, merge

TEXT = {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}


def test_merge_adds_fields_and_keeps_existing() -> None:
    current = {"properties": {"a": {"type": "long"}, "o": {"properties": {"x": {"type": "keyword"}}}}}
    update = {"properties": {"b": {"type": "text"}, "o": {"properties": {"y": {"type": "date"}}}}, "dynamic": "strict"}
    merged = merge(current, update)
    assert merged == {
        "properties": {
            "a": {"type": "long"},
            "b": {"type": "text"},
            "o": {"properties": {"x": {"type": "keyword"}, "y": {"type": "date"}}},
        },
        "dynamic": "strict",
    }
    assert current["properties"]["o"] == {"properties": {"x": {"type": "keyword"}}}  # not modified in place


def test_merge_refuses_a_type_change_as_elasticsearch_words_it() -> None:
    with pytest.raises(InvalidArgument, match=r"mapper \[o.x\] cannot be changed from type \[keyword\] to \[long\]"):
        merge(
            {"properties": {"o": {"properties": {"x": {"type": "keyword"}}}}},
            {"properties": {"o": {"properties": {"x": {"type": "long"}}}}},
        )
    with pytest.raises(InvalidArgument, match=r"can't merge a non object mapping \[a\] with an object mapping"):
        merge({"properties": {"a": {"type": "long"}}}, {"properties": {"a": {"properties": {"b": {"type": "long"}}}}})


def test_merge_adds_multi_fields() -> None:
    merged = merge(
        {"properties": {"t": {"type": "text"}}},
        {"properties": {"t": {"type": "text", "fields": {"raw": {"type": "keyword"}}}}},
    )
    assert merged["properties"]["t"] == {"type": "text", "fields": {"raw": {"type": "keyword"}}}


def test_dynamic_update_maps_new_fields_by_their_json_type() -> None:
    source = {
        "s": "hello",
        "n": 3,
        "f": 1.5,
        "b": True,
        "d": "2024-03-01T10:00:00Z",
        "o": {"x": "y"},
        "l": [None, 2],
        "z": None,
    }
    assert dynamic_update({}, source) == {
        "properties": {
            "s": TEXT,
            "n": {"type": "long"},
            "f": {"type": "float"},
            "b": {"type": "boolean"},
            "d": {"type": "date"},
            "o": {"properties": {"x": TEXT}},
            "l": {"type": "long"},
        }
    }


def test_dynamic_update_is_none_when_nothing_is_new_and_keeps_explicit_types() -> None:
    mappings = {"properties": {"n": {"type": "keyword"}, "o": {"properties": {"x": {"type": "long"}}}}}
    assert dynamic_update(mappings, {"n": 5, "o": {"x": 1}}) is None
    assert dynamic_update(mappings, {"o": {"y": "2024/01/02"}}) == {
        "properties": {"n": {"type": "keyword"}, "o": {"properties": {"x": {"type": "long"}, "y": {"type": "date"}}}}
    }


def test_dotted_names_map_as_objects() -> None:
    assert dynamic_update({}, {"a.b": 1}) == {"properties": {"a": {"properties": {"b": {"type": "long"}}}}}


def test_dynamic_false_ignores_and_strict_refuses_new_fields() -> None:
    assert dynamic_update({"dynamic": False, "properties": {}}, {"x": 1}) is None
    nested_strict = {"properties": {"o": {"dynamic": "strict", "properties": {}}}}
    with pytest.raises(StrictDynamicMapping, match=r"dynamic introduction of \[x\] within \[o\] is not allowed"):
        dynamic_update(nested_strict, {"o": {"x": 1}})
    assert dynamic_update(nested_strict, {"top": 1}) == {
        "properties": {"o": {"dynamic": "strict", "properties": {}}, "top": {"type": "long"}}
    }


NOW = datetime(2024, 3, 17, 22, 5, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "name"),
    [
        ("<logstash-{now/M}>", "logstash-2024.03.01"),
        ("<logstash-{now/d}>", "logstash-2024.03.17"),
        ("<logstash-{now-1M/d}>", "logstash-2024.02.17"),
        ("<app-{now/d{yyyy.MM.dd|+05:00}}>", "app-2024.03.18"),
        ("<app-{now/w{uuuu-MM-dd HH:mm}}>", "app-2024-03-11 00:00"),
        ("<\\{x\\}-{now/y{yyyy}}>", "{x}-2024"),
        ("plain-name", "plain-name"),
    ],
)
def test_date_math_names(expression: str, name: str) -> None:
    assert datemath.resolve(expression, NOW) == name


@pytest.mark.parametrize("expression", ["<a-{now/M>", "<a-{then}>", "<a-{now/d{yyyy|Nowhere/Zone}}>", "<a-}>"])
def test_date_math_refuses_bad_expressions(expression: str) -> None:
    with pytest.raises(ParseError, match="invalid dynamic name expression"):
        datemath.resolve(expression, NOW)


def _stats(name: str, replicas: str, docs: int, size: int) -> stats.IndexStats:
    meta = IndexMeta(
        name, "u" * 22, 1_700_000_000_123, {"index.number_of_replicas": replicas, "index.number_of_shards": "2"}
    )
    return stats.IndexStats(meta, docs, size)


def test_stats_health_shards_and_metrics() -> None:
    green, yellow = _stats("a", "0", 2, 100), _stats("b", "1", 1, 2048)
    assert (green.health, green.shards_total, yellow.health, yellow.shards_total) == ("green", 2, "yellow", 4)
    assert stats.metrics(["docs"], "/_stats/docs") == ("docs",)
    assert stats.metrics(["_all"], "/_stats/_all") == stats.MEASURED
    assert stats.metrics(["indexing"], "/_stats/indexing") == ()
    with pytest.raises(InvalidArgument, match=r"request \[/_stats/nope\] contains unrecognized metric: \[nope\]"):
        stats.metrics(["nope"], "/_stats/nope")


def test_cat_rows_sizes_sorting_and_table() -> None:
    assert [stats.byte_size(n, None) for n in (0, 225, 1536, 3 << 20)] == ["0b", "225b", "1.5kb", "3mb"]
    assert stats.byte_size(2048, "kb") == "2"
    rows = [stats.row(_stats(n, "0", d, s), None) for n, d, s in (("foo", 10, 5000), ("bar", 2, 300))]
    assert rows[0]["creation.date.string"] == "2023-11-14T22:13:20.123Z"
    ordered = stats.sort_rows(rows, ["docs.count:desc"])
    assert [r["index"] for r in ordered] == ["foo", "bar"]
    assert [r["index"] for r in stats.sort_rows(rows, ["store.size"])] == ["bar", "foo"]
    text = stats.table(ordered, stats.columns(["i", "dc"]), header=True)
    assert text == "index docs.count\nfoo           10\nbar            2\n"
    with pytest.raises(InvalidArgument):
        stats.columns(["nope"])
    with pytest.raises(InvalidArgument):
        stats.check_health("invalid-health-value")


@given(
    mappings=st.recursive(
        st.fixed_dictionaries({"type": st.sampled_from(["keyword", "long", "text"])}),
        lambda inner: st.fixed_dictionaries(
            {"properties": st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3)}
        ),
        max_leaves=6,
    ),
    source=st.recursive(
        st.one_of(st.none(), st.integers(), st.text(max_size=2), st.lists(st.none(), max_size=2)),
        lambda inner: st.dictionaries(st.sampled_from(["a", "b", "c", "a.b", "b.c"]), inner, max_size=3),
        max_leaves=6,
    ),
)
def test_maps_every_field_agrees_with_dynamic_update(mappings: dict[str, Any], source: Any) -> None:
    if not isinstance(source, dict) or "properties" not in mappings:
        return
    assert maps_every_field(mappings, source) == (dynamic_update(mappings, source) is None)
