"""The relational schema, one table per kind of record, shared by SQLite and PostgreSQL.

Documents keep their Elasticsearch JSON in a ``doc`` column; the columns beside it are the ones
queries filter or sort on. ``seq_no`` grows on every write and guards read-modify-write updates.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Integer, MetaData, String, Table, Text

metadata = MetaData()

schema_version = Table(
    "keyplane_schema",
    metadata,
    Column("version", Integer, primary_key=True),
)

users = Table(
    "users",
    metadata,
    Column("username", String(512), primary_key=True),
    Column("password_hash", Text, nullable=True),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("reserved", Boolean, nullable=False, default=False),
    Column("doc", Text, nullable=False),  # roles, full_name, email, metadata
    Column("seq_no", BigInteger, nullable=False, default=1),
)

roles = Table(
    "roles",
    metadata,
    Column("name", String(512), primary_key=True),
    Column("doc", Text, nullable=False),  # the role descriptor, as given
    Column("seq_no", BigInteger, nullable=False, default=1),
)

app_privileges = Table(
    "app_privileges",
    metadata,
    Column("application", String(512), primary_key=True),
    Column("name", String(512), primary_key=True),
    Column("doc", Text, nullable=False),
    Column("seq_no", BigInteger, nullable=False, default=1),
)

# Facts about the cluster itself, such as its uuid.
properties = Table(
    "properties",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("value", Text, nullable=False),
)
