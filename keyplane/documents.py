"""JSON documents as Elasticsearch changes them: the partial-document merge, and a copy of any depth."""

from __future__ import annotations

from typing import Any

import orjson

from keyplane import jsontext


def deep_merge(target: dict[str, Any], partial: dict[str, Any]) -> None:
    """Elasticsearch's partial-document update: objects merge, everything else replaces.

    Iterative, and copies through JSON text, so that values as deep as a body may be (1000 levels) merge.
    """
    pending = [(target, partial)]
    while pending:
        into, source = pending.pop()
        for key, value in source.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                pending.append((into[key], value))
            else:
                into[key] = deep_copy(value)


def deep_copy(value: Any) -> Any:
    """A copy of a JSON value of any depth the body parser accepts (``copy.deepcopy`` recurses)."""
    if isinstance(value, (dict, list)):
        return orjson.loads(jsontext.dumps(value))
    return value
