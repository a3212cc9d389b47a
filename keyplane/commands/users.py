"""``keyplane users``: the file realm's users, as ``elasticsearch-users`` manages them.

It edits the ``users`` and ``users_roles`` files of the config dir (``--config-dir``,
``KEYPLANE_CONFIG_DIR``), which a running server reads again within about a second of a change.
Files are replaced atomically (a temporary file renamed over them, owner-only); passwords are
hashed with bcrypt and never printed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from keyplane.commands import terminal
from keyplane.commands.flags import add_setting_flags, settings_from
from keyplane.commands.terminal import CODE_ERROR, DATA_ERROR, NO_USER, fail
from keyplane.security import realm_files
from keyplane.security.passwords import hash_password

DESCRIPTION = """\
Manage the users of the file realm (default_file): the users and users_roles files of the config
dir, in Elasticsearch's formats. A running server reads them again within about a second of a
change. File users authenticate before native ones and are not listed by GET /_security/user.
"""

EXAMPLES = """\
examples:
  keyplane users useradd ops -p 'a-long-secret' -r superuser
  keyplane users roles ops -a monitoring_user -r superuser
  keyplane users passwd ops          (asks twice for the new password)
  keyplane users list
  keyplane users userdel ops
"""


@dataclass(frozen=True)
class Files:
    users: Path
    roles: Path

    @classmethod
    def of(cls, parser: argparse.ArgumentParser, args: argparse.Namespace) -> Files:
        config_dir = settings_from(parser, args).config_dir
        return cls(config_dir / "users", config_dir / "users_roles")

    def read_users(self) -> dict[str, str]:
        users, problems = realm_files.parse_users(realm_files.read_lines(self.users) or [], self.users)
        _report(problems)
        return users

    def read_roles(self) -> dict[str, list[str]]:
        roles, problems = realm_files.parse_users_roles(realm_files.read_lines(self.roles) or [], self.roles)
        _report(problems)
        return roles

    def write_users(self, users: dict[str, str]) -> None:
        realm_files.write_atomically(self.users, realm_files.users_text(users))

    def write_roles(self, roles: dict[str, list[str]]) -> None:
        realm_files.write_atomically(self.roles, realm_files.users_roles_text(roles))


def _report(problems: list[str]) -> None:
    for problem in problems:
        terminal.warn(f"WARNING: {problem} (a line skipped is dropped when the file is written)")


def _username(name: str) -> str:
    messages = realm_files.file_username_messages(name)
    if messages:
        fail(messages[0], DATA_ERROR)
    return name


def _roles(text: str | None) -> list[str]:
    roles = [role.strip() for role in (text or "").split(",") if role.strip()]
    for role in roles:
        messages = realm_files.role_name_messages(role)
        if messages:
            fail(messages[0], DATA_ERROR)
    return roles


def _password(given: str | None, username: str) -> str:
    return terminal.checked_password(given) if given is not None else terminal.ask_new_password(username)


def _existing(users: dict[str, str], username: str) -> None:
    if username not in users:
        fail(f"User [{username}] doesn't exist", NO_USER)


def useradd(files: Files, args: argparse.Namespace) -> None:
    username = _username(args.username)
    roles = _roles(args.roles)
    users = files.read_users()
    if username in users:
        fail(f"User [{username}] already exists", CODE_ERROR)
    users[username] = hash_password(_password(args.password, username))
    files.write_users(users)
    user_roles = files.read_roles()
    if roles or username in user_roles:  # a stale entry of an earlier user of that name goes
        user_roles[username] = roles
        files.write_roles({name: r for name, r in user_roles.items() if r})


def userdel(files: Files, args: argparse.Namespace) -> None:
    username = _username(args.username)
    users = files.read_users()
    _existing(users, username)
    del users[username]
    files.write_users(users)
    user_roles = files.read_roles()
    if user_roles.pop(username, None) is not None:
        files.write_roles(user_roles)


def passwd(files: Files, args: argparse.Namespace) -> None:
    username = _username(args.username)
    users = files.read_users()
    _existing(users, username)
    users[username] = hash_password(_password(args.password, username))
    files.write_users(users)


def roles(files: Files, args: argparse.Namespace) -> None:
    username = _username(args.username)
    added, removed = _roles(args.add), _roles(args.remove)
    if not added and not removed:
        _list(files, username)
        return
    _existing(files.read_users(), username)
    user_roles = files.read_roles()
    current = [role for role in user_roles.get(username, []) + added if role not in removed]
    user_roles[username] = list(dict.fromkeys(current))
    files.write_roles({name: r for name, r in user_roles.items() if r})


def list_users(files: Files, args: argparse.Namespace) -> None:
    _list(files, None if args.username is None else _username(args.username))


def _list(files: Files, username: str | None) -> None:
    users, user_roles = files.read_users(), files.read_roles()
    if username is not None:
        _existing(users, username)
        names = [username]
    else:
        names = sorted(users)
        if not names:
            print("No users found")
            return
    for name in names:
        print(f"{name:<15}: {','.join(user_roles.get(name, [])) or '-'}")


def _command(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    body: Callable[[Files, argparse.Namespace], None],
) -> argparse.ArgumentParser:
    parser = actions.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
    add_setting_flags(parser)

    def run(args: argparse.Namespace) -> int:
        return terminal.run_guarded(lambda: body(Files.of(parser, args), args))

    parser.set_defaults(run=run)
    return parser


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = sub.add_parser(
        "users",
        help="manage the file realm's users (like elasticsearch-users)",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = users.add_subparsers(dest="users_command", metavar="COMMAND", required=True)

    add = _command(actions, "useradd", "add a file user, with its roles", useradd)
    add.add_argument("username")
    add.add_argument("-p", "--password", help="the password (asked for twice when not given)")
    add.add_argument("-r", "--roles", help="comma-separated roles of the user")

    delete = _command(actions, "userdel", "delete a file user and its roles", userdel)
    delete.add_argument("username")

    password = _command(actions, "passwd", "change a file user's password", passwd)
    password.add_argument("username")
    password.add_argument("-p", "--password", help="the new password (asked for twice when not given)")

    edit = _command(actions, "roles", "add or remove a file user's roles (shows them without -a or -r)", roles)
    edit.add_argument("username")
    edit.add_argument("-a", "--add", help="comma-separated roles to add")
    edit.add_argument("-r", "--remove", help="comma-separated roles to remove")

    listing = _command(actions, "list", "list the file users (or one) and their roles", list_users)
    listing.add_argument("username", nargs="?")
