"""The backup file: gzip'd JSON lines, the same for SQLite and PostgreSQL.

    {"format": "keyplane-backup", "format_version": 1, "schema_version": 12, "store": "sqlite",
     "created": "...", "keyplane_version": "...", "secrets_key": "<fingerprint>" | null,
     "included_key": "<base64 of the key>" | null,
     "tables": [{"name": "users", "columns": [["username", "text"], ...], "rows": 3}, ...]}
    {"table": "users", "rows": 3}
    ["elastic", "$2a$...", true, true, "{...}", 1]
    ...
    {"end": {"rows": 1234, "sha256": "<hex of every byte before this line>"}}

A row is a JSON array in the order of its table's columns. Each column is written as its kind says
(``KINDS``), so values keep their type across stores: integers and booleans as JSON's, JSON columns
as the JSON value itself, bytes as base64, times as ISO 8601 text, floats that JSON cannot hold
(NaN, infinities) as text. The row counts of the header and the checksum of the trailer let a
restore refuse a file that was cut short or changed before it writes anything.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import gzip
import hashlib
import math
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, Column, Date, DateTime, Float, Integer, LargeBinary, String
from sqlalchemy.types import TypeDecorator, TypeEngine

from keyplane import jsontext

FORMAT = "keyplane-backup"
FORMAT_VERSION = 1
FILE_MODE = 0o600
_CHUNK = 1 << 18  # bytes of lines written to gzip at once
KINDS = ("text", "integer", "float", "boolean", "json", "bytes", "datetime", "date")


class BackupError(Exception):
    """A backup or restore that cannot go on, with the reason for the operator."""


@dataclass
class TableInfo:
    name: str
    columns: list[tuple[str, str]]  # (name, kind)
    rows: int


@dataclass
class Header:
    schema_version: int
    store: str  # "sqlite" or "postgresql"
    created: str
    keyplane_version: str
    tables: list[TableInfo] = field(default_factory=list)
    secrets_key: str | None = None  # fingerprint of the key that seals connector secrets, when known
    included_key: str | None = None  # the key itself (base64), only with backup --include-key-file
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": self.format_version,
            "schema_version": self.schema_version,
            "store": self.store,
            "created": self.created,
            "keyplane_version": self.keyplane_version,
            "secrets_key": self.secrets_key,
            "included_key": self.included_key,
            "tables": [{"name": t.name, "columns": [list(c) for c in t.columns], "rows": t.rows} for t in self.tables],
        }

    @classmethod
    def from_json(cls, value: Any) -> Header:
        if not isinstance(value, dict) or value.get("format") != FORMAT:
            raise BackupError("this is not a Keyplane backup (its first line is not a backup header)")
        version = value.get("format_version")
        if version != FORMAT_VERSION:
            raise BackupError(f"backup format version [{version}] is not one this Keyplane reads ({FORMAT_VERSION})")
        try:
            tables = [
                TableInfo(_text(t["name"]), [(_text(n), _kind(k)) for n, k in t["columns"]], _count(t["rows"], "rows"))
                for t in value["tables"]
            ]
            return cls(
                schema_version=_count(value["schema_version"], "schema_version"),
                store=_text(value["store"]),
                created=_text(value["created"]),
                keyplane_version=_text(value["keyplane_version"]),
                tables=tables,
                secrets_key=value.get("secrets_key"),
                included_key=value.get("included_key"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BackupError(f"the backup header is malformed ({exc})") from None

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {type(value).__name__}")
    return value


def _count(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a count")
    return value


def _kind(value: Any) -> str:
    if value not in KINDS:
        raise ValueError(f"unknown column kind [{value}]")
    return str(value)


def kind_of(column: Column[Any]) -> str:
    """How a column's values are written: by its SQL type (a decorated type by the type it wraps)."""
    sql_type: TypeEngine[Any] = column.type
    if isinstance(sql_type, TypeDecorator):
        sql_type = sql_type.impl_instance
    for kind, types in (
        ("json", (JSON,)),
        ("boolean", (Boolean,)),
        ("integer", (Integer,)),
        ("float", (Float,)),
        ("bytes", (LargeBinary,)),
        ("datetime", (DateTime,)),
        ("date", (Date,)),
        ("text", (String,)),
    ):
        if isinstance(sql_type, types):
            return kind
    raise BackupError(f"column {column.table}.{column.name} has a type backups do not know ({sql_type})")


# -- values -------------------------------------------------------------------------------------------------

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _float_out(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _bytes_out(value: Any) -> Any:
    return None if value is None else base64.b64encode(bytes(value)).decode()


def _time_out(value: Any) -> Any:
    return None if value is None else value.isoformat()


ENCODERS: dict[str, Callable[[Any], Any] | None] = {
    "float": _float_out,
    "bytes": _bytes_out,
    "datetime": _time_out,
    "date": _time_out,
}


# The JSON types (as orjson gives them) a written value of each kind may have; None is SQL NULL.
_NONE = type(None)
_WRITTEN: dict[str, tuple[type, ...]] = {
    "text": (str, _NONE),
    "integer": (int, _NONE),
    "boolean": (bool, _NONE),
    "float": (float, int, str, _NONE),
    "bytes": (str, _NONE),
    "datetime": (str, _NONE),
    "date": (str, _NONE),
}


def _float_in(value: Any) -> float:
    if isinstance(value, str):
        if value not in _NONFINITE:
            raise ValueError(f"expected a number, got text [{value[:20]}]")
        return _NONFINITE[value]
    return float(value)


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "float": _float_in,
    "bytes": lambda value: base64.b64decode(value, validate=True),
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
}


