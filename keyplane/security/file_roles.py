"""Roles from the config dir's ``roles.yml``, as Elasticsearch's file roles store reads them.

The file is a YAML map of role name to role descriptor, the body the role API takes (``cluster``,
``indices``, ``applications``, ``run_as``, ``metadata``...), checked by the same rules. As in
Elasticsearch, the file is cut into one block per role (a line at column 0 that is not a comment starts
the next role) and each block is parsed on its own: a block that is not YAML, is not a map of one role,
fails the role rules or names a built-in role is a warning naming the file, the line and the role when
it can be read, and only that role is skipped; the others load. So one badly indented role does not
cost every file role at start. A file that cannot be read at all (permissions, not UTF-8) is a warning
and the roles read before stay; a missing file has no roles.

As in Elasticsearch, these roles are resolved for authorization after the built-in roles and before
the stored ones (a stored role of the same name is shadowed), and the role APIs neither list nor
change them. Each node reads its own file; ``refresh`` is polled by the wiring off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from pathlib import Path
from typing import Any

import yaml

from keyplane.errors import KeyplaneError
from keyplane.security import realm_files
from keyplane.security import roles as role_mod
from keyplane.security.roles import RoleDescriptor

log = logging.getLogger("keyplane.security")

NAME = "roles.yml"


class RolesFileError(ValueError):
    """The file cannot be read at all (permissions, not UTF-8); the message names it."""


class _Loader(yaml.SafeLoader):
    """YAML as JSON-like values: dates stay text, as Elasticsearch's YAML parser leaves them."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _json_like(value: Any) -> bool:
    """Whether a value is one JSON can hold (what a stored role or an API key's snapshot writes)."""
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_json_like(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_like(v) for k, v in value.items())
    return False  # a set, binary data, or another tag PyYAML's safe loader builds


# A document start marker (``---``, maybe followed by a comment) before the first role.
_DOCUMENT_START = re.compile(r"---(?:\s.*)?")


def _blocks(text: str) -> tuple[list[tuple[int, str]], list[int]]:
    """Each role's block with its first line (1-based), and the indented lines that follow no role.

    A block runs from a line at column 0 that is neither blank nor a ``#`` comment up to the next such
    line; the comments and blank lines in between stay in it, so YAML sees the file's own lines and a
    mark's line plus the block's first line is the file's line.
    """
    # Java's line ends (\n, \r\n, \r), not str.splitlines's longer list.
    lines = re.split(r"\r\n|\r|\n", text.removeprefix("\ufeff"))
    blocks: list[tuple[int, list[str]]] = []
    orphans: list[int] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            if blocks:
                blocks[-1][1].append(line)
        elif line[0].isspace():
            if blocks:
                blocks[-1][1].append(line)
            else:
                orphans.append(number)
        elif not blocks and _DOCUMENT_START.fullmatch(line):
            continue
        else:
            blocks.append((number, [line]))
    return [(number, "\n".join(block) + "\n") for number, block in blocks], orphans


def _name_in(block: str) -> str | None:
    """The first key of a block, read from YAML's tokens up to the first error; None when there is none."""
    after_key = False
    try:
        for token in yaml.scan(block, Loader=_Loader):
            if isinstance(token, yaml.KeyToken):
                after_key = True
            elif after_key and isinstance(token, yaml.ScalarToken):
                return str(token.value)
            elif after_key:
                return None
    except yaml.YAMLError:
        pass
    return None


def _skipped(block: str, line: int, path: Path, why: str) -> str:
    """The warning for a block that is not a role, naming the role when its first key can be read."""
    name = _name_in(block)
    what = f"invalid role definition [{name}]" if name is not None else "invalid role definition"
    return f"{what} in roles file [{path}] at line {line}: {why}; skipping role"


