"""The leaf values of a document as searches pushed down to the store read them: one row per
(field path, value) that ``keyplane.query.memory.values`` would find, so that a term, terms, exists or
range query over these rows matches exactly the documents the in-memory evaluator matches.

A row's key is one string, ``field SEP kind value``: one short key per row keeps the store's index
small, and a field's values of one kind are one contiguous range of keys in byte order (a string
range query is a key range). Numbers and booleans also carry their number.

A document whose shape these rows cannot describe exactly (a dotted or empty key, a string too long
for a database index or holding NUL, an integer beyond double precision) is marked ``irregular``
instead: pushed-down searches always hand such documents to the in-memory evaluator.
"""

from __future__ import annotations

from typing import Any

# Kinds: a string, a number, a boolean (their text as ``memory.keyword`` gives it), and a value that
# only ``exists`` sees (an object, or an array's null, object or array element).
STRING, NUMBER, BOOLEAN, OTHER = "s", "n", "b", "o"
VALUE_KINDS = (STRING, NUMBER, BOOLEAN)
IRREGULAR = "i"  # the marker row of an irregular document: field and value empty

TermRow = tuple[str, float | None]  # key, number (numbers and booleans)
SEP = "\x01"  # never in a field (such a field makes its document irregular); PostgreSQL text holds no NUL


def key(field: str, kind: str, value: str = "") -> str:
    return f"{field}{SEP}{kind}{value}"


IRREGULAR_ROW: TermRow = (key("", IRREGULAR), None)

# Bounds kept well under PostgreSQL's btree entry limit (about 2,700 bytes, with the index name and id).
MAX_VALUE_BYTES = 1024
MAX_FIELD_BYTES = 512
# Integers compared exactly as doubles.
MAX_EXACT_INT = 2**53


class _Irregular(Exception):
    pass


def _text_fits(text: str, limit: int) -> bool:
    if "\x00" in text or "\uffff" in text:  # the stores' NUL escape would change their order
        return False
    return len(text) <= limit // 4 or len(text.encode()) <= limit


def _scalar(prefix: str, value: Any, out: dict[str, float | None]) -> None:
    """``prefix``: the field and separator."""
    if isinstance(value, str):
        if not _text_fits(value, MAX_VALUE_BYTES):
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
    else:  # None, an object or an array inside an array: only exists sees it
        out[prefix + OTHER] = None


def term_rows(source: dict[str, Any]) -> list[TermRow]:
    """The rows of a document's ``_source`` (``[IRREGULAR_ROW]`` for an irregular one)."""
    out: dict[str, float | None] = {}
    if "_id" in source:  # searches see the document's id there instead
        return [IRREGULAR_ROW]
    pending: list[tuple[str, dict[str, Any]]] = []
    top = _TOP_KEYS
    try:
        # The top-level fields, their usual leaves (exactly a str, int or bool, as JSON gives them) with the
        # keys of a name seen before: this runs for every field of every document written.
        for name, value in source.items():
            keys = top.get(name)
            kind = type(value)
            if keys is None:
                _field("", name, value, out, pending)
                if kind is not type(None) and value != [] and len(name) <= _TOP_NAME_CHARS and len(top) < _TOP_NAMES:
                    top[name] = _keys(name)  # valid and within its bounds: it was given a row
            elif kind is str:
                if "\x00" in value or "\uffff" in value:
                    raise _Irregular
                if len(value) > _VALUE_CHARS and len(value.encode()) > MAX_VALUE_BYTES:
                    raise _Irregular
                out[keys[0] + value] = None
            elif kind is int:
                if value > MAX_EXACT_INT or value < -MAX_EXACT_INT:
                    raise _Irregular
                out[keys[1] + str(value)] = float(value)
            elif kind is bool:
                out[keys[2] if value else keys[3]] = 1.0 if value else 0.0
            else:
                _field("", name, value, out, pending)
        while pending:
            prefix, node = pending.pop()
            for name, value in node.items():
                _field(prefix, name, value, out, pending)
    except _Irregular:
        return [IRREGULAR_ROW]
    return list(out.items())


def _field(
    prefix: str, name: str, value: Any, out: dict[str, float | None], pending: list[tuple[str, dict[str, Any]]]
) -> None:
    """The rows of one field (``prefix``: its parents' path and a dot), its object queued in ``pending``."""
    if not name or "." in name or SEP in name:
        raise _Irregular
    field = prefix + name
    fits = "\x00" not in field and "\uffff" not in field
    fits = fits and (len(field) <= _FIELD_CHARS or len(field.encode()) <= MAX_FIELD_BYTES)
    kind = type(value)
    if kind is str:
        if not fits or "\x00" in value or "\uffff" in value:
            raise _Irregular
        if len(value) > _VALUE_CHARS and len(value.encode()) > MAX_VALUE_BYTES:
            raise _Irregular
        out[field + SEP + STRING + value] = None
    elif kind is int:
        if not fits or value > MAX_EXACT_INT or value < -MAX_EXACT_INT:
            raise _Irregular
        out[field + SEP + NUMBER + str(value)] = float(value)
    elif kind is bool:
        if not fits:
            raise _Irregular
        out[field + (_TRUE if value else _FALSE)] = 1.0 if value else 0.0
    elif isinstance(value, dict):
        if not fits:
            raise _Irregular
        out[field + SEP + OTHER] = None
        pending.append((field + ".", value))
    elif value is None or value == []:
        return
    else:
        if not fits:
            raise _Irregular
        if isinstance(value, list):
            for item in value:
                _scalar(field + SEP, item, out)
        else:
            _scalar(field + SEP, value, out)


def _keys(name: str) -> tuple[str, str, str, str]:
    """The keys of a top-level field's string and number rows (the value follows) and of its booleans."""
    return (name + SEP + STRING, name + SEP + NUMBER, name + _TRUE, name + _FALSE)


# Top-level field names given a row (so valid and within their bounds), with their keys' prefixes: at
# most this many names of at most this many characters (a few hundred KiB); others take the general path.
_TOP_NAMES = 1024
_TOP_NAME_CHARS = 64
_TOP_KEYS: dict[str, tuple[str, str, str, str]] = {}


# Lengths in characters under which a text fits its byte bound whatever it holds (4 bytes a character at most).
_FIELD_CHARS = MAX_FIELD_BYTES // 4
_VALUE_CHARS = MAX_VALUE_BYTES // 4
_TRUE, _FALSE = SEP + BOOLEAN + "true", SEP + BOOLEAN + "false"
