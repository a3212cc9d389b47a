"""Storage interface of indices and their documents; ``sql.py`` implements it for SQLite and PostgreSQL.

Every document write takes the next sequence number of its index in the same transaction, and a
rewrite is a compare-and-set on the sequence number it was read at: concurrent writers never
overwrite each other, and a lost race is seen by the caller, who reads again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from keyplane.indices.core import IndexMeta, Source, StoredDoc
from keyplane.indices.pushdown import Plan


@dataclass(frozen=True)
class DocStats:
    count: int
    source_bytes: int


# Slots, and not frozen: a bulk request builds one per document, and a frozen dataclass costs several
# times as much to build (each field set through ``object.__setattr__``); nothing changes one once built.
@dataclass(slots=True)
class DocWrite:
    """One write of a batch (``DocumentRepository.write_many``): the document's new source and version,
    or ``source=None`` to delete it."""

    id: str
    source: Source | None
    version: int


@dataclass(frozen=True, slots=True)
class ReadMark:
    """Where an index stood when its documents were read: its uuid and the last sequence number it
    gave out. Every write of a document takes a sequence number, so an index still at its mark holds
    the documents that read found (the uuid tells a deleted and recreated index apart)."""

    uuid: str
    seq_no: int


@dataclass(frozen=True)
class Matches:
    """What a pushed-down search found: with ``total``, the exact count of matches and the page asked
    for; without, every document that may match (a superset), for the in-memory evaluator."""

    docs: list[StoredDoc]
    total: int | None


class IndexRepository(Protocol):
    async def create(self, meta: IndexMeta) -> IndexMeta | None:
        """Create the index; None when it exists already."""
        ...

    async def get(self, name: str) -> IndexMeta | None: ...

    async def list(self) -> list[IndexMeta]:
        """Every index, by name."""
        ...

    async def delete(self, name: str) -> bool:
        """Remove the index and its documents."""
        ...

    async def delete_all(self) -> None: ...

    async def set_mappings(self, expected: IndexMeta, mappings: dict[str, Any]) -> bool:
        """Replace the index's mappings if its metadata is still ``expected``; False when it changed
        meanwhile (or the index is gone)."""
        ...

    async def doc_stats(self) -> dict[str, DocStats]:
        """Per index name, how many documents it holds and the bytes of their stored JSON."""
        ...


class DocumentRepository(Protocol):
    """Documents as the latest write left them (a realtime get), and as searches see them: as of the
    index's last refresh, a rewritten or deleted document's earlier version kept until the next one.
    A write with ``refresh`` (the default) refreshes the index in its own transaction."""

    async def get(self, index: str, doc_id: str, *, realtime: bool = True) -> StoredDoc | None:
        """The latest version, or with ``realtime=False`` the one searches see."""
        ...

    async def write(
        self, index: str, doc_id: str, source: Source, version: int, expected: StoredDoc | None, *, refresh: bool = True
    ) -> StoredDoc | None:
        """Write the document if it is still as ``expected`` (None: still missing), with the index's next
        sequence number; None when another writer came first. Raises IndexMissing when the index is gone."""
        ...

    async def delete(self, index: str, doc_id: str, expected: StoredDoc | None, *, refresh: bool = True) -> int | None:
        """Delete the document if it is still as ``expected``; the sequence number the delete took, or
        None when another writer came first. A missing document's delete takes one too, as in Elasticsearch."""
        ...

    async def get_many(self, index: str, ids: Sequence[str]) -> dict[str, StoredDoc]:
        """The latest version of each of the documents that exist (a realtime get of many)."""
        ...

    async def read_many(self, index: str, ids: Sequence[str]) -> tuple[dict[str, StoredDoc], ReadMark | None]:
        """``get_many``, and the index's mark as of that same read (None when the index is missing,
        or the read took several statements that saw it at different marks)."""
        ...

    async def write_many(
        self,
        index: str,
        writes: Sequence[DocWrite],
        expected: Mapping[str, StoredDoc | None],
        *,
        refresh: bool = True,
        read_at: ReadMark | None = None,
    ) -> list[int] | None:
        """Apply the writes in order, in one transaction, if every document they touch is still as
        ``expected`` (by id: the version read, None when missing); a later write on an id replaces the
        earlier one's result. Each write, a delete of a missing document too, takes the index's next
        sequence number: they are returned in order. None when another writer came first (nothing
        is written). Raises IndexMissing when the index is gone.

        ``read_at``: the mark of the read every ``expected`` document came from. When the index is
        still at it, nothing was written since, and the documents are not read again to compare."""
        ...

    async def refresh(self, index: str) -> None:
        """Make every write so far visible to searches."""
        ...

    async def count(self, index: str) -> int:
        """How many documents searches see."""
        ...

    def scan(self, index: str, batch: int = 1000) -> AsyncIterator[StoredDoc]:
        """Every document searches see, in sequence-number order, read a batch at a time."""
        ...

    def scan_batches(self, index: str, batch: int = 1000) -> AsyncIterator[list[StoredDoc]]:
        """``scan`` a batch at a time (a search loads a whole index: one await per batch, not per document)."""
        ...

    async def matches(self, index: str, plan: Plan, exact: bool, window: tuple[int, int] | None) -> Matches | None:
        """The documents searches see that ``plan`` matches (``pushdown.py``), in sequence-number order:
        with a ``window`` (from, size) and an ``exact`` plan, the exact total and that page when the
        store can count exactly, else every candidate. None when the store cannot run plans on the
        index now (versions kept for searches): the caller scans."""
        ...
