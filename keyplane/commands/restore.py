"""``keyplane restore FILE``: a backup written into an empty store, with every server stopped."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlalchemy import exc as sa_exc

from keyplane.backup import keys
from keyplane.backup.fileformat import BackupError, Header
from keyplane.backup.load import restore
from keyplane.backup.tables import store_url
from keyplane.commands import terminal
from keyplane.commands.backup import store_failure
from keyplane.commands.flags import add_setting_flags, settings_from
from keyplane.commands.terminal import DATA_ERROR, IO_ERROR, UNAVAILABLE, fail

DESCRIPTION = """\
Restore a backup written by keyplane backup into the store (the same --data-dir or --database-url
a server would use), from either store into either store.

Stop every server of the store first: a restore refuses a SQLite data dir a server runs on, and a
PostgreSQL database a node is connected to (a running node would serve out of stale caches). The
store must be empty (a data dir or database never used, or one whose server was never started):
--force replaces everything in a store that is not, in the same transaction.

The whole file is checked first (format, row counts, checksum), and nothing is written if it is
damaged. The rows are then written in one transaction: a restore that fails changes nothing. A
backup of an older schema version is restored, then migrated; one of a newer version is refused.

Connector secrets stay encrypted with the key of the store the backup came from: give the restored
store the same KEYPLANE_SECRETS_KEY, or copy secrets.key into its data dir, before starting it. A
backup taken with --include-key-file carries the key: restore writes it as secrets.key into a data
dir that has none (and no KEYPLANE_SECRETS_KEY is set).
"""

EXAMPLES = """\
examples:
  keyplane restore keyplane-backup.ndjson.gz --data-dir ./data-restored
  keyplane restore keyplane-backup.ndjson.gz --database-url postgresql://127.0.0.1:5432/keyplane
"""


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    settings = settings_from(parser, args)
    source = Path(args.file)
    if not source.is_file():
        fail(f"{source} is not a file", IO_ERROR)
    progress = args.progress or sys.stderr.isatty()
    try:
        header = restore(
            store_url(settings.data_dir, settings.database_url), source, force=args.force, progress=progress
        )
    except BackupError as exc:
        fail(f"{exc}; nothing was restored", DATA_ERROR)
    except (sa_exc.SQLAlchemyError, OSError) as exc:
        fail(f"{store_failure(exc)}; nothing was restored", UNAVAILABLE)
    print(
        f"Restored {header.total_rows:,} rows of {len(header.tables)} tables (schema version "
        f"{header.schema_version}, from {header.store}, as of {header.created})",
        file=sys.stderr,
    )
    _key_after_restore(header, settings.secrets_key, settings.data_dir)


def _key_after_restore(header: Header, env_value: str | None, data_dir: Path) -> None:
    """Install the key a backup carries where there is none; say so when the secrets' key is not here."""
    here = keys.key_fingerprint(env_value, data_dir)
    if header.included_key and here is None and not env_value:
        try:
            path = keys.install(data_dir, keys.decode(header.included_key))
        except (ValueError, OSError) as exc:
            fail(f"the rows are restored, but the key in the backup could not be written: {exc}", IO_ERROR)
        print(f"Wrote the connector secrets' key from the backup to {path}", file=sys.stderr)
        return
    secrets = next((t.rows for t in header.tables if t.name == "connector_secrets"), 0)
    if secrets and header.secrets_key and here != header.secrets_key:
        where = "none here yet" if here is None else f"this one's is {here}"
        terminal.warn(
            f"WARNING: the restored connector secrets are encrypted with the key of fingerprint "
            f"{header.secrets_key} ({where}): give the server that key (KEYPLANE_SECRETS_KEY, or the "
            "source's secrets.key in its data dir) before starting it, or they cannot be read."
        )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "restore",
        help="restore a backup into an empty store (with every server stopped)",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", help="the backup file written by keyplane backup")
    parser.add_argument(
        "--force", action="store_true", help="replace everything in a store that is not empty (in the same transaction)"
    )
    parser.add_argument(
        "--progress", action="store_true", help="print progress to stderr (the default when stderr is a terminal)"
    )
    add_setting_flags(parser)
    parser.set_defaults(run=lambda args: terminal.run_guarded(lambda: _run(parser, args)))
