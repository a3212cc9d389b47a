"""``_source`` filtering as Elasticsearch applies it to get, search and update answers: whether the
source is shown, and which dotted paths (``*`` wildcards) are included or excluded.

Shared by the content indices and the connector system indices, so both filter alike.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Doc = dict[str, Any]


@dataclass(frozen=True)
class SourceFilter:
    """What of ``_source`` an answer shows: nothing, or the paths matching ``includes`` minus ``excludes``."""

    fetch: bool = True
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()

    def apply(self, source: Doc) -> Doc | None:
        if not self.fetch:
            return None
        return filter_source(source, self.includes, self.excludes)


def _path_matches(path: str, patterns: Sequence[str], *, prefix: bool) -> bool:
    """Whether ``path`` is named by a pattern; with ``prefix``, also when it is above one (an object on the
    way to an included field)."""
    for pattern in patterns:
        if fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern + ".*"):
            return True
        if prefix and pattern.startswith(path + "."):
            return True
        if prefix and "*" in pattern and fnmatch.fnmatchcase(path + ".", pattern.split("*")[0] + "*"):
            return True
    return False


def _filtered(source: Doc, base: str, includes: Sequence[str], excludes: Sequence[str]) -> Doc:
    out: Doc = {}
    for key, value in source.items():
        path = f"{base}{key}"
        if excludes and _path_matches(path, excludes, prefix=False):
            continue
        whole = not includes or _path_matches(path, includes, prefix=False)
        if isinstance(value, dict) and (whole or _path_matches(path, includes, prefix=True)):
            inner = _filtered(value, path + ".", () if whole else includes, excludes)
            if inner or whole:
                out[key] = inner
        elif whole:
            out[key] = value
    return out


def filter_source(source: Doc, includes: Sequence[str], excludes: Sequence[str]) -> Doc:
    """The source with only the included paths, less the excluded ones (unchanged when there are none)."""
    if not includes and not excludes:
        return source
    return _filtered(source, "", includes, excludes)


def _patterns(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(p) for p in value]
    return []


def source_filter(value: Any, includes: Sequence[str] = (), excludes: Sequence[str] = ()) -> SourceFilter:
    """``_source`` as a body or parameter gives it: a boolean, a path or paths, or ``{includes, excludes}``;
    ``includes`` and ``excludes`` are the ``_source_includes``/``_source_excludes`` parameters."""
    if isinstance(value, bool):
        return SourceFilter(value, tuple(includes), tuple(excludes))
    if isinstance(value, str):
        if value.lower() in ("true", "false"):
            return SourceFilter(value.lower() == "true", tuple(includes), tuple(excludes))
        return SourceFilter(True, tuple(p for p in value.split(",") if p), tuple(excludes))
    if isinstance(value, list):
        return SourceFilter(True, tuple(str(p) for p in value), tuple(excludes))
    if isinstance(value, dict):
        inc = _patterns(value.get("includes", value.get("include")))
        exc = _patterns(value.get("excludes", value.get("exclude")))
        return SourceFilter(True, tuple(inc), tuple(exc))
    return SourceFilter(True, tuple(includes), tuple(excludes))
