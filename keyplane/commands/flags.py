"""How every command takes the settings: one flag per setting that has one, the help texts that
explain them (never a value: a secret could be in the environment), and their resolution with
logging set up as they say. ``serve`` and the admin commands in this package share it."""

from __future__ import annotations

import argparse
import textwrap

from keyplane import logs
from keyplane.config import SETTINGS, Setting, Settings, SettingsError

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
