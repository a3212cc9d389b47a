"""Schema migrations: an ordered list of steps; the database records the last one applied.

A step is a function over a SQLAlchemy connection, so it runs unchanged on SQLite and PostgreSQL.
Add new steps at the end; never edit a step that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection

from keyplane.indices.backends.terms.sql import backfill_content_terms
from keyplane.store import schema
from keyplane.store.database import Database


def _v1_security(conn: Connection) -> None:
    for table in (schema.properties, schema.users, schema.roles, schema.app_privileges):
        table.create(conn, checkfirst=True)


def _v2_api_keys_and_tokens(conn: Connection) -> None:
    for table in (schema.api_keys, schema.tokens):
        table.create(conn, checkfirst=True)


def _v3_live_keys_by_expiration(conn: Connection) -> None:
    index = next(i for i in schema.api_keys.indexes if i.name == "api_keys_live_by_expiration")
    index.create(conn, checkfirst=True)


def _v4_connectors(conn: Connection) -> None:
    for table in (schema.connectors, schema.sync_jobs, schema.connector_secrets):
        table.create(conn, checkfirst=True)


def _v5_role_mappings(conn: Connection) -> None:
    schema.role_mappings.create(conn, checkfirst=True)


def _v6_user_profiles(conn: Connection) -> None:
    schema.user_profiles.create(conn, checkfirst=True)


def _v7_service_tokens(conn: Connection) -> None:
    schema.service_tokens.create(conn, checkfirst=True)


def _v8_long_service_types(conn: Connection) -> None:
    """PostgreSQL enforced varchar(512) and btree row sizes on connectors' service type, SQLite neither."""
    if conn.dialect.name != "postgresql":
        return
    conn.execute(text("ALTER TABLE connectors ALTER COLUMN service_type TYPE TEXT"))
    conn.execute(text("DROP INDEX IF EXISTS connectors_service_type"))
    conn.execute(text("CREATE INDEX connectors_service_type ON connectors USING hash (service_type)"))


def _v9_indices(conn: Connection) -> None:
    for table in (schema.indices, schema.documents):
        table.create(conn, checkfirst=True)


def _v10_refresh(conn: Connection) -> None:
    # A database created at v9 by this code already has the column (v9 creates the current table).
    columns = {c["name"] for c in inspect(conn).get_columns("indices")}
    if "refreshed_seq_no" not in columns:
        conn.execute(text("ALTER TABLE indices ADD COLUMN refreshed_seq_no BIGINT NOT NULL DEFAULT -1"))
        conn.execute(text("UPDATE indices SET refreshed_seq_no = seq_no"))
    schema.document_snapshots.create(conn, checkfirst=True)


def _v11_content_terms(conn: Connection) -> None:
    """The term rows of pushed-down searches, built for the documents already stored."""
    schema.content_terms.create(conn, checkfirst=True)
    backfill_content_terms(conn)


MIGRATIONS: list[Callable[[Connection], None]] = [
    _v1_security,
    _v2_api_keys_and_tokens,
    _v3_live_keys_by_expiration,
    _v4_connectors,
    _v5_role_mappings,
    _v6_user_profiles,
    _v7_service_tokens,
    _v8_long_service_types,
    _v9_indices,
    _v10_refresh,
    _v11_content_terms,
]


def _apply(conn: Connection) -> int:
    schema.schema_version.create(conn, checkfirst=True)
    current = conn.execute(select(schema.schema_version.c.version)).scalar() or 0
    for version, step in enumerate(MIGRATIONS, 1):
        if version > current:
            step(conn)
    latest = len(MIGRATIONS)
    if current == 0:
        conn.execute(schema.schema_version.insert().values(version=latest))
    elif latest > current:
        conn.execute(schema.schema_version.update().values(version=latest))
    return latest


async def migrate(db: Database) -> int:
    """Bring the schema up to date; safe when several nodes start at once."""
    async with db.transaction() as conn:
        if db.is_postgres:
            await conn.execute(text("SELECT pg_advisory_xact_lock(7311975)"))
        return await conn.run_sync(_apply)
