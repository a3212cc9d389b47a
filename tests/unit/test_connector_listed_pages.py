"""Rendered connector pages are reused only for the very list of texts they were rendered from."""

from __future__ import annotations

import orjson

from keyplane.connectors import listed


def _texts(name: str) -> list[tuple[str, str]]:
    return [("a", orjson.dumps({"name": name}).decode()), ("b", '{"name":"b"}')]


def test_same_list_same_answer() -> None:
    texts = _texts("one")
    first = listed.listed_page(("k",), texts)
    assert listed.listed_page(("k",), texts) is first
    assert orjson.loads(orjson.dumps(first)) == [{"id": "a", "name": "one"}, {"id": "b", "name": "b"}]


def test_another_list_is_rendered_again() -> None:
    kept = listed.listed_page(("k2",), _texts("one"))
    changed = listed.listed_page(("k2",), _texts("two"))  # an equal key, another list: read again
    assert changed is not kept
    assert orjson.loads(orjson.dumps(changed))[0] == {"id": "a", "name": "two"}
    texts = _texts("two")
    assert listed.listed_page(None, texts) is not listed.listed_page(None, texts)


def test_kept_pages_are_bounded() -> None:
    for i in range(listed.MAX_KEPT):
        listed.listed_page(("many", i), _texts(str(i)))
    assert sum(len(texts) for texts, _ in listed._PAGES.values()) <= listed.MAX_KEPT  # noqa: SLF001
    assert listed._pages_kept == sum(len(texts) for texts, _ in listed._PAGES.values())  # noqa: SLF001
