"""``keyplane check-settings``: read the settings as ``keyplane serve`` would, and say what is wrong."""

from __future__ import annotations

import argparse
import sys

from keyplane.commands import flags
from keyplane.config import SETTINGS, Resolved, Settings, SettingsError, shown

DESCRIPTION = """\
Read the settings as keyplane serve reads them (flags, environment variables, keyplane.yml in the
config dir, defaults) without starting anything. Prints every problem and exits with status 1, or
prints "settings OK" and each setting's value and source and exits with status 0. Secrets are shown
as <set>, never their values.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "check-settings",
        help="check the settings (flags, environment, keyplane.yml) without starting the server",
        description=DESCRIPTION,
        epilog=flags.environment_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    flags.add_setting_flags(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        resolved = Settings.resolve(flags=flags.flags_of(args))
    except SettingsError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    sys.stdout.write(summary(resolved))
    return 0


def summary(resolved: Resolved) -> str:
    """``settings OK``, whether the file was found, then a line per setting: name, value, source."""
    found = "read" if resolved.file.is_file() else "not found: defaults apply where nothing else is given"
    rows = []
    for declared in SETTINGS:
        text = resolved.texts.get(declared.name)
        value = declared.shown_default.replace("`", "") if text is None else shown(declared, text)
        rows.append((declared.key or declared.env, value, resolved.sources.get(declared.name, "default")))
    width = max(len(name) for name, _, _ in rows)
    lines = [f"settings OK ({resolved.file} {found})"]
    lines += [f"  {name.ljust(width)}  {value}  ({source})" for name, value, source in rows]
    return "\n".join(lines) + "\n"
