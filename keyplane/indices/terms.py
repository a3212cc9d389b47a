"""The leaf values of a document as searches pushed down to the store read them: one row per
(field path, value) that ``keyplane.query.memory.values`` would find, so that a term, terms, exists or
range query over these rows matches exactly the documents the in-memory evaluator matches.

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

TermRow = tuple[str, str, str, float | None]  # field, value, kind, number (numbers and booleans)
IRREGULAR_ROW: TermRow = ("", "", IRREGULAR, None)

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


def _scalar(field: str, value: Any, out: set[TermRow]) -> None:
    if isinstance(value, str):
        if not _text_fits(value, MAX_VALUE_BYTES):
            raise _Irregular
        out.add((field, value, STRING, None))
    elif isinstance(value, bool):
        out.add((field, "true" if value else "false", BOOLEAN, 1.0 if value else 0.0))
    elif isinstance(value, int):
        if abs(value) > MAX_EXACT_INT:
            raise _Irregular
        out.add((field, str(value), NUMBER, float(value)))
    elif isinstance(value, float):
        out.add((field, str(value), NUMBER, value))
    else:  # None, an object or an array inside an array: only exists sees it
        out.add((field, "", OTHER, None))


def term_rows(source: dict[str, Any]) -> list[TermRow]:
    """The rows of a document's ``_source`` (``[IRREGULAR_ROW]`` for an irregular one)."""
    out: set[TermRow] = set()
    if "_id" in source:  # searches see the document's id there instead
        return [IRREGULAR_ROW]
    pending: list[tuple[str, dict[str, Any]]] = [("", source)]
    try:
        while pending:
            prefix, node = pending.pop()
            for key, value in node.items():
                if not key or "." in key:
                    raise _Irregular
                field = prefix + key
                if isinstance(value, dict):
                    if not _text_fits(field, MAX_FIELD_BYTES):
                        raise _Irregular
                    out.add((field, "", OTHER, None))
                    pending.append((field + ".", value))
                elif value is None or value == []:
                    continue
                else:
                    if not _text_fits(field, MAX_FIELD_BYTES):
                        raise _Irregular
                    if isinstance(value, list):
                        for item in value:
                            _scalar(field, item, out)
                    else:
                        _scalar(field, value, out)
    except _Irregular:
        return [IRREGULAR_ROW]
    return list(out)
