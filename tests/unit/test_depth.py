"""Depth limits and deep values: the body parser's 1000 levels, writing any accepted depth, flattened depth."""

from __future__ import annotations

import orjson
import pytest

from keyplane import jsontext, limits
from keyplane.documents import deep_copy, deep_merge
from keyplane.errors import InvalidArgument, ValidationError
from keyplane.http.body import decode
from keyplane.http.errors import EsError, from_domain
from keyplane.http.render import render
from keyplane.store.nul import ESC, seal, unseal


def nested(depth: int, leaf: object = 1) -> object:
    value = leaf
    for i in range(depth):
        value = {"a": value} if i % 2 else [value]
    return value


SHALLOW = [{}, [], None, "s\x00é", 1.5, {"a": [1, {"b": None, "c": [True, {}, []]}], "d": {"e": "f"}}]


@pytest.mark.parametrize("value", SHALLOW)
@pytest.mark.parametrize("pretty", [False, True])
def test_dumps_equals_orjson_where_orjson_can_write(value: object, pretty: bool) -> None:
    expected = orjson.dumps(value, option=orjson.OPT_INDENT_2) if pretty else orjson.dumps(value)
    assert jsontext.dumps(value, pretty=pretty) == expected
    assert jsontext._dumps_deep(value, pretty) == expected


@pytest.mark.parametrize("pretty", [False, True])
def test_dumps_writes_every_depth_the_parser_accepts(pretty: bool) -> None:
    value = nested(1000, {"k": ["v"]})
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(value)
    text = jsontext.dumps(value, pretty=pretty)
    # (== on such values would itself exceed Python's recursion limit: compare the texts.)
    assert jsontext.dumps(orjson.loads(text)) == jsontext.dumps(value)
    assert render(value, pretty).endswith(b"\n") is pretty


def test_decode_accepts_1000_levels_and_refuses_1001() -> None:
    assert decode(b"[" * 1000 + b"]" * 1000, required=True) is not None
    for depth in (1001, 1024, 1025, 100_000):
        with pytest.raises(EsError) as caught:
            decode(b"[" * depth + b"]" * depth, required=True)
        assert caught.value.status == 400
        assert caught.value.type == "x_content_parse_exception"
        assert caught.value.reason == (
            "[1:1001] Document nesting depth (1001) exceeds the maximum allowed (1000, from "
            "`StreamReadConstraints.getMaxNestingDepth()`)"
        )


def test_brackets_inside_strings_do_not_count() -> None:
    raw = orjson.dumps({"s": "[{" * 5000, "t": ['\\"[[' * 2000]})
    assert decode(raw, required=True)["s"] == "[{" * 5000


def test_a_wide_body_is_not_scanned_slowly() -> None:
    raw = orjson.dumps([{"a": [i]} for i in range(50_000)])
    jsontext.check_depth(raw, orjson.loads(raw))  # orjson can write it, so no scan happens


def test_flattened_depth_counts_objects_not_arrays() -> None:
    assert limits.object_depth({"a": [[[{"b": 1}]]]}) == 2
    assert limits.object_depth([[1]]) == 0
    twenty = nested(39)  # alternating array/object: 19 objects inside...
    limits.check_flattened("f", {"x": twenty})
    with pytest.raises(limits.FlattenedTooDeep) as caught:
        limits.check_flattened("f", {"x": {"y": twenty}})
    err = from_domain(caught.value)
    assert (err.status, err.type) == (400, "document_parsing_exception")
    assert err.body()["error"]["caused_by"]["reason"] == (
        "The provided [flattened] field [f] exceeds the maximum depth limit of [20]."
    )


def test_document_ids_are_limited_in_utf8_bytes() -> None:
    limits.check_id("x" * 512)
    limits.check_id("é" * 256)
    with pytest.raises(ValidationError, match="but was: 514"):
        limits.check_id("é" * 257)


def test_query_depth() -> None:
    limits.check_query_depth(30)
    with pytest.raises(InvalidArgument, match=r"\[indices.query.bool.max_nested_depth\]"):
        limits.check_query_depth(31)


def test_deep_merge_and_copy_do_not_recurse() -> None:
    target = {"a": nested(900)}
    deep_merge(target, {"a": nested(900, 2), "b": nested(990)})
    assert jsontext.dumps(target) == jsontext.dumps({"a": nested(900, 2), "b": nested(990)})
    copied = deep_copy(target)
    assert jsontext.dumps(copied) == jsontext.dumps(target) and copied["b"] is not target["b"]


@pytest.mark.parametrize(
    "text", ["", "plain", "a\x00b", "\x00", ESC, ESC + "0", "x" + ESC, ESC + "a", "\x00" + ESC * 3]
)
def test_seal_round_trips_and_keeps_ordinary_text(text: str) -> None:
    assert "\x00" not in seal(text)
    assert unseal(seal(text)) == text
    if "\x00" not in text and ESC not in text:
        assert seal(text) == text
