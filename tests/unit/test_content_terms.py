"""The term rows of a document (``keyplane.indices.terms.term_rows``): the bulk path's inlined version
gives exactly the rows of the plain one it replaced, kept here as the reference."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from keyplane.indices import terms
from keyplane.indices.terms import BOOLEAN, MAX_EXACT_INT, NUMBER, OTHER, SEP, STRING, TermRow


class _Irregular(Exception):
    pass


def _fits(text: str, limit: int) -> bool:
    if "\x00" in text or "\uffff" in text:
        return False
    return len(text) <= limit // 4 or len(text.encode()) <= limit


def _scalar(prefix: str, value: Any, out: dict[str, float | None]) -> None:
    if isinstance(value, str):
        if not _fits(value, terms.MAX_VALUE_BYTES):
            raise _Irregular
        out[prefix + STRING + value] = None
    elif isinstance(value, bool):
        out[prefix + (BOOLEAN + "true" if value else BOOLEAN + "false")] = 1.0 if value else 0.0
    elif isinstance(value, int):
        if abs(value) > MAX_EXACT_INT:
            raise _Irregular
        out[prefix + NUMBER + str(value)] = float(value)
    elif isinstance(value, float):
        out[prefix + NUMBER + str(value)] = value
    else:
        out[prefix + OTHER] = None


def reference_rows(source: dict[str, Any]) -> list[TermRow]:
    """term_rows as written before the bulk path inlined it (commit 3ac6ab2)."""
    out: dict[str, float | None] = {}
    if "_id" in source:
        return [terms.IRREGULAR_ROW]
    pending: list[tuple[str, dict[str, Any]]] = [("", source)]
    try:
        while pending:
            prefix, node = pending.pop()
            for name, value in node.items():
                if not name or "." in name or SEP in name:
                    raise _Irregular
                field = prefix + name
                if isinstance(value, dict):
                    if not _fits(field, terms.MAX_FIELD_BYTES):
                        raise _Irregular
                    out[field + SEP + OTHER] = None
                    pending.append((field + ".", value))
                elif value is None or value == []:
                    continue
                else:
                    if not _fits(field, terms.MAX_FIELD_BYTES):
                        raise _Irregular
                    if isinstance(value, list):
                        for item in value:
                            _scalar(field + SEP, item, out)
                    else:
                        _scalar(field + SEP, value, out)
    except _Irregular:
        return [terms.IRREGULAR_ROW]
    return list(out.items())


# Texts near the bounds and with the characters that make a document irregular.
_texts = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["a.b", "", "\x00", "x\uffff", SEP, "é" * 200, "é" * 600, "a" * 1025, "é" * 130, "a" * 512]),
)
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.sampled_from([2**53, 2**53 + 1, -(2**53) - 1, 0, 1]),
    st.floats(allow_nan=False),
    _texts,
)
_values = st.recursive(
    _leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_texts, inner, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=600, deadline=None)
@given(st.dictionaries(_texts, _values, max_size=6))
def test_term_rows_are_the_reference_rows(source: dict[str, Any]) -> None:
    assert terms.term_rows(source) == reference_rows(source)


def test_term_rows_of_usual_documents() -> None:
    doc = {"title": "document number 7", "tag": "t7", "size": 7, "ok": False, "ratio": 0.5, "none": None, "e": []}
    assert terms.term_rows(doc) == reference_rows(doc)
    assert dict(terms.term_rows(doc)) == {
        f"title{SEP}sdocument number 7": None,
        f"tag{SEP}st7": None,
        f"size{SEP}n7": 7.0,
        f"ok{SEP}bfalse": 0.0,
        f"ratio{SEP}n0.5": 0.5,
    }
    for irregular in ({"a.b": 1}, {"": 1}, {"a": "\x00"}, {"a": 2**53 + 1}, {"a" * 600: 1}, {"_id": "x"}):
        assert terms.term_rows(irregular) == [terms.IRREGULAR_ROW] == reference_rows(irregular)
    # A too-long field without a value is no row, and no reason to evaluate the document in memory.
    assert terms.term_rows({"a" * 600: None, "b": 1}) == reference_rows({"a" * 600: None, "b": 1})
