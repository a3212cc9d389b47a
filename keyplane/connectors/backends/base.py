"""Storage interfaces of connectors, sync jobs and secrets. ``sql.py`` implements them for SQLite and PostgreSQL.

Documents are kept whole, with the version (``seq_no``) they were read at: a rewrite is a
compare-and-set on it, so concurrent writers never overwrite each other.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Protocol

from keyplane.connectors.model import ConnectorFilter, Doc


@dataclass
class Stored:
    """A document as read, with the version a compare-and-set rewrite must find."""

    id: str
    doc: Doc
    seq_no: int
    # The document's JSON text as stored (``jsontext.dumps``), when known: a writer copies the document
    # by parsing it and names the stored form by it, instead of writing the document out again.
    text: str | None = None


class ConnectorRepository(Protocol):
    async def get(self, connector_id: str) -> Stored | None: ...

    async def index_in_use(self, index_name: str, connector_id: str) -> bool:
        """Whether a live connector other than ``connector_id`` writes to ``index_name``."""
        ...

    async def put(self, connector_id: str, doc: Doc) -> bool:
        """Index the whole document; True when it was created. Refuses an index name in use (StatusError)."""
        ...

    async def replace(
        self, stored: Stored, previous: Doc | None = None, *, unchanged: bool = False, previous_text: str | None = None
    ) -> bool:
        """Write a changed document back if nobody changed it since it was read (as ``stored.text`` when
        given, which must be ``jsontext.dumps(stored.doc)``).

        ``previous``: the document as read at ``stored.seq_no``. When the change keeps its index name
        and deleted flag, the index-name check is left out: the compare-and-set finds the row as read,
        which held them, and the database's unique index lets no other live connector hold that name.
        ``unchanged``: the row must also still hold ``previous`` itself, not only its ``seq_no``: for a
        document not read but remembered from an earlier write, whose id may have been deleted and
        created again since, numbering its versions from 1 anew. ``previous_text``: ``previous`` as
        stored, when known.
        """
        ...

    async def insert(self, connector_id: str, doc: Doc) -> bool:
        """Create the document unless the id is taken; False when it was."""
        ...

    async def delete(self, connector_id: str, seq_no: int | None = None) -> bool:
        """Remove the document (only if still at ``seq_no`` when given); False when nothing was removed."""
        ...

    async def all(self) -> list[Stored]:
        """Every connector document, soft-deleted ones too, in id order (what a search reads)."""
        ...

    async def list(self, selector: ConnectorFilter, start: int, size: int) -> tuple[int, list[Stored]]:
        """The total of matching connectors and one page of them."""
        ...

    async def list_texts(
        self, selector: ConnectorFilter, start: int, size: int
    ) -> tuple[int, builtins.list[tuple[str, str]]]:
        """``list``, each connector as its id and its document's JSON text as stored (not parsed)."""
        ...

    async def delete_all(self) -> None: ...


class SyncJobRepository(Protocol):
    async def insert(self, job_id: str, connector_id: str, created_ns: int, doc: Doc) -> None: ...

    async def get(self, job_id: str) -> Stored | None: ...

    async def replace(self, stored: Stored) -> bool:
        """Write a changed job back if nobody changed it since it was read."""
        ...

    async def put(self, job_id: str, doc: Doc, *, create_only: bool = False) -> bool | None:
        """Index a whole job document as given: True when created, False when replaced, None when
        ``create_only`` found the id taken."""
        ...

    async def delete(self, job_id: str, seq_no: int | None = None) -> bool:
        """Remove the job (only if still at ``seq_no`` when given); False when nothing was removed."""
        ...

    async def all(self) -> list[Stored]:
        """Every job document, oldest first (what a search reads)."""
        ...

    async def delete_for_connector(self, connector_id: str) -> int: ...

    async def list(
        self, connector_id: str | None, status: str | None, job_types: list[str], start: int, size: int
    ) -> tuple[int, list[Stored]]:
        """The total of matching jobs and one page of them, newest first."""
        ...

    async def delete_all(self) -> None: ...


class SecretRepository(Protocol):
    async def put(self, secret_id: str, sealed: str) -> bool:
        """Store a sealed value; True when the id was new."""
        ...

    async def get(self, secret_id: str) -> str | None: ...

    async def delete(self, secret_id: str) -> bool: ...

    async def delete_all(self) -> None: ...
