"""Elasticsearch's ``filter_path`` response filtering.

Expressions are comma separated dotted paths. A segment may use ``*`` as a wildcard within a
field name, ``**`` matches any number of levels, and an expression starting with ``-`` excludes.
Arrays are transparent: a path applies to each element. When inclusions are given only matching
leaves are kept; exclusions are applied afterwards. Objects left empty by filtering disappear.
"""

from __future__ import annotations

import fnmatch
from typing import Any

_DROP = object()


def _split(expr: str) -> list[str]:
    # "\." escapes a dot inside a field name.
    parts, buf, i = [], "", 0
    while i < len(expr):
        if expr[i] == "\\" and i + 1 < len(expr) and expr[i + 1] == ".":
            buf += "."
            i += 2
            continue
        if expr[i] == ".":
            parts.append(buf)
            buf = ""
        else:
            buf += expr[i]
        i += 1
    parts.append(buf)
    return parts


def parse(value: str) -> tuple[list[list[str]], list[list[str]]]:
    includes, excludes = [], []
    for raw in value.split(","):
        raw = raw.strip()
        if not raw:
            continue
        if raw.startswith("-"):
            excludes.append(_split(raw[1:]))
        else:
            includes.append(_split(raw))
    return includes, excludes


def _step(paths: list[list[str]], key: str) -> tuple[list[list[str]], bool]:
    """Advance every path over ``key``; report whether one of them ends here."""
    nxt: list[list[str]] = []
    ended = False
    for path in paths:
        if not path:
            continue
        head = path[0]
        if head == "**":
            nxt.append(path)  # ** keeps matching deeper levels
            rest, end = _step([path[1:]], key) if len(path) > 1 else ([], True)
            nxt.extend(rest)
            ended = ended or end
            continue
        if head == key or ("*" in head and fnmatch.fnmatchcase(key, head)):
            if len(path) == 1:
                ended = True
            else:
                nxt.append(path[1:])
    return nxt, ended


def _include(node: Any, paths: list[list[str]]) -> Any:
    if isinstance(node, list):
        kept = [_include(item, paths) for item in node]
        kept = [k for k in kept if k is not _DROP]
        return kept if kept else _DROP
    if not isinstance(node, dict):
        return _DROP
    out = {}
    for key, value in node.items():
        nxt, ended = _step(paths, key)
        if ended:
            out[key] = value
        elif nxt:
            sub = _include(value, nxt)
            if sub is not _DROP:
                out[key] = sub
    return out if out else _DROP


def _exclude(node: Any, paths: list[list[str]]) -> Any:
    if isinstance(node, list):
        return [_exclude(item, paths) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        nxt, ended = _step(paths, key)
        if ended:
            continue
        out[key] = _exclude(value, nxt) if nxt else value
    return out


def apply(body: Any, value: str) -> Any:
    includes, excludes = parse(value)
    if includes:
        body = _include(body, includes)
        if body is _DROP:
            body = {}
    if excludes:
        body = _exclude(body, excludes)
    return body
