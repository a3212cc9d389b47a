"""What the admin commands share: exit codes, failing with a message, asking for a new password.

The exit codes are Elasticsearch's command-line tools' (``org.elasticsearch.cli.ExitCodes``), so
scripts written against ``elasticsearch-users`` and friends read them the same way.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from typing import NoReturn

from keyplane.security.users import password_messages

OK = 0
USAGE = 64
DATA_ERROR = 65
NO_USER = 67
UNAVAILABLE = 69
CODE_ERROR = 70
IO_ERROR = 74
CONFIG = 78


class CommandError(Exception):
    """A command stops with this message on stderr and this exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int) -> NoReturn:
    raise CommandError(message, code)


def warn(message: str) -> None:
    print(message, file=sys.stderr)


def checked_password(password: str) -> str:
    messages = password_messages(password)
    if messages:
        fail(f"Invalid password... {messages[0]}", DATA_ERROR)
    return password


def ask_new_password(username: str) -> str:
    """A password typed twice without echo (refused when the two differ or it is too short)."""
    try:
        first = getpass.getpass(f"Enter password for [{username}]: ")
        checked_password(first)
        again = getpass.getpass(f"Re-enter password for [{username}]: ")
    except (EOFError, KeyboardInterrupt):
        fail("no password given", DATA_ERROR)
    if first != again:
        fail("Password mismatch", DATA_ERROR)
    return first


def run_guarded(action: Callable[[], None]) -> int:
    """Run a command's body, turning a CommandError into its message on stderr and its exit code."""
    try:
        action()
    except CommandError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return exc.code
    except OSError as exc:  # a file of the config dir that cannot be read or written: nothing was changed
        print(f"ERROR: {exc.filename}: {exc.strerror}" if exc.filename else f"ERROR: {exc}", file=sys.stderr)
        return IO_ERROR
    except UnicodeDecodeError:
        print("ERROR: a file of the config dir is not UTF-8 text; nothing was changed", file=sys.stderr)
        return IO_ERROR
    return OK
