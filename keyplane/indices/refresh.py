"""When writes become visible to searches: Elasticsearch's refresh model, as a user can observe it.

A search (and ``_count``, and a get with ``realtime=false``) reads an index as of its last refresh; a
realtime get reads the latest write. Elasticsearch refreshes every ``index.refresh_interval``
(1s by default); Keyplane refreshes such an index on every write, so its writes are visible at once.
An index whose interval is ``-1`` is refreshed only when asked: by ``_refresh``, by a get or multi-get
with ``refresh=true``, or by a write with ``refresh=true``, ``""`` or ``wait_for``.
"""

from __future__ import annotations

from enum import Enum

from keyplane.errors import InvalidArgument
from keyplane.indices.core import IndexMeta

REFRESH_INTERVAL = "index.refresh_interval"


class Refresh(Enum):
    """A write's ``refresh`` parameter: leave visibility to the index, refresh now, or wait for a refresh."""

    NONE = "false"
    IMMEDIATE = "true"
    WAIT_FOR = "wait_for"


def parse_refresh(value: str | None) -> Refresh:
    """``refresh`` as a write request gives it; an empty value means ``true``, as in Elasticsearch."""
    if value is None or value == "false":
        return Refresh.NONE
    if value in ("", "true"):
        return Refresh.IMMEDIATE
    if value == "wait_for":
        return Refresh.WAIT_FOR
    raise InvalidArgument(f"Unknown value for refresh: [{value}].")


def refreshes_on_write(meta: IndexMeta) -> bool:
    """Whether the index's writes are visible at once: every interval but ``-1`` (refresh disabled)."""
    return str(meta.settings.get(REFRESH_INTERVAL, "1s")).strip() != "-1"


def visible_at_once(meta: IndexMeta, refresh: Refresh) -> bool:
    """Whether a write leaves the index refreshed. ``wait_for`` has no timer to wait for on an index
    that never refreshes itself, so it refreshes (Elasticsearch would block until someone does)."""
    return refresh is not Refresh.NONE or refreshes_on_write(meta)
