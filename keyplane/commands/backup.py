"""``keyplane backup FILE``: an online backup of the store, consistent as of one instant."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlalchemy import exc as sa_exc

from keyplane.backup import keys
from keyplane.backup.dump import backup
from keyplane.backup.fileformat import BackupError
from keyplane.backup.tables import store_url
from keyplane.commands import terminal
from keyplane.commands.flags import add_setting_flags, settings_from
from keyplane.commands.terminal import DATA_ERROR, IO_ERROR, UNAVAILABLE, fail
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
the key by its fingerprint, and restore says when the restored store's key differs. --include-key-file
puts the key itself in the backup, for a store moved whole (restore then writes it as secrets.key of
a data dir that has none); such a backup is as secret as the key.
"""

EXAMPLES = """\
examples:
  keyplane backup keyplane-backup.ndjson.gz
  keyplane backup /backups/kp.ndjson.gz --database-url postgresql://127.0.0.1:5432/keyplane
"""


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
    key = keys.configured_key(settings.secrets_key, settings.data_dir)
    secrets_key = None if key is None else fingerprint(key)
    if args.include_key_file and key is None:
        fail("--include-key-file: no KEYPLANE_SECRETS_KEY and no secrets.key in the data dir", DATA_ERROR)
    try:
        header = backup(
            store_url(settings.data_dir, settings.database_url),
            target,
            secrets_key=secrets_key,
            progress=progress,
            included_key=keys.encode(key) if args.include_key_file and key is not None else None,
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
    if header.included_key:
        terminal.warn(
            "WARNING: the backup holds the connector secrets' key (--include-key-file): whoever reads it can "
            "decrypt them. Keep it as safe as the key itself."
        )
    elif secrets:
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
        "--include-key-file",
        action="store_true",
        help="also put the connector secrets' key in the backup (restore writes it to a data dir that has none); "
        "the backup can then decrypt them",
    )
    parser.add_argument(
        "--progress", action="store_true", help="print progress to stderr (the default when stderr is a terminal)"
    )
    add_setting_flags(parser)
    parser.set_defaults(run=lambda args: terminal.run_guarded(lambda: _run(parser, args)))
