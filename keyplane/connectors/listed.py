"""Connectors of a list as JSON fragments, kept by their stored text.

A list answers each connector as ``{"id": ..., **document}``. Parsing every stored document and
writing it again was most of a list's CPU (20 documents of ~1.5 KB: ~75 µs of parsing per request),
though documents rarely change between lists. Here each one is written once, as orjson writes it
inside the answer, and kept as an ``orjson.Fragment`` under its id and stored text: the same text
gives the same bytes, and a changed document has another text, so nothing is ever stale.
"""

from __future__ import annotations

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
