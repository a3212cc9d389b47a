"""Backups and restores on real stores, without a server: types kept, damaged files refused with
nothing written, schema versions checked, migration progress logged.

Runs on the store under test (``KEYPLANE_TEST_STORE``); PostgreSQL databases are scratch ones
(``scratch_h4b_*``), dropped afterwards.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import hashlib
import io
import logging
import math
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import pytest
from sqlalchemy import Column, LargeBinary, func, select, text
from sqlalchemy.engine import Connection

from keyplane.backup import fileformat, tables
from keyplane.backup.dump import backup
from keyplane.backup.fileformat import BackupError, Header, Reader, TableInfo, Writer
from keyplane.backup.load import restore
from keyplane.backup.progress import Progress
from keyplane.store import migrations, schema
from keyplane.store.migrations import MIGRATIONS, upgrade
from tests import pg
from tests.conftest import STORE


def _admin(sql: str) -> None:
    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(pg.ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


def scratch_url(tmp_path: Path, kind: str = STORE) -> Iterator[str]:
    """An empty store of ``kind``: a fresh SQLite path, or a scratch PostgreSQL database dropped after."""
    if kind != "postgres":
        yield f"sqlite:///{tmp_path / secrets.token_hex(4) / 'keyplane.db'}"
        return
    reason = pg.available()
    if reason:
        pytest.skip(reason)
    name = "scratch_h4b_" + secrets.token_hex(6)
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(pg.ADMIN_URL)._replace(path="/" + name))
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def source(tmp_path: Path) -> Iterator[str]:
    yield from scratch_url(tmp_path)


@pytest.fixture
def target(tmp_path: Path) -> Iterator[str]:
    yield from scratch_url(tmp_path)


def _sqlite_dir(url: str) -> None:
    if not tables.is_postgres(url):
        tables.sqlite_path(url).parent.mkdir(mode=0o700, exist_ok=True)


def _fill(conn: Connection) -> None:
    upgrade(conn)
    conn.execute(
        schema.api_keys.insert(),
        [
            {
                "id": f"key{i}",
                "name": "n\x00ul" if i == 0 else f"k{i}",
                "type": "rest",
                "creation": 1_700_000_000_000 + i,
                "expiration": None if i % 2 else 1_800_000_000_000,
                "invalidated": i % 3 == 0,
                "username": "ann" if i % 2 else "bob",
                "realm": "native",
                "realm_type": "native",
                "hash": "{SSHA256}x",
                "metadata": {"deep": [1, 2.5, True, None, {"k\x00": "v\uffff"}]} if i < 5 else None,
                "doc": "{}",
            }
            for i in range(30)
        ],
    )
    conn.execute(schema.indices.insert().values(name="logs", uuid="u", creation=1, doc="{}", seq_no=2))
    conn.execute(
        schema.documents.insert(),
        [{"index_name": "logs", "id": str(i), "seq_no": i, "version": 1, "source": '{"a": 1}'} for i in range(3)],
    )
    row = {"index_name": "logs", "term": "a\x01n1", "seq_no": 0, "id": "0", "num": math.inf}  # document 0's
    conn.execute(schema.content_terms.insert(), [row])


def _store(url: str) -> str:
    _sqlite_dir(url)
    tables.run(url, _fill, write=True)
    return url


def _contents(url: str) -> dict[str, Any]:
    """Every backed-up table's rows (sorted), the count tables and the schema version."""

    def read(conn: Connection) -> dict[str, Any]:
        out: dict[str, Any] = {
            t.name: sorted(map(repr, conn.execute(select(*t.columns)).all())) for t in tables.backed_up()
        }
        counts = schema.api_key_counts.c
        out["counts"] = sorted(
            conn.execute(
                select(counts.username, counts.invalidated, func.sum(counts.n))
                .group_by(counts.username, counts.invalidated)
                .having(func.sum(counts.n) != 0)
            ).all()
        )
        out["version"] = tables.schema_version(conn)
        return out

    return tables.run(url, read, write=False)


def test_a_backup_restores_every_row_with_its_type(source: str, target: str, tmp_path: Path) -> None:
    _store(source)
    file = tmp_path / "b.ndjson.gz"
    header = backup(source, file, secrets_key="abc", progress=False)
    assert file.stat().st_mode & 0o777 == 0o600
    assert [t.rows for t in header.tables if t.name == "api_keys"] == [30]
    assert header.schema_version == len(MIGRATIONS) and header.secrets_key == "abc"
    _sqlite_dir(target)
    restore(target, file, force=False, progress=False)
    before, after = _contents(source), _contents(target)
    assert after == before
    # The count tables were refilled by the triggers: 30 keys, by owner and invalidation.
    assert sum(n for _, _, n in after["counts"]) == 30


def test_values_keep_their_types_through_the_file(tmp_path: Path) -> None:
    file = tmp_path / "t.gz"
    writer = Writer(file)
    columns = [("b", "bytes"), ("t", "datetime"), ("f", "float"), ("j", "json"), ("s", "text"), ("x", "boolean")]
    values = [
        [b"\x00\xffbin", dt.datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=dt.UTC), math.nan, {"a": [1]}, "n\x00", True],
        [None, None, -math.inf, "just text", "", False],
    ]
    writer.header(Header(1, "sqlite", "now", "v", [TableInfo("t", columns, 2)]))
    writer.table("t", 2)
    encode = fileformat.encoders([kind for _, kind in columns])
    for row in values:
        writer.row([v if e is None else e(v) for e, v in zip(encode, row, strict=True)])
    writer.finish()
    with Reader(file) as reader:
        [(info, rows)] = [(info, list(rows)) for info, rows in reader.sections()]
    assert info.name == "t"
    assert math.isnan(rows[0][2]) and rows[1][2] == -math.inf
    assert rows[0][:2] + rows[0][3:] == [values[0][0], values[0][1], *values[0][3:]]
    assert rows[1][:2] + rows[1][3:] == [None, None, "just text", "", False]
    assert fileformat.kind_of(Column("b", LargeBinary)) == "bytes"


