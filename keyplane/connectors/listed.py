"""Connectors of a list as JSON fragments, kept by their stored text.

A list answers each connector as ``{"id": ..., **document}``. Parsing every stored document and
writing it again was most of a list's CPU (20 documents of ~1.5 KB: ~75 µs of parsing per request),
though documents rarely change between lists. Here each one is written once, as orjson writes it
inside the answer, and kept as an ``orjson.Fragment`` under its id and stored text: the same text
gives the same bytes, and a changed document has another text, so nothing is ever stale.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import orjson

# Fragments kept (about 2 x 1.5 KB each): enough for the pages a console lists again and again.
MAX_KEPT = 512
# A fragment is inserted whole: answers written by jsontext's deep-document writer (past orjson's
# ~254 levels) cannot hold one, so a document with more brackets than this is answered parsed.
MAX_BRACKETS = 200

# By id, the stored text the fragment was written from, and the fragment: a list compares each row's
# text with the kept one (a length test, then the bytes) rather than hashing ~1.5 KB of it for a key.
_KEPT: dict[str, tuple[str, orjson.Fragment]] = {}


def listed(connector_id: str, text: str) -> Any:
    """The connector as a list answers it: a fragment of its JSON, or the parsed document."""
    found = _KEPT.get(connector_id)
    if found is not None and found[0] == text:
        return found[1]
    doc = {"id": connector_id, **orjson.loads(text)}
    if text.count("{") + text.count("[") > MAX_BRACKETS:
        return doc
    fragment = orjson.Fragment(orjson.dumps(doc))
    if len(_KEPT) >= MAX_KEPT and connector_id not in _KEPT:
        _KEPT.clear()
    _KEPT[connector_id] = (text, fragment)
    return fragment


# Pages rendered, by their list (``listed_page``'s key): the list of texts each was rendered from and its
# connectors as rendered; ``_pages_kept`` connectors in all, at most MAX_KEPT.
_PAGES: dict[Hashable, tuple[list[tuple[str, str]], list[Any]]] = {}
_pages_kept = 0


def listed_page(key: Hashable | None, texts: list[tuple[str, str]]) -> list[Any]:
    """A page's connectors as ``listed`` answers them. A repository that answers an unchanged page with
    the very list of texts it answered before (PostgreSQL keeps pages) gets the same rendered list
    back, without a look-up per connector: the list of texts is held here, so no other list has its
    identity. ``key``: what names the list (None: not kept); the answer is shared, never to be changed."""
    global _pages_kept
    if key is not None:
        found = _PAGES.get(key)
        if found is not None and found[0] is texts:
            return found[1]
    # ``listed`` written out for the connectors kept at their text: a function call each was most of it
    rendered: list[Any] = []
    kept = _KEPT.get
    for connector_id, text in texts:
        fragment = kept(connector_id)
        rendered.append(fragment[1] if fragment is not None and fragment[0] == text else listed(connector_id, text))
    if key is not None and len(texts) <= MAX_KEPT:
        old = _PAGES.pop(key, None)
        _pages_kept -= len(old[0]) if old is not None else 0
        if _pages_kept + len(texts) > MAX_KEPT:
            _PAGES.clear()
            _pages_kept = 0
        _PAGES[key] = (texts, rendered)
        _pages_kept += len(texts)
    return rendered
