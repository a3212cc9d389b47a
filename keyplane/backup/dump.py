"""A backup taken while the server runs and writes: every table read in one snapshot of the store.

On SQLite the snapshot is a read transaction over the WAL on a connection of its own: the server's
writer goes on committing meanwhile (its checkpoints only wait for the snapshot to end before
starting the WAL over, see ``keyplane.store.checkpoint``), and nothing the server holds (its file
lock, its threads) is touched. On PostgreSQL it is a REPEATABLE READ READ ONLY transaction: one
snapshot over all tables, read through a server-side cursor in batches, so no table is ever held in
memory whole. Row counts are taken in the same snapshot, so the header matches the rows written.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Connection

from keyplane import __version__
from keyplane.backup import tables
from keyplane.backup.fileformat import BackupError, Header, TableInfo, Writer, encoders, kind_of
from keyplane.backup.progress import Progress
from keyplane.store.migrations import MIGRATIONS

BATCH = 2000


def backup(url: str, path: Path, *, secrets_key: str | None, progress: bool, included_key: str | None = None) -> Header:
    """Write a backup of the store at ``url`` to ``path`` (complete, or not there at all).

    ``secrets_key`` is the fingerprint of the connector secrets' key, ``included_key`` the key itself
    when the operator asked for it to travel with the backup.
    """
    if not tables.is_postgres(url) and not tables.sqlite_path(url).exists():
        raise BackupError(f"there is no Keyplane store at {tables.sqlite_path(url)}")
    writer = Writer(path)
    try:
        header = tables.run(url, lambda conn: _dump(conn, writer, progress, secrets_key, included_key), write=False)
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    return header


def _dump(
    conn: Connection, writer: Writer, progress: bool, secrets_key: str | None, included_key: str | None
) -> Header:
    created = dt.datetime.now(dt.UTC)
    version = tables.schema_version(conn)  # the first read: the snapshot starts here on SQLite
    latest = len(MIGRATIONS)
    if version == 0:
        raise BackupError("the store has no Keyplane schema yet (start the server on it once)")
    if version != latest:
        raise BackupError(
            f"the store is at schema version {version} and this Keyplane at {latest}: back it up with "
            "the Keyplane version that serves it"
        )
    present = set(inspect(conn).get_table_names())
    chosen = tables.backed_up()
    missing = [t.name for t in chosen if t.name not in present]
    if missing:
        raise BackupError(f"the store lacks tables of its schema version: {', '.join(missing)}")
    infos = [
        TableInfo(
            t.name,
            [(c.name, kind_of(c)) for c in t.columns],
            int(conn.execute(select(func.count()).select_from(t)).scalar_one()),
        )
        for t in chosen
    ]
    header = Header(
        schema_version=version,
        store="postgresql" if conn.dialect.name == "postgresql" else "sqlite",
        created=created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        keyplane_version=__version__,
        tables=infos,
        secrets_key=secrets_key,
        included_key=included_key,
    )
    writer.header(header)
    shown = Progress("backup", header.total_rows, enabled=progress)
    for table, info in zip(chosen, infos, strict=True):
        writer.table(info.name, info.rows)
        encode = encoders([kind for _, kind in info.columns])
        plain = all(e is None for e in encode)
        done = 0
        result = conn.execute(select(*table.columns), execution_options={"yield_per": BATCH})
        for batch in result.partitions():
            for row in batch:
                writer.row(list(row) if plain else [v if e is None else e(v) for e, v in zip(encode, row, strict=True)])
            done += len(batch)
            shown.advance(info.name, done, info.rows, len(batch))
        if done != info.rows:  # a snapshot cannot change under the reader: a bug if it does
            raise BackupError(f"table {info.name} gave {done} rows where its count said {info.rows}")
    shown.finish()
    return header