class RowDecoder:
    """Checks a written row's values against their columns' kinds and turns them into column values.

    Types are compared exactly (``type(v) in``), which also keeps booleans out of integer columns;
    only the few kinds JSON cannot hold as they are go through a conversion.
    """

    def __init__(self, kinds: list[str]) -> None:
        self.kinds = kinds
        self._checked = [(i, _WRITTEN[kind]) for i, kind in enumerate(kinds) if kind in _WRITTEN]
        self._converted = [(i, _CONVERTERS[kind]) for i, kind in enumerate(kinds) if kind in _CONVERTERS]

    def __call__(self, values: list[Any]) -> list[Any]:
        for i, allowed in self._checked:
            if type(values[i]) not in allowed:
                raise ValueError(f"column {i + 1} should be {self.kinds[i]}, not {type(values[i]).__name__}")
        for i, convert in self._converted:
            if values[i] is not None:
                values[i] = convert(values[i])
        return values


def encoders(kinds: list[str]) -> list[Callable[[Any], Any] | None]:
    return [ENCODERS.get(kind) for kind in kinds]


# -- writing ------------------------------------------------------------------------------------------------


class Writer:
    """Writes a backup under a temporary name beside ``path`` (owner-only), renamed there by ``finish``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temp = path.with_name(f".{path.name}.partial-{os.getpid()}")
        fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        self._raw = os.fdopen(fd, "wb")
        # Level 6: most of level 9's size at a fraction of its time.
        self._gzip = gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=6)
        self._hash = hashlib.sha256()
        self._pending: list[bytes] = []
        self._size = 0
        self.rows = 0

    def _line(self, data: bytes) -> None:
        # Lines are gathered and handed to the hash and gzip in large pieces: per line, their calls
        # cost more than the compression itself.
        self._pending.append(data)
        self._size += len(data) + 1
        if self._size >= _CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            chunk = b"\n".join(self._pending) + b"\n"
            self._hash.update(chunk)
            self._gzip.write(chunk)
            self._pending, self._size = [], 0

    def header(self, header: Header) -> None:
        self._line(orjson.dumps(header.to_json()))

    def table(self, name: str, rows: int) -> None:
        self._line(orjson.dumps({"table": name, "rows": rows}))

    def row(self, values: list[Any]) -> None:
        self._line(jsontext.dumps(values))
        self.rows += 1

    def finish(self) -> None:
        """Write the trailer, make the file durable, then give it its name."""
        self._flush()
        trailer = {"end": {"rows": self.rows, "sha256": self._hash.hexdigest()}}
        self._gzip.write(orjson.dumps(trailer) + b"\n")
        self._gzip.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        os.replace(self.temp, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def abort(self) -> None:
        """Drop the unfinished file."""
        try:
            self._gzip.close()
            self._raw.close()
        finally:
            self.temp.unlink(missing_ok=True)


# -- reading ------------------------------------------------------------------------------------------------


class Reader:
    """Reads a backup in one pass: ``header``, then ``sections()``; checks counts and the checksum.

    A file cut short, changed, or not gzip raises ``BackupError``; the checksum is only known at
    the end, so a restore reads the file once to check it before writing (``verify``).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file = gzip.GzipFile(path, "rb")
        except OSError as exc:
            raise BackupError(f"cannot read {path}: {exc.strerror or exc}") from None
        self._hash = hashlib.sha256()
        self.line_no = 0
        self.header = Header.from_json(self._json(self._next()))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next(self, hashed: bool = True) -> bytes:
        try:
            line = self._file.readline()
        except (OSError, EOFError, zlib.error) as exc:
            raise BackupError(f"the backup is damaged or cut short (gzip: {exc})") from None
        if not line.endswith(b"\n"):
            raise BackupError(f"the backup is cut short (line {self.line_no + 1})")
        self.line_no += 1
        if hashed:
            self._hash.update(line)
        return line[:-1]

    def _json(self, line: bytes) -> Any:
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError:
            raise BackupError(f"the backup is damaged (line {self.line_no} is not JSON)") from None

    def sections(self) -> Iterator[tuple[TableInfo, Iterator[list[Any]]]]:
        """Each table with its rows, decoded; the trailer is checked after the last one."""
        for info in self.header.tables:
            marker = self._json(self._next())
            if marker != {"table": info.name, "rows": info.rows}:
                raise BackupError(f"the backup is damaged (line {self.line_no}: expected table {info.name})")
            yield info, self._rows(info)
        self._trailer()

    def _rows(self, info: TableInfo) -> Iterator[list[Any]]:
        decode = RowDecoder([kind for _, kind in info.columns])
        width = len(info.columns)
        for _ in range(info.rows):
            values = self._json(self._next())
            if not isinstance(values, list) or len(values) != width:
                raise BackupError(f"the backup is damaged (line {self.line_no} is not a row of {info.name})")
            try:
                yield decode(values)
            except (ValueError, binascii.Error) as exc:
                raise BackupError(f"the backup is damaged (line {self.line_no}, table {info.name}: {exc})") from None

    def _trailer(self) -> None:
        digest = self._hash.hexdigest()
        trailer = self._json(self._next(hashed=False))
        end = trailer.get("end") if isinstance(trailer, dict) else None
        if not isinstance(end, dict) or end.get("rows") != self.header.total_rows:
            raise BackupError("the backup is damaged (its trailer is missing or counts other rows than its header)")
        if end.get("sha256") != digest:
            raise BackupError("the backup is damaged (its checksum does not match its content)")
        try:
            rest = self._file.read(1)
        except (OSError, EOFError, zlib.error) as exc:
            raise BackupError(f"the backup is damaged (gzip: {exc})") from None
        if rest:
            raise BackupError("the backup is damaged (it goes on after its trailer)")


def read_header(path: Path) -> Header:
    """The header alone (not checked against the rest of the file)."""
    with Reader(path) as reader:
        return reader.header
