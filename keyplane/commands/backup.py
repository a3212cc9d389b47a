"""``keyplane backup FILE``: an online backup of the store, consistent as of one instant."""

from __future__ import annotations

import argparse
import base64
import binascii
import sys
from pathlib import Path

from sqlalchemy import exc as sa_exc

from keyplane.backup.dump import backup
from keyplane.backup.fileformat import BackupError
from keyplane.backup.tables import store_url
from keyplane.cli import add_setting_flags, settings_from
from keyplane.commands import terminal
from keyplane.commands.terminal import DATA_ERROR, IO_ERROR, UNAVAILABLE, fail
from keyplane.config import Settings
from keyplane.connectors.secrets import fingerprint
from keyplane.store.database import describe_error

DESCRIPTION = """\
Write a backup of the store (the same --data-dir or --database-url as the server) to FILE while
the server runs and writes: every table is read in one snapshot, so the backup is the store as it
was at one instant. FILE is a gzip'd JSON-lines file that either store can restore (keyplane
restore), so a SQLite store can move to PostgreSQL and back. It is written owner-only under a
temporary name and takes its name only once complete.

The store holds passwords and API keys as hashes and connector secrets encrypted, and the backup
copies them as they are. It does not hold the key that encrypts connector secrets
(KEYPLANE_SECRETS_KEY, or the data dir's secrets.key): keep a copy of that key safe, apart from the
backups. A store restored without the same key cannot read its connector secrets. The backup names
the key by its fingerprint, and restore says when the restored store's key differs.
"""

EXAMPLES = """\
examples:
  keyplane backup keyplane-backup.ndjson.gz
  keyplane backup /backups/kp.ndjson.gz --database-url postgresql://127.0.0.1:5432/keyplane
"""


def key_fingerprint(settings: Settings) -> str | None:
    """The fingerprint of the key this configuration seals connector secrets with, if it has one yet."""
    try:
        if settings.secrets_key:
            return fingerprint(base64.b64decode(settings.secrets_key, validate=True))
        key_file = settings.data_dir / "secrets.key"
        if key_file.exists():
            return fingerprint(base64.b64decode(key_file.read_bytes().strip()))
    except (binascii.Error, ValueError, OSError):
        return None
    return None


def store_failure(exc: Exception) -> str:
    """A database or file error for the operator, without statement parameters."""
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} ({type(exc).__name__})"
    return f"the store cannot be read or written: {describe_error(exc)}"


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    settings = settings_from(parser, args)
    target = Path(args.file)
    if target.exists() and not args.overwrite:
        fail(f"{target} exists; give --overwrite to replace it", IO_ERROR)
    if not target.parent.is_dir():
        fail(f"the directory of {target} does not exist", IO_ERROR)
    progress = args.progress or sys.stderr.isatty()
    secrets_key = key_fingerprint(settings)
    try:
        header = backup(
            store_url(settings.data_dir, settings.database_url), target, secrets_key=secrets_key, progress=progress
        )
    except BackupError as exc:
        fail(str(exc), DATA_ERROR)
    except (sa_exc.SQLAlchemyError, OSError) as exc:
        fail(store_failure(exc), UNAVAILABLE)
    print(
        f"Backed up {header.total_rows:,} rows of {len(header.tables)} tables (schema version "
        f"{header.schema_version}, {header.store}, as of {header.created}) to {target}",
        file=sys.stderr,
    )
    secrets = next((t.rows for t in header.tables if t.name == "connector_secrets"), 0)
    if secrets:
        terminal.warn(
            f"NOTE: the {secrets} connector secret(s) in it are encrypted with the key of fingerprint "
            f"{secrets_key or 'unknown'}: a restored store needs the same KEYPLANE_SECRETS_KEY or secrets.key."
        )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "backup",
        help="write an online backup of the store to a file (while the server runs)",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", help="the backup file to write (gzip'd JSON lines)")
    parser.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")
    parser.add_argument(
        "--progress", action="store_true", help="print progress to stderr (the default when stderr is a terminal)"
    )
    add_setting_flags(parser)
    parser.set_defaults(run=lambda args: terminal.run_guarded(lambda: _run(parser, args)))
