"""JSON text at any depth Elasticsearch accepts.

Elasticsearch's JSON parser (Jackson) refuses documents nested deeper than 1000 levels; whatever it
accepts it can store and render again. orjson writes at most ~254 levels and reads at most 1024, and
Python's ``json`` stops at the recursion limit, so Keyplane checks the depth itself when reading and
falls back to an iterative writer for the rare value orjson cannot write.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

MAX_NESTING_DEPTH = 1000  # Jackson's StreamReadConstraints default, which Elasticsearch keeps

# A JSON string (skipped whole) or a bracket: enough to follow nesting through the raw text.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class TooDeep(ValueError):
    """A document nested deeper than ``MAX_NESTING_DEPTH``; ``line``/``column`` locate the opening bracket."""

    def __init__(self, depth: int, line: int, column: int) -> None:
        super().__init__(
            f"Document nesting depth ({depth}) exceeds the maximum allowed ({MAX_NESTING_DEPTH}, "
            "from `StreamReadConstraints.getMaxNestingDepth()`)"
        )
        self.depth = depth
        self.line = line
        self.column = column


def check_depth(raw: bytes, parsed: Any, limit: int = MAX_NESTING_DEPTH) -> None:
    """Raise ``TooDeep`` when ``raw`` (already parsed as ``parsed``) nests deeper than ``limit``.

    Costs two byte counts for ordinary bodies; a body with many brackets is re-written by orjson
    (C speed), which succeeds for anything under ~254 levels; only deeper ones are scanned here.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return
    try:
        orjson.dumps(parsed)
        return
    except orjson.JSONEncodeError:
        pass
    scan_depth(raw, limit)


def scan_depth(raw: bytes, limit: int = MAX_NESTING_DEPTH) -> None:
    """Follow the brackets of ``raw`` (valid JSON or not) and raise ``TooDeep`` where it passes ``limit``."""
    depth = 0
    for match in _TOKENS.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                pos = match.start()
                line = raw.count(b"\n", 0, pos) + 1
                column = pos - (raw.rfind(b"\n", 0, pos) + 1) + 1
                raise TooDeep(depth, line, column)
        elif token in (b"]", b"}"):
            depth -= 1


def depth(value: Any) -> int:
    """How many arrays/objects deep ``value`` is (0 for a scalar); iterative, so any depth is fine."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        stack.extend((child, level) for child in children)
    return deepest


def dumps(value: Any, *, pretty: bool = False) -> bytes:
    """orjson's output (``pretty``: two-space indent), for values of any depth."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2) if pretty else orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        if "recursion" not in str(exc).lower():
            raise
    return _dumps_deep(value, pretty)


def _dumps_deep(value: Any, pretty: bool) -> bytes:
    """An explicit-stack writer with orjson's layout: a list of pending pieces is consumed in order."""
    out: list[bytes] = []
    # Work items: ("v", value, level) writes a value; ("b", bytes) writes bytes as they are.
    work: list[tuple[Any, ...]] = [("v", value, 0)]
    while work:
        item = work.pop()
        if item[0] == "b":
            out.append(item[1])
            continue
        node, level = item[1], item[2]
        if isinstance(node, dict) and node:
            entries = [(orjson.dumps(str(k)) + (b": " if pretty else b":"), v) for k, v in node.items()]
            _open(work, out, b"{", b"}", entries, level, pretty)
        elif isinstance(node, list) and node:
            _open(work, out, b"[", b"]", [(b"", v) for v in node], level, pretty)
        else:
            out.append(orjson.dumps(node))  # a scalar, {} or []
    return b"".join(out)


def _open(
    work: list[tuple[Any, ...]],
    out: list[bytes],
    start: bytes,
    end: bytes,
    entries: list[tuple[bytes, Any]],
    level: int,
    pretty: bool,
) -> None:
    out.append(start)
    inner = b"\n" + b"  " * (level + 1) if pretty else b""
    pending: list[tuple[Any, ...]] = []
    for i, (prefix, child) in enumerate(entries):
        pending.append(("b", (b"," if i else b"") + inner + prefix))
        pending.append(("v", child, level + 1))
    pending.append(("b", (b"\n" + b"  " * level if pretty else b"") + end))
    work.extend(reversed(pending))
