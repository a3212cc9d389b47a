"""The ``keyplane`` command."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap

from keyplane import ES_VERSION, __version__, commands, logs, server
from keyplane.config import SETTINGS, Setting, Settings, SettingsError

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

# argparse's layout: names in a 24-column margin, text wrapped to 78 columns.
_MARGIN = 24
_WIDTH = 78


def _plain(text: str) -> str:
    """Help text for a terminal: the README's Markdown without its backticks."""
    return text.replace("`", "")


# The one precedence order, as --help shows it (the README's settings section says the same).
PRECEDENCE = (
    "A setting given as a flag wins over its environment variable, which wins over its key in keyplane.yml "
    "(the settings file in the config dir, YAML as elasticsearch.yml: nested maps or dotted keys), which wins "
    "over the default. The config dir itself comes from --config-dir or KEYPLANE_CONFIG_DIR only; relative paths "
    "in the file, as on the command line, are relative to the working directory."
)


def _sources(declared: Setting[object]) -> str:
    key = f"keyplane.yml: {declared.key}; " if declared.key else ""
    return f"{key}default: {_plain(declared.shown_default)}"


def _flag_help(declared: Setting[object]) -> str:
    # Static on purpose: help never shows what the environment holds (a secret could be there).
    text = f"{_plain(declared.help)} (environment: {declared.env}; {_sources(declared)})"
    return text.replace("%", "%%")


def environment_help() -> str:
    """The epilog's list of every setting's environment variable, with its meaning, file key and default."""
    lines = ["settings:", *textwrap.wrap(PRECEDENCE, _WIDTH, initial_indent="  ", subsequent_indent="  "), ""]
    lines.append("environment:")
    for declared in SETTINGS:
        text = f"{_plain(declared.help)} ({_sources(declared)})"
        body = textwrap.wrap(text, _WIDTH - _MARGIN, break_on_hyphens=False)
        name = f"  {declared.env}"
        if len(name) < _MARGIN - 1:
            lines.append(name.ljust(_MARGIN) + body[0])
            body = body[1:]
        else:
            lines.append(name)
        lines += [" " * _MARGIN + line for line in body]
    return "\n".join(lines) + "\n"


def markdown_table() -> str:
    """The README's settings table."""
    rows = ["| flag | environment | `keyplane.yml` | default | meaning |", "|---|---|---|---|---|"]
    for declared in SETTINGS:
        flag = f"`{declared.flag}`" if declared.flag else ""
        key = f"`{declared.key}`" if declared.key else ""
        default = declared.unset if declared.default is None else f"`{declared.default}`"
        rows.append(f"| {flag} | `{declared.env}` | {key} | {default} | {declared.help} |")
    return "\n".join(rows) + "\n"


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """Every setting that has a flag, as an option of ``parser`` (serve and the admin commands)."""
    for declared in SETTINGS:
        if declared.flag:
            # The text is parsed with the environment's values, so one parser and one message serve both.
            metavar = declared.flag.lstrip("-").replace("-", "_").upper()
            parser.add_argument(declared.flag, dest=declared.name, metavar=metavar, help=_flag_help(declared))


def flags_of(args: argparse.Namespace) -> dict[str, str | None]:
    """The settings' flags as parsed, by attribute name (None: not given)."""
    return {d.name: getattr(args, d.name, None) for d in SETTINGS if d.flag}


def settings_from(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Settings:
    """The settings from the parsed flags, the environment, keyplane.yml and the defaults, with logging
    set up as they say (format and level); exits with status 2 and every problem when they cannot work."""
    try:
        settings = Settings.from_env(flags=flags_of(args))
    except SettingsError as exc:
        parser.error("\n  ".join(exc.problems))
    logs.configure(settings)
    return settings


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
