"""Shapes every connector module shares: the stored document and what a connector list asks for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# A connector or sync job is kept as the JSON document Elasticsearch stores (its ``_source``),
# so fields written by other consumers survive every update.
Doc = dict[str, Any]


@dataclass
class ConnectorFilter:
    """What a connector list asks for; empty lists select everything."""

    index_names: list[str]
    names: list[str]
    service_types: list[str]
    query: str | None
    include_deleted: bool