def _load_block(block: str, first_line: int, path: Path) -> tuple[str | None, Any, str | None]:
    """A block's role name and body, or why it is skipped (naming the file, the line and the role)."""
    try:
        data = yaml.load(block, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        # The end of the stream is marked after the block's last line: name that line instead.
        line = first_line + min(mark.line, block.rstrip().count("\n")) if mark is not None else first_line
        return None, None, _skipped(block, line, path, f"not valid YAML ({exc.problem or exc.context})")
    except yaml.YAMLError as exc:
        return None, None, _skipped(block, first_line, path, f"not valid YAML ({type(exc).__name__})")
    if isinstance(data, dict) and len(data) == 1:
        ((key, body),) = data.items()
        # A bare number or boolean as a name is text to Elasticsearch's parser.
        name = key if isinstance(key, str) else str(key).lower() if isinstance(key, bool) else str(key)
        return name, body, None
    return None, None, _skipped(block, first_line, path, "expected a role name and its descriptor")


def _role(name: str, body: Any, path: Path, line: int) -> tuple[RoleDescriptor | None, str | None]:
    """One role of the file: its descriptor, or why it is skipped."""
    skipped = f"invalid role definition [{name}] in roles file [{path}] at line {line}"
    if role_mod.validate_name(name):
        return None, f"{skipped}: invalid role name; skipping role"
    if role_mod.is_reserved(name):
        return None, f"role [{name}] in roles file [{path}] is reserved; the built-in role is used and this one skipped"
    if not _json_like(body):
        return None, f"{skipped}: it holds a value JSON cannot hold; skipping role"
    try:
        return role_mod.parse_and_validate(name, body), None
    except KeyplaneError as exc:
        return None, f"{skipped}: {exc}; skipping role"


def parse(text: str, path: Path) -> tuple[dict[str, RoleDescriptor], list[str]]:
    """The file's valid roles by name, and a warning per block skipped. A later role of a name wins."""
    roles: dict[str, RoleDescriptor] = {}
    problems: list[str] = []
    blocks, orphans = _blocks(text)
    if orphans:
        span = f"line {orphans[0]}" if len(orphans) == 1 else f"lines {orphans[0]}-{orphans[-1]}"
        problems.append(f"roles file [{path}] {span}: indented before any role; skipped")
    for line, block in blocks:
        name, body, problem = _load_block(block, line, path)
        if name is None:
            problems.append(problem or f"invalid role definition in roles file [{path}] at line {line}; skipping role")
            continue
        descriptor, problem = _role(name, body, path, line)
        if descriptor is None:
            problems.append(problem or f"invalid role definition [{name}] in roles file [{path}]; skipping role")
            continue
        if name in roles:
            problems.append(f"role [{name}] in roles file [{path}] at line {line} is defined again; this one is used")
        roles[name] = descriptor
    return roles, problems


def read(path: Path) -> tuple[dict[str, RoleDescriptor], list[str]]:
    """The roles of the file at ``path`` (none when it is missing) and the warnings. Blocks; raises RolesFileError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, []
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise RolesFileError(f"could not read roles file [{path}] ({reason})") from None
    return parse(text, path)


class FileRoles:
    """The roles of ``roles.yml``, read again when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.roles: dict[str, RoleDescriptor] = {}
        self._seen: realm_files.Signature | None = None
        self._read_once = False

    def reload_if_changed(self) -> bool:
        """Read the file again if it changed since last read; whether the roles changed. Blocks: run in a thread."""
        # Taken before reading: a write racing the read is seen at the next poll.
        seen = realm_files.signature(self.path)
        if self._read_once and seen == self._seen:
            return False
        first, self._read_once, self._seen = not self._read_once, True, seen
        try:
            roles, problems = read(self.path)
        except RolesFileError as exc:
            kept = "no file roles are loaded" if first else f"the {len(self.roles)} roles read before stay"
            log.warning("%s; %s", exc, kept)
            return False
        for problem in problems:
            log.warning("%s", problem)
        changed = roles != self.roles
        self.roles = roles
        if not first:
            log.info("roles file [%s] changed; %d roles now", self.path, len(roles))
        return changed

    async def refresh(self) -> bool:
        """Pick up a changed file; whether the roles changed (the role service then forgets its permissions)."""
        return await asyncio.to_thread(self.reload_if_changed)
