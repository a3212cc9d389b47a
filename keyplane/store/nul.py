"""Text the stores can hold whatever it contains.

PostgreSQL refuses the NUL character in ``text``/``varchar`` values and cannot extract a JSON string
holding ``\\u0000`` as text; SQLite keeps NUL in columns but its JSON functions cut a string at it.
Elasticsearch keeps any string. So NUL is stored as a two-character escape where needed (text
columns on PostgreSQL, JSON columns on both stores) and the escape is undone when reading; values
without NUL or the escape character are stored unchanged, so ordinary values, their indexes and
their sort order are untouched.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from keyplane import jsontext

# U+FFFF is a Unicode noncharacter: valid in UTF-8 text yet never meant for interchange, so escaping
# it (doubled) costs nothing in practice.
ESC = "\uffff"
_NUL = "\x00"
_NUL_ESCAPED = b"\\u0000"  # NUL as orjson writes it in JSON text
_ESC_BYTES = ESC.encode()


def seal(text: str) -> str:
    """The stored form of ``text`` on PostgreSQL."""
    if _NUL not in text and ESC not in text:
        return text
    return text.replace(ESC, ESC + ESC).replace(_NUL, ESC + "0")


def unseal(text: str) -> str:
    """The value ``seal`` was given."""
    if ESC not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        following = text[i + 1] if i + 1 < n else ""
        if ch == ESC and following in ("0", ESC):
            out.append(_NUL if following == "0" else ESC)
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _walk(value: Any, fix: Any) -> Any:
    """``value`` with ``fix`` applied to every string, object keys included (iterative: any depth)."""
    if isinstance(value, str):
        return fix(value)
    if not isinstance(value, (dict, list)):
        return value
    root: list[Any] = [value]
    stack: list[tuple[Any, Any, Any]] = [(root, 0, value)]
    while stack:
        parent, slot, node = stack.pop()
        if isinstance(node, dict):
            copy: dict[str, Any] = {}
            parent[slot] = copy
            for key, item in node.items():
                key = fix(key)
                copy[key] = item
                stack.append((copy, key, item))
        elif isinstance(node, list):
            items = list(node)
            parent[slot] = items
            for i, item in enumerate(items):
                stack.append((items, i, item))
        elif isinstance(node, str):
            parent[slot] = fix(node)
    return root[0]


def _needs_sealing(value: Any) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if _NUL in node or ESC in node:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


class SafeString(TypeDecorator[str]):
    """``String`` that keeps NUL on PostgreSQL (lookups and LIKE patterns bound to it are sealed alike)."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or dialect.name != "postgresql" or not isinstance(value, str):
            return value
        return seal(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return _unsealed(value) if dialect.name == "postgresql" else value

    # Nothing to convert outside PostgreSQL: no per-value call at all (a list reads thousands).
    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "postgresql":
            return None
        if self.impl_instance.bind_processor(dialect) is None:
            # The driver takes the text as it is: one plain function per value, not the decorator's
            # wrapper around process_bind_param (a key's insert binds eight such values).
            return _sealed
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name != "postgresql":
            return None
        if self.impl_instance.result_processor(dialect, coltype) is None:
            # The driver's text needs only unsealing: one plain function per value, not the
            # decorator's wrapper around process_result_value (a key row has a dozen such columns).
            return _unsealed
        return super().result_processor(dialect, coltype)


def _sealed(value: Any) -> Any:
    """``process_bind_param`` on PostgreSQL as one call (never given None: the callers skip it)."""
    if isinstance(value, str) and (_NUL in value or ESC in value):
        return seal(value)
    return value


def _unsealed(value: str | None) -> str | None:
    return None if value is None else unseal(value)


class SafeText(SafeString):
    """``Text`` that keeps NUL on PostgreSQL."""

    impl = Text
    cache_ok = True


class SafeJSON(TypeDecorator[Any]):
    """``JSON`` whose strings (keys and values) are sealed on both stores, so SQL can read them as text."""

    impl = JSON
    cache_ok = True

    def __init__(self, none_as_null: bool = False) -> None:
        super().__init__(none_as_null=none_as_null)

    def bind_processor(self, dialect: Dialect) -> Any:
        # Written by orjson, not json.dumps: non-ASCII keys stay as they are (SQLite's JSON paths match
        # object keys as written), and any depth the body parser accepted can be written.
        def process(value: Any) -> str | None:
            if value is None:
                return None
            text = jsontext.dumps(value)
            # orjson writes NUL as the escape \u0000 and U+FFFF as its UTF-8 bytes: text holding
            # neither has no string to seal (a backslash before "u0000" only sends it the slow way).
            if (_NUL_ESCAPED in text or _ESC_BYTES in text) and _needs_sealing(value):
                text = jsontext.dumps(_walk(value, seal))
            return text.decode()

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None or isinstance(value, str) or not _needs_sealing(value):
            return value
        return _walk(value, unseal)


class SealedString(TypeDecorator[str]):
    """Text read out of, or compared with, a ``SafeJSON`` column: sealed on both stores."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return seal(value) if isinstance(value, str) else value

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return unseal(value) if isinstance(value, str) else value