def _rewrite(file: Path, change: Any) -> None:
    """Apply ``change`` to the file's lines (its trailer recomputed unless ``change`` returns it)."""
    lines = gzip.decompress(file.read_bytes()).split(b"\n")[:-1]
    body = change(lines[:-1])
    digest = hashlib.sha256(b"".join(line + b"\n" for line in body)).hexdigest()
    trailer = orjson.loads(lines[-1])
    trailer["end"]["sha256"] = digest
    file.write_bytes(gzip.compress(b"".join(line + b"\n" for line in [*body, orjson.dumps(trailer)])))


def test_a_damaged_or_foreign_file_is_refused_before_anything_is_written(
    source: str, target: str, tmp_path: Path
) -> None:
    _store(source)
    file = tmp_path / "b.gz"
    backup(source, file, secrets_key=None, progress=False)
    good = file.read_bytes()
    _sqlite_dir(target)
    restore(target, file, force=False, progress=False)
    before = _contents(target)

    raw = bytearray(gzip.decompress(good))
    at = raw.index(b'"k17"')
    raw[at + 2] = ord("8")  # one byte of one row: the checksum no longer matches
    damaged = tmp_path / "damaged.gz"
    damaged.write_bytes(gzip.compress(bytes(raw)))
    cut = tmp_path / "cut.gz"
    cut.write_bytes(good[: len(good) // 2])
    foreign = tmp_path / "foreign.gz"
    foreign.write_bytes(gzip.compress(b'{"hello": "world"}\n'))
    for bad, reason in ((damaged, "checksum"), (cut, "cut short"), (foreign, "not a Keyplane backup")):
        with pytest.raises(BackupError, match=reason):
            restore(target, bad, force=True, progress=False)
    assert _contents(target) == before


def test_a_store_with_rows_is_kept_unless_forced(source: str, target: str, tmp_path: Path) -> None:
    _store(source)
    file = tmp_path / "b.gz"
    backup(source, file, secrets_key=None, progress=False)
    _sqlite_dir(target)

    def other(conn: Connection) -> None:
        upgrade(conn)
        conn.execute(schema.roles.insert().values(name="only-here", doc="{}"))

    tables.run(target, other, write=True)
    with pytest.raises(BackupError, match="not empty"):
        restore(target, file, force=False, progress=False)
    assert _contents(target)["roles"] != []
    restore(target, file, force=True, progress=False)
    assert _contents(target) == _contents(source)


def test_schema_versions_newer_refused_older_restored_then_migrated(source: str, target: str, tmp_path: Path) -> None:
    _store(source)
    file = tmp_path / "b.gz"
    backup(source, file, secrets_key=None, progress=False)

    def version(lines: list[bytes], to: int) -> list[bytes]:
        header = orjson.loads(lines[0])
        header["schema_version"] = to
        return [orjson.dumps(header), *lines[1:]]

    _rewrite(file, lambda lines: version(lines, len(MIGRATIONS) + 1))
    _sqlite_dir(target)
    with pytest.raises(BackupError, match="newer than this Keyplane"):
        restore(target, file, force=False, progress=False)
    # Version 11's tables are today's (v12 added only the count tables, rebuilt here by its step).
    _rewrite(file, lambda lines: version(lines, 11))
    restore(target, file, force=False, progress=False)
    assert _contents(target) == _contents(source)


def test_long_migration_steps_say_how_far_they_are(
    source: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _sqlite_dir(source)
    docs = 4000

    def before_terms(conn: Connection) -> None:
        upgrade(conn, upto=10)
        conn.execute(schema.indices.insert().values(name="big", uuid="u", creation=1, doc="{}", seq_no=docs))
        conn.execute(
            schema.documents.insert(),
            [
                {"index_name": "big", "id": f"{i:05}", "seq_no": i, "version": 1, "source": f'{{"n": {i}}}'}
                for i in range(docs)
            ],
        )

    tables.run(source, before_terms, write=True)
    monkeypatch.setattr(migrations, "PROGRESS_SECONDS", 0.001)
    with caplog.at_level(logging.INFO, logger="keyplane.store"):
        tables.run(source, upgrade, write=True)
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith(f"migrating the schema from version 10 to {len(MIGRATIONS)}") for line in lines)
    progress = [line for line in lines if line.startswith(f"migration 11/{len(MIGRATIONS)}: building term rows")]
    assert progress, lines
    assert all(f"of {docs:,} rows" in line for line in progress if "about" in line)

    def terms(conn: Connection) -> int:
        return int(conn.execute(text("SELECT count(DISTINCT id) FROM content_terms")).scalar_one())

    assert tables.run(source, terms, write=False) == docs


def test_progress_lines_are_few_however_fast_rows_go() -> None:
    out = io.StringIO()
    shown = Progress("backup", 1_000_000, enabled=True, stream=out)
    started = time.monotonic()
    for done in range(1, 200_001):
        shown.advance("api_keys", done, 200_000, 1)
    shown.finish()
    lines = out.getvalue().splitlines()
    elapsed = time.monotonic() - started
    assert len(lines) <= 2 * elapsed / shown.interval + 2
    assert lines[-1].startswith("backup: done; 200,000 of 1,000,000 rows in all") and "rows/s" in lines[-1]
    quiet = io.StringIO()
    Progress("backup", 10, enabled=False, stream=quiet).finish()
    assert quiet.getvalue() == ""
