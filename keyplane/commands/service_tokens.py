"""``keyplane service-tokens``: file-backed service-account tokens, as ``elasticsearch-service-tokens`` manages them.

It edits the ``service_tokens`` file of the config dir; a running server reads it again within
about a second of a change. ``create`` prints the token once: only its hash is written.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from keyplane import ids
from keyplane.commands import terminal
from keyplane.commands.flags import add_setting_flags, settings_from
from keyplane.commands.terminal import CODE_ERROR, DATA_ERROR, NO_USER, fail
from keyplane.security import realm_files
from keyplane.service_accounts import core, file_tokens
from keyplane.service_accounts.core import TokenId

DESCRIPTION = """\
Manage the service-account tokens of the service_tokens file in the config dir, in
Elasticsearch's format. They authenticate as the tokens made with the API do (tried first), show
as _service_account_file, and are listed under nodes_credentials.file_tokens. A running server
reads the file again within about a second of a change.
"""

EXAMPLES = """\
examples:
  keyplane service-tokens create elastic/fleet-server my-token
  keyplane service-tokens list elastic/fleet-server
  keyplane service-tokens delete elastic/fleet-server my-token
"""


def _principal(principal: str) -> str:
    if principal not in core.ACCOUNTS:
        fail(
            f"Unknown service account principal: [{principal}]. Must be one of [{','.join(sorted(core.ACCOUNTS))}]",
            NO_USER,
        )
    return principal


def _token(principal: str, name: str) -> TokenId:
    _principal(principal)
    if not core.TOKEN_NAME.match(name):
        fail(f"Invalid service token name [{name}]: it must match [a-zA-Z0-9-][a-zA-Z0-9_-]{{0,255}}", DATA_ERROR)
    return TokenId(principal, name)


def _read(path: Path) -> dict[str, str]:
    tokens, problems = file_tokens.read(path)
    for problem in problems:
        terminal.warn(f"WARNING: {problem} (a line skipped is dropped when the file is written)")
    return tokens


def _write(path: Path, tokens: dict[str, str]) -> None:
    realm_files.write_atomically(path, file_tokens.text(tokens))


def create(path: Path, args: argparse.Namespace) -> None:
    token = _token(args.principal, args.name)
    tokens = _read(path)
    if token.key in tokens:
        fail(f"Service token [{token.key}] already exists", CODE_ERROR)
    secret = ids.new_secret()
    tokens[token.key] = file_tokens.hash_token_secret(secret)
    _write(path, tokens)
    print(f"SERVICE_TOKEN {token.key} = {core.encode(token, secret)}")


def delete(path: Path, args: argparse.Namespace) -> None:
    token = _token(args.principal, args.name)
    tokens = _read(path)
    if tokens.pop(token.key, None) is None:
        fail(f"Service token [{token.key}] doesn't exist", NO_USER)
    _write(path, tokens)


def list_tokens(path: Path, args: argparse.Namespace) -> None:
    principal = None if args.principal is None else _principal(args.principal)
    for key in sorted(_read(path)):
        if principal is None or key.startswith(principal + "/"):
            print(key)


def _command(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    body: Callable[[Path, argparse.Namespace], None],
) -> argparse.ArgumentParser:
    parser = actions.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
    add_setting_flags(parser)

    def run(args: argparse.Namespace) -> int:
        return terminal.run_guarded(lambda: body(settings_from(parser, args).config_dir / "service_tokens", args))

    parser.set_defaults(run=run)
    return parser


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tokens = sub.add_parser(
        "service-tokens",
        help="manage file-backed service-account tokens (like elasticsearch-service-tokens)",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = tokens.add_subparsers(dest="service_tokens_command", metavar="COMMAND", required=True)
    made = _command(actions, "create", "create a token and print it once", create)
    made.add_argument("principal", help="the service account, such as elastic/fleet-server")
    made.add_argument("name", help="the token's name")
    gone = _command(actions, "delete", "delete a token", delete)
    gone.add_argument("principal", help="the service account, such as elastic/fleet-server")
    gone.add_argument("name", help="the token's name")
    listing = _command(actions, "list", "list the tokens (of one service account)", list_tokens)
    listing.add_argument("principal", nargs="?", help="only this service account's tokens")
