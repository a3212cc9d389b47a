"""Index statistics and the ``_cat/indices`` table, as Elasticsearch reports them on a single node.

One node holds every primary and no replica: an index with replicas is yellow, one without green, and
a shard count's total is primaries times (1 + replicas) of which the primaries succeed. Sizes are the
bytes of the documents' stored JSON (an estimate of what Elasticsearch's store would take; there is no
Lucene segment to measure). Deleted documents are removed at once, so ``docs.deleted`` is 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from keyplane.errors import InvalidArgument
from keyplane.indices.core import IndexMeta

# Metrics Elasticsearch's _stats accepts; only docs and store are measured here (the others are not
# tracked, so they are left out of the answer rather than reported as zeros).
KNOWN_METRICS = frozenset(
    "_all bulk completion dense_vector docs fielddata flush get indexing mappings merge query_cache recovery "
    "refresh request_cache search segments shard_stats sparse_vector store translog warmer".split()
)
MEASURED = ("docs", "store")


@dataclass(frozen=True)
class IndexStats:
    meta: IndexMeta
    docs: int
    size_bytes: int

    @property
    def health(self) -> str:
        return "yellow" if self.meta.replicas > 0 else "green"

    @property
    def shards_total(self) -> int:
        return self.meta.shards * (1 + self.meta.replicas)


def metrics(requested: list[str], path: str) -> tuple[str, ...]:
    """The measured sections a ``_stats/{metric}`` request asks for."""
    if not requested or "_all" in requested:
        return MEASURED
    unknown = [m for m in requested if m not in KNOWN_METRICS]
    if unknown:
        listed = ", ".join(unknown)
        raise InvalidArgument(
            f"request [{path}] contains unrecognized metric{'s' if len(unknown) > 1 else ''}: [{listed}]"
        )
    return tuple(m for m in MEASURED if m in requested)


# -- _cat/indices ------------------------------------------------------------------------------------

HEALTHS = ("green", "yellow", "red")
# Column name, its aliases, whether it shows by default, whether it is right-aligned.
COLUMNS: tuple[tuple[str, tuple[str, ...], bool, bool], ...] = (
    ("health", ("h",), True, False),
    ("status", ("s",), True, False),
    ("index", ("i", "idx"), True, False),
    ("uuid", ("id", "uuid"), True, False),
    ("pri", ("p", "shards.primary", "shardsPrimary"), True, True),
    ("rep", ("r", "shards.replica", "shardsReplica"), True, True),
    ("docs.count", ("dc", "docsCount"), True, True),
    ("docs.deleted", ("dd", "docsDeleted"), True, True),
    ("creation.date", ("cd",), False, False),
    ("creation.date.string", ("cds",), False, False),
    ("store.size", ("ss", "storeSize"), True, True),
    ("pri.store.size", (), True, True),
    ("dataset.size", (), True, True),
)
_BY_NAME = {alias: col[0] for col in COLUMNS for alias in (col[0], *col[1])}
_RIGHT = {col[0] for col in COLUMNS if col[3]}
_SIZES = {"store.size", "pri.store.size", "dataset.size"}
_BYTE_UNITS = {"b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40, "pb": 1 << 50}


def columns(requested: list[str]) -> list[str]:
    if not requested:
        return [c[0] for c in COLUMNS if c[2]]
    out = []
    for name in requested:
        if name not in _BY_NAME:
            raise InvalidArgument(f"Unable to find column [{name}]")
        out.append(_BY_NAME[name])
    return out


def check_health(health: str | None) -> None:
    if health is not None and health.lower() not in HEALTHS:
        raise InvalidArgument(f"unknown cluster health status [{health}]")


def byte_size(size: int, unit: str | None) -> str:
    """A size as Elasticsearch's cat prints it: ``bytes=kb`` etc. as a whole number, else the largest unit
    it reaches with one decimal at most (``225b``, ``1.2kb``)."""
    if unit is not None:
        if unit not in _BYTE_UNITS:
            raise InvalidArgument(f"failed to parse setting [bytes] with value [{unit}]")
        return str(size // _BYTE_UNITS[unit])
    chosen = "b"
    for name, factor in _BYTE_UNITS.items():
        if size >= factor:
            chosen = name
    value = size / _BYTE_UNITS[chosen]
    text = f"{value:.1f}".removesuffix(".0")
    return f"{text}{chosen}"


def row(stats: IndexStats, bytes_unit: str | None) -> dict[str, str]:
    meta = stats.meta
    created = datetime.fromtimestamp(meta.created_ms / 1000, UTC)
    size = byte_size(stats.size_bytes, bytes_unit)
    return {
        "health": stats.health,
        "status": "open",
        "index": meta.name,
        "uuid": meta.uuid,
        "pri": str(meta.shards),
        "rep": str(meta.replicas),
        "docs.count": str(stats.docs),
        "docs.deleted": "0",
        "creation.date": str(meta.created_ms),
        "creation.date.string": created.strftime("%Y-%m-%dT%H:%M:%S.") + f"{meta.created_ms % 1000:03d}Z",
        "store.size": size,
        "pri.store.size": size,
        "dataset.size": size,
    }


def sort_rows(rows: list[dict[str, str]], keys: list[str]) -> list[dict[str, str]]:
    """Rows ordered by ``s`` keys (``column[:asc|:desc]``), numbers and sizes compared as numbers."""
    for key in reversed(keys):
        name, _, order = key.partition(":")
        if name not in _BY_NAME:
            raise InvalidArgument(f"Unable to sort by unknown sort key `{name}`")
        column = _BY_NAME[name]
        rows = sorted(rows, key=lambda r: _sort_value(r, column), reverse=order.lower() == "desc")
    return rows


def _sort_value(row: Mapping[str, str], column: str) -> tuple[float, str]:
    value = row[column]
    if column in _SIZES:
        digits = value.rstrip("bkmgtp")
        unit = value[len(digits) :] or "b"
        try:
            return float(digits) * _BYTE_UNITS.get(unit, 1), value
        except ValueError:
            return 0.0, value
    if column in _RIGHT or column == "creation.date":
        try:
            return float(value), value
        except ValueError:
            return 0.0, value
    return 0.0, value


def table(rows: list[dict[str, str]], cols: list[str], header: bool) -> str:
    """The text table: columns padded to their widest cell, numbers right-aligned, one row a line."""
    lines = ([dict(zip(cols, cols, strict=True))] if header else []) + rows
    widths = {c: max(len(line[c]) for line in lines) for c in cols}
    out = []
    for number, line in enumerate(lines):
        data = number > 0 or not header
        cells = [line[c].rjust(widths[c]) if data and c in _RIGHT else line[c].ljust(widths[c]) for c in cols]
        out.append(" ".join(cells).rstrip() + "\n")
    return "".join(out)
