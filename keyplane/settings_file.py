"""The settings file ``keyplane.yml``, read as Elasticsearch reads ``elasticsearch.yml``.

Nested maps and dotted keys name the same setting (``http: {port: 9200}`` is ``http.port: 9200``),
so the file is flattened to dotted keys. Which keys exist and what their values mean is
:mod:`keyplane.config`'s business; this module only turns the YAML into ``{key: (value, line)}``.
Messages never quote the file's text: a value may be a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

NAME = "keyplane.yml"

# A boolean is kept apart from text: YAML reads yes, True and on as true.
Scalar = str | bool
Value = Scalar | tuple[Scalar, ...]


@dataclass(frozen=True)
class Entry:
    value: Value
    line: int


class SettingsFileError(ValueError):
    """The file cannot be read as a map of settings; the message names the file and the line."""


def read(path: Path) -> dict[str, Entry]:
    """The file's settings by dotted key; empty when the file does not exist. Null values are left out."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise SettingsFileError(f"cannot read {path}: {reason}") from None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        entries: dict[str, Entry] = {}
        if root is not None:
            if not isinstance(root, yaml.MappingNode):
                raise SettingsFileError(f"{path} must be a map of settings (line {_line(root)})")
            _flatten(loader, path, root, "", entries)
        return entries
    except yaml.MarkedYAMLError as exc:
        raise SettingsFileError(_syntax_error(path, exc)) from None
    except yaml.YAMLError as exc:
        raise SettingsFileError(f"{path} is not valid YAML: {type(exc).__name__}") from None
    finally:
        loader.dispose()


def _flatten(loader: yaml.SafeLoader, path: Path, node: yaml.MappingNode, prefix: str, into: dict[str, Entry]) -> None:
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or not key_node.value:
            raise SettingsFileError(f"{path} line {_line(key_node)}: a setting's name must be text")
        key = prefix + key_node.value
        if isinstance(value_node, yaml.MappingNode):
            _flatten(loader, path, value_node, key + ".", into)
            continue
        if key in into:
            # PyYAML keeps the last of two equal keys; Elasticsearch refuses them, and so does Keyplane.
            raise SettingsFileError(f"{path} line {_line(key_node)}: duplicate setting [{key}]")
        value = _value(loader, path, key, value_node)
        if value is not None:
            into[key] = Entry(value, _line(key_node))


def _value(loader: yaml.SafeLoader, path: Path, key: str, node: yaml.Node) -> Value | None:
    if isinstance(node, yaml.SequenceNode):
        items = tuple(_scalar(loader, path, key, item) for item in node.value)
        return tuple(item for item in items if item is not None)
    return _scalar(loader, path, key, node)


def _scalar(loader: yaml.SafeLoader, path: Path, key: str, node: yaml.Node) -> Scalar | None:
    if not isinstance(node, yaml.ScalarNode):
        raise SettingsFileError(f"[{key}] in {path} (line {_line(node)}) must be a value or a list of values")
    value = loader.construct_object(node, deep=True)
    if value is None or isinstance(value, (str, bool)):
        return value
    # Numbers, dates and the rest: the text as written (a node name of 1.50 stays "1.50", not 1.5).
    return str(node.value)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _syntax_error(path: Path, exc: yaml.MarkedYAMLError) -> str:
    # PyYAML's own message quotes the offending line, which may hold a secret: only places and reasons.
    parts = []
    if exc.context:
        parts.append(exc.context + _at(exc.context_mark))
    if exc.problem:
        parts.append(exc.problem + _at(exc.problem_mark))
    return f"{path} is not valid YAML: {', '.join(parts) or 'syntax error' + _at(exc.problem_mark)}"


def _at(mark: yaml.Mark | None) -> str:
    return "" if mark is None else f" (line {mark.line + 1}, column {mark.column + 1})"
