"""The ``keyplane`` subcommands beside ``serve`` and ``settings``: one module each.

Each module listed in :data:`MODULES` has ``register(sub)``, which adds its parser to the
subparsers (``keyplane.commands.flags.add_setting_flags`` gives it the settings' flags) and sets ``run``, a
function of the parsed arguments returning the exit status, as that parser's default.
"""

from __future__ import annotations

import argparse
import importlib

MODULES: tuple[str, ...] = ("check_settings", "users", "service_tokens", "reset_password", "backup", "restore")


def register_all(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add every command module's parser."""
    for name in MODULES:
        importlib.import_module(f"keyplane.commands.{name}").register(sub)
