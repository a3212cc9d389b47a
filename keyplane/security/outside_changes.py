"""Changes an admin command made to a SQLite store while a server runs on it.

PostgreSQL tells every node of a change (LISTEN/NOTIFY, also from a command's own connection);
SQLite has no such channel between processes. So a command that changes users there writes the
kinds of change to a file beside the database (``keyplane.db.changes``, replaced atomically), and the
server polls that file and empties the caches concerned, as a notice would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

from keyplane.security import realm_files

SUFFIX = ".changes"
_KINDS = frozenset({"users", "roles", "service_tokens", "*"})


def notice_path(database_url: str) -> Path | None:
    """The notice file of a SQLite store's URL; None for PostgreSQL, whose nodes hear notices."""
    if not database_url.startswith("sqlite:///"):
        return None
    path = database_url.removeprefix("sqlite:///")
    return None if not path or path == ":memory:" else Path(path + SUFFIX)


def announce(path: Path, kinds: Iterable[str]) -> None:
    """Tell a server on the same SQLite file what changed (blocks; a command calls it after committing)."""
    realm_files.write_atomically(path, "".join(f"{kind}\n" for kind in kinds))


class OutsideChanges:
    """The server's side: what commands announced since the last poll."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen = realm_files.signature(path)  # notices older than the server concern no cache of it

    def poll(self) -> list[str]:
        """The kinds announced since the last poll (none when the file did not change). Blocks."""
        seen = realm_files.signature(self.path)
        if seen == self._seen:
            return []
        self._seen = seen
        lines, _ = realm_files.read_lines_leniently(self.path, "change notice")
        kinds = [line.strip() for line in lines]
        return [kind for kind in kinds if kind in _KINDS]

    async def changes(self) -> list[str]:
        return await asyncio.to_thread(self.poll)
