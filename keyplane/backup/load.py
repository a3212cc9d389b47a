"""A restore: the file checked whole first, then written in one transaction, or nothing at all.

1. The file is read once to the end: header, every row's shape and type, the counts and the
   checksum. Nothing is written if any of it is wrong.
2. The store must have no server running on it (SQLite: the server's file lock; PostgreSQL: no
   other session listening for Keyplane's change notices). Their caches would go stale.
3. In one transaction: a store that holds rows is refused unless ``force``, which drops its tables
   first; the schema of the backup's version is built, the rows inserted (the triggers on
   ``api_keys`` fill the count tables as they go; a big table's secondary indexes are built once
   after its rows), PostgreSQL's sequences set past the restored
   values, and the steps of a newer schema applied. The file is read again as the rows go in, and a
   checksum that no longer matches rolls everything back.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import func, inspect, literal, select, text
from sqlalchemy.engine import Connection

from keyplane.backup import tables
from keyplane.backup.fileformat import BackupError, Header, Reader, TableInfo
from keyplane.backup.progress import Progress
from keyplane.store import schema
from keyplane.store.database import prepare_data_dir
from keyplane.store.migrations import MIGRATIONS, upgrade

BATCH = 1000
_MIGRATE_LOCK = 7311975  # the advisory lock migrate() holds: nodes starting meanwhile wait for the restore


def restore(url: str, path: Path, *, force: bool, progress: bool) -> Header:
    """Restore the backup at ``path`` into the store at ``url``; its header."""
    header = check(path, progress=progress)
    _check_schema(header)
    if tables.is_postgres(url):
        tables.run(url, lambda conn: _load(conn, path, header, force, progress), write=True)
        return header
    db_path = tables.sqlite_path(url)
    prepare_data_dir(db_path.parent)
    with tables.sqlite_server_stopped(db_path):
        tables.run(url, lambda conn: _load(conn, path, header, force, progress), write=True)
    return header


def check(path: Path, *, progress: bool) -> Header:
    """Read the whole backup and check it (counts, types, checksum); its header."""
    with Reader(path) as reader:
        shown = Progress("restore: checking the backup", reader.header.total_rows, enabled=progress)
        for info, rows in reader.sections():
            done = 0
            while batch := list(islice(rows, BATCH)):
                done += len(batch)
                shown.advance(info.name, done, info.rows, len(batch))
        shown.finish()
        return reader.header


def _check_schema(header: Header) -> None:
    latest = len(MIGRATIONS)
    if header.schema_version > latest:
        raise BackupError(
            f"the backup is of schema version {header.schema_version}, newer than this Keyplane's "
            f"({latest}): restore it with a Keyplane at least as new as the one that took it"
        )
    if header.schema_version < 1:
        raise BackupError("the backup has no schema version")
    for info in header.tables:
        table = tables.table_named(info.name)
        if table is None:
            raise BackupError(f"the backup holds table {info.name}, which this Keyplane does not know")
        unknown = [name for name, _ in info.columns if name not in table.c]
        if unknown:
            raise BackupError(f"the backup's table {info.name} has columns this Keyplane does not know: {unknown}")


def _load(conn: Connection, path: Path, header: Header, force: bool, progress: bool) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATE_LOCK})"))
        _refuse_running_nodes(conn)
    _empty(conn, force)
    upgrade(conn, upto=header.schema_version)
    shown = Progress("restore", header.total_rows, enabled=progress)
    with Reader(path) as reader:
        if reader.header.to_json() != header.to_json():
            raise BackupError("the backup changed while it was being restored")
        for info, rows in reader.sections():
            _insert(conn, info, rows, shown)
    shown.finish()
    for info in header.tables:
        table = schema.metadata.tables[info.name]
        found = conn.execute(select(func.count()).select_from(table)).scalar_one()
        if found != info.rows:
            raise BackupError(f"table {info.name} holds {found} rows after the restore, the backup {info.rows}")
    if conn.dialect.name == "postgresql":
        _reset_sequences(conn)
    upgrade(conn)


def _refuse_running_nodes(conn: Connection) -> None:
    """Nodes hold a connection listening for change notices (``keyplane.store.database.CHANNEL``)."""
    listening = conn.execute(
        text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND query LIKE 'LISTEN %keyplane_changes%'"
        )
    ).scalar_one()
    if listening:
        raise BackupError(
            f"{listening} Keyplane node(s) are connected to this database: stop every node before restoring "
            "(their caches would be stale)"
        )


def _empty(conn: Connection, force: bool) -> None:
    """Refuse a store holding rows (unless ``force``); drop whatever schema it has."""
    present = set(inspect(conn).get_table_names())
    known = [t for t in schema.metadata.sorted_tables if t.name in present]
    if not known:
        return
    stored = tables.schema_version(conn)
    if stored > len(MIGRATIONS):
        raise BackupError(f"the store is at schema version {stored}, newer than this Keyplane's ({len(MIGRATIONS)})")
    holding = [
        t.name
        for t in known
        if t.name not in tables.DERIVED and conn.execute(select(literal(1)).select_from(t).limit(1)).first()
    ]
    if holding and not force:
        raise BackupError(
            f"the store is not empty (it holds {', '.join(holding)}): restore into an empty store, or give "
            "--force to replace everything in it"
        )
    # Dropped rather than emptied: the backup's schema version may be older than the store's.
    schema.metadata.drop_all(conn, tables=known)


def _insert(conn: Connection, info: TableInfo, rows: Iterator[list[Any]], shown: Progress) -> None:
    table = schema.metadata.tables[info.name]
    names = [name for name, _ in info.columns]
    # Secondary indexes are built once after the rows go in, not row by row (several times faster
    # for api_keys and its eight indexes); the primary key and its uniqueness are checked as rows go in.
    existing = {i["name"] for i in inspect(conn).get_indexes(table.name)}
    deferred = [i for i in table.indexes if i.name in existing] if info.rows >= BATCH else []
    for index in deferred:
        index.drop(conn)
    done = 0
    while batch := list(islice(rows, BATCH)):
        conn.execute(table.insert(), [dict(zip(names, row, strict=True)) for row in batch])
        done += len(batch)
        shown.advance(info.name, done, info.rows, len(batch))
    if done != info.rows:
        raise BackupError(f"table {info.name}: {done} rows read where the header says {info.rows}")
    for index in deferred:
        index.create(conn)


def _reset_sequences(conn: Connection) -> None:
    """Set each serial column's sequence past the largest restored value (the rows carry their own)."""
    quote = conn.dialect.identifier_preparer.quote
    names = [t.name for t in schema.metadata.sorted_tables]
    found = conn.execute(
        text(
            "SELECT table_name, column_name, pg_get_serial_sequence(quote_ident(table_name), column_name) AS seq "
            "FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND pg_get_serial_sequence(quote_ident(table_name), column_name) IS NOT NULL"
        )
    ).all()
    for table_name, column, sequence in found:
        if table_name not in names:
            continue
        conn.execute(
            text(
                f"SELECT setval(CAST(:seq AS regclass), COALESCE(max({quote(column)}), 0) + 1, false) "
                f"FROM {quote(table_name)}"
            ),
            {"seq": sequence},
        )
