"""``INSERT ... ON CONFLICT DO UPDATE`` for both stores: one statement, so concurrent writers never collide."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

from keyplane.store.database import Database


def upsert(db: Database, table: Table, rows: list[dict[str, Any]], key: list[str]) -> Any:
    """Insert ``rows``; a row whose ``key`` columns exist already has its other columns replaced."""
    dialect = postgresql if db.is_postgres else sqlite
    stmt = dialect.insert(table).values(rows)
    columns = [name for name in rows[0] if name not in key]
    return stmt.on_conflict_do_update(index_elements=key, set_={name: stmt.excluded[name] for name in columns})
