"""Roles from the config dir's ``roles.yml``, as Elasticsearch's file roles store reads them.

The file is a YAML map of role name to role descriptor, the body the role API takes (``cluster``,
``indices``, ``applications``, ``run_as``, ``metadata``...), checked by the same rules. A role that
does not pass, or that names a built-in role, is a warning naming the file and the role and is
skipped; the others load. A file that cannot be read or is not YAML (an editor's half-written save)
is a warning and the roles read before stay; a missing file has no roles.

As in Elasticsearch, these roles are resolved for authorization after the built-in roles and before
the stored ones (a stored role of the same name is shadowed), and the role APIs neither list nor
change them. Each node reads its own file; ``refresh`` is polled by the wiring off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
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
    """The file as a whole cannot be used; the message names it (and the line of a YAML error)."""


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


def _load_yaml(text: str, path: Path) -> dict[Any, Any]:
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise RolesFileError(f"roles file [{path}] is not valid YAML{where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise RolesFileError(f"roles file [{path}] is not valid YAML: {type(exc).__name__}") from None
    if data is None:  # empty, or only comments
        return {}
    if not isinstance(data, dict):
        raise RolesFileError(f"roles file [{path}] must be a map of role names to role descriptors")
    return data


def _role(name: str, body: Any, path: Path) -> tuple[RoleDescriptor | None, str | None]:
    """One entry of the file: its descriptor, or why it is skipped."""
    skipped = f"invalid role definition [{name}] in roles file [{path}]"
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
    """The file's valid roles by name, and a warning per role skipped; RolesFileError when none can be read."""
    roles: dict[str, RoleDescriptor] = {}
    problems: list[str] = []
    for key, body in _load_yaml(text, path).items():
        # A bare number or boolean as a name is text to Elasticsearch's parser.
        name = key if isinstance(key, str) else str(key).lower() if isinstance(key, bool) else str(key)
        descriptor, problem = _role(name, body, path)
        if descriptor is None:
            problems.append(problem or f"invalid role definition [{name}] in roles file [{path}]; skipping role")
        else:
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
