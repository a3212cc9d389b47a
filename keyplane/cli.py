"""The ``keyplane`` command."""

from __future__ import annotations

import argparse
import os
import sys

from keyplane import ES_VERSION, __version__, commands, server
from keyplane.commands.flags import add_setting_flags, environment_help, settings_from
from keyplane.config import SETTINGS

DESCRIPTION = f"""\
Keyplane {__version__}: an Elasticsearch-compatible server (REST API level {ES_VERSION}) for the
security API-key family (API keys, users, roles, privileges) and the Connector family.

Official Elasticsearch clients and curl work against it unchanged. By default the state lives in
an embedded SQLite file in the data directory; give a PostgreSQL URL to share one database
between several stateless nodes.

Settings come from flags, environment variables and the settings file keyplane.yml in the config
dir (./config): keyplane serve --help lists them, keyplane check-settings checks them.
"""

EXAMPLES = """\
examples:
  ELASTIC_PASSWORD=changeme keyplane serve
  KEYPLANE_LOG_FORMAT=json keyplane serve --config-dir /etc/keyplane
  keyplane serve --port 9201 --database-url postgresql://127.0.0.1:5432/keyplane
  curl -u elastic:changeme http://127.0.0.1:9200/_security/_authenticate
"""


def markdown_table() -> str:
    """The README's settings table."""
    rows = ["| flag | environment | `keyplane.yml` | default | meaning |", "|---|---|---|---|---|"]
    for declared in SETTINGS:
        flag = f"`{declared.flag}`" if declared.flag else ""
        key = f"`{declared.key}`" if declared.key else ""
        default = declared.unset if declared.default is None else f"`{declared.default}`"
        rows.append(f"| {flag} | `{declared.env}` | {key} | {default} | {declared.help} |")
    return "\n".join(rows) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keyplane", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"keyplane {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="run the server",
        description="Run the Keyplane server until interrupted.",
        epilog=environment_help() + "\n" + EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_setting_flags(serve)
    serve.set_defaults(parser=serve)
    sub.add_parser(
        "settings",
        help="print the settings as the README's Markdown table",
        description="Print every setting (flag, environment variable, default, meaning) as a Markdown table.",
    )
    commands.register_all(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "settings":
        sys.stdout.write(markdown_table())
        return 0
    # Whatever the server and the commands create (data dir, SQLite files, key file, backups) holds
    # hashes or keys: owner-only.
    os.umask(0o077)
    if args.command != "serve":
        if hasattr(args, "run"):
            status: int = args.run(args)
            return status
        parser.print_help()
        return 0 if args.command is None else 2
    settings = settings_from(args.parser, args)  # logging is set up before uvicorn starts
    server.run(settings, settings.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
