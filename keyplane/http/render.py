"""Answers as JSON text: orjson's output, for any value the body parser accepted (up to 1000 levels)."""

from __future__ import annotations

from typing import Any

import orjson

from keyplane.jsontext import dumps


def render(body: Any, pretty: bool) -> bytes:
    """The bytes of an answer; ``pretty`` indents by two spaces and ends with a newline, as Elasticsearch does."""
    if pretty:
        return dumps(body, pretty=True) + b"\n"
    try:
        return orjson.dumps(body)  # every answer but the deepest: straight to orjson, no detour
    except orjson.JSONEncodeError:
        return dumps(body)
