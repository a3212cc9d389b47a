"""The file realm's files in Elasticsearch's formats: read leniently, written atomically.

- ``users``: one ``username:hash`` per line, as ``elasticsearch-users`` writes it (bcrypt ``$2a$``,
  or a ``{PBKDF2}`` / ``{PBKDF2_STRETCH}`` hash);
- ``users_roles``: one ``role:user1,user2`` per line;
- ``service_tokens``: one ``namespace/service/token_name:hash`` per line (read by service_accounts).

Lines starting with ``#`` are comments and blank lines are ignored. A malformed line is reported by
file and line number (never its text: it may hold a hash) and skipped; the rest of the file counts.
Reading and writing block: callers on the event loop run them in a thread.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from keyplane.security.passwords import is_supported_hash
from keyplane.security.users import is_reserved, username_messages

# Owner-only: the files hold password hashes.
FILE_MODE = 0o600
DIR_MODE = 0o700
# What a file looked like when last read: changed when rewritten in place or replaced (a new inode).
Signature = tuple[int, int, int] | None


def signature(path: Path) -> Signature:
    try:
        st = path.stat()
    except OSError:  # missing, or in a directory we may not read: reading it says which
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def read_lines(path: Path) -> list[str] | None:
    """The file's lines, or None when it does not exist; raises when it cannot be read (the commands)."""
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None


def read_lines_leniently(path: Path, kind: str) -> tuple[list[str], list[str]]:
    """The file's lines, none when it is missing or cannot be read (the server: the file counts as empty)."""
    try:
        return read_lines(path) or [], []
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        return [], [f"could not read {kind} file [{path}] ({reason}); it counts as empty"]


def entries(lines: list[str]) -> Iterator[tuple[int, str, str | None]]:
    """``(line number, key, value)`` of every line that is not a comment or blank.

    The value is None when the line has no ``:`` or nothing on one side of it.
    """
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        yield number, key, (value if sep and key and value else None)


def role_name_messages(name: str) -> list[str]:
    """Elasticsearch's rule for role names: 1 to 507 printable ASCII characters, no outer whitespace."""
    if not (1 <= len(name) <= 507) or name != name.strip() or not all(" " <= c <= "~" for c in name):
        return [
            f"Invalid role name [{name}]... Role names must be at least 1 and no more than 507 characters. "
            "They can contain alphanumeric characters (a-z, A-Z, 0-9), spaces, punctuation, and printable "
            "symbols in the Basic Latin (ASCII) block. Leading or trailing whitespace is not allowed."
        ]
    return []


def file_username_messages(username: str) -> list[str]:
    """Why a name cannot be a file user: the native rules, and the built-in users stay reserved."""
    messages = username_messages(username)
    if not messages and is_reserved(username):
        messages.append(f"Invalid username [{username}]... Username [{username}] is reserved and may not be used.")
    return messages


def parse_users(lines: list[str], path: Path) -> tuple[dict[str, str], list[str]]:
    """The users file: username -> password hash, and a warning for every line skipped."""
    users: dict[str, str] = {}
    problems: list[str] = []
    for number, username, hashed in entries(lines):
        if hashed is None:
            problems.append(f"invalid entry in users file [{path}], line [{number}]: expected username:hash; skipped")
        elif file_username_messages(username):
            problems.append(f"invalid username in users file [{path}], line [{number}]; skipped")
        elif not is_supported_hash(hashed):
            problems.append(
                f"invalid entry in users file [{path}], line [{number}]: the password is not a bcrypt or PBKDF2 "
                "hash; skipped"
            )
        else:
            users[username] = hashed
    return users, problems


def parse_users_roles(lines: list[str], path: Path) -> tuple[dict[str, list[str]], list[str]]:
    """The users_roles file (``role:users``), read as username -> roles, and a warning per line skipped."""
    roles: dict[str, list[str]] = {}
    problems: list[str] = []
    for number, role, users_text in entries(lines):
        if users_text is None:
            problems.append(
                f"invalid entry in users_roles file [{path}], line [{number}]: expected role:user1,user2; skipped"
            )
            continue
        if role_name_messages(role):
            problems.append(f"invalid role name in users_roles file [{path}], line [{number}]; skipped")
            continue
        for username in (name.strip() for name in users_text.split(",")):
            if username:
                user_roles = roles.setdefault(username, [])
                if role not in user_roles:
                    user_roles.append(role)
    return roles, problems


def users_text(users: dict[str, str]) -> str:
    return "".join(f"{username}:{hashed}\n" for username, hashed in sorted(users.items()))


def users_roles_text(roles: dict[str, list[str]]) -> str:
    """username -> roles, written the file's way round: one line per role, naming its users."""
    by_role: dict[str, list[str]] = {}
    for username, user_roles in sorted(roles.items()):
        for role in user_roles:
            by_role.setdefault(role, []).append(username)
    return "".join(f"{role}:{','.join(users)}\n" for role, users in sorted(by_role.items()))


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: a reader sees the old file or the new one, never a part.

    Written to a temporary file in the same directory (owner-only, synced), then renamed over it.
    """
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
