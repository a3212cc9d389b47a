"""``term_rows`` remembers the keys of top-level field names it gave a row: a name's second document
(any value kind, any order of first sight) has exactly the rows of the reference, and names that are
invalid, too long, or only seen without a value are never taken as known."""

from __future__ import annotations

from typing import Any

import pytest

from keyplane.indices import terms
from tests.unit.test_content_terms import reference_rows


@pytest.fixture(autouse=True)
def _no_known_names() -> None:
    terms._TOP_KEYS.clear()


_VALUES: list[Any] = [
    "t1",
    "",
    "\x00",
    "x\uffff",
    "é" * 300,
    "a" * 1025,
    7,
    -(2**53),
    2**53 + 1,
    True,
    False,
    0.5,
    None,
    [],
    [1, "a", None],
    {"b": 1},
    {"b": {"c": "d"}},
]
_NAMES = ["tag", "a.b", "", terms.SEP, "n\x00", "é" * 130, "a" * 129, "_id"]


@pytest.mark.parametrize("name", _NAMES)
def test_a_name_seen_before_gives_the_reference_rows(name: str) -> None:
    for first in _VALUES:
        terms._TOP_KEYS.clear()
        terms.term_rows({name: first, "other": 1})
        for value in _VALUES:
            doc = {name: value, "other": 1}
            assert terms.term_rows(doc) == reference_rows(doc), (first, value)


def test_only_valid_names_given_a_row_are_known() -> None:
    terms.term_rows({"none": None, "empty": [], "a.b": 1})
    terms.term_rows({"long" * 40: 1, "n\x00": 1})
    terms.term_rows({"tag": "t", "size": 1, "obj": {"x": 1}})
    assert set(terms._TOP_KEYS) == {"tag", "size", "obj"}
    assert terms.term_rows({"none": "x"}) == [(f"none{terms.SEP}sx", None)]


def test_known_names_are_bounded() -> None:
    for n in range(terms._TOP_NAMES + 10):
        terms.term_rows({f"f{n}": n})
    assert len(terms._TOP_KEYS) == terms._TOP_NAMES
    doc = {f"f{terms._TOP_NAMES + 5}": "v", "f1": "w"}
    assert terms.term_rows(doc) == reference_rows(doc)
