"""An index's fields as the query engine sees them: mapped fields by their type, every other name
as Elasticsearch's dynamic mapping would have made it (a string is text with a ``.keyword`` subfield)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keyplane.query.fields import Field, FieldType

_TYPES = {
    "keyword": FieldType.KEYWORD,
    "constant_keyword": FieldType.KEYWORD,
    "wildcard": FieldType.KEYWORD,
    "text": FieldType.TEXT,
    "match_only_text": FieldType.TEXT,
    "date": FieldType.DATE,
    "date_nanos": FieldType.DATE,
    "boolean": FieldType.BOOLEAN,
    "flattened": FieldType.FLATTENED,
}
ID = Field("_id", FieldType.KEYWORD)


def _mapped(mappings: Mapping[str, Any]) -> dict[str, FieldType]:
    """Dotted field name -> type, for every field the mappings declare (object fields recurse)."""
    found: dict[str, FieldType] = {}
    pending: list[tuple[str, Any]] = [("", mappings.get("properties"))]
    while pending:
        prefix, props = pending.pop()
        if not isinstance(props, Mapping):
            continue
        for name, spec in props.items():
            if not isinstance(spec, Mapping):
                continue
            path = prefix + name
            kind = spec.get("type", "object")
            if isinstance(spec.get("properties"), Mapping):
                pending.append((path + ".", spec["properties"]))
            elif isinstance(kind, str):
                found[path] = _TYPES.get(kind, FieldType.KEYWORD)
            subfields = spec.get("fields")
            if isinstance(subfields, Mapping):
                for sub, sub_spec in subfields.items():
                    if isinstance(sub_spec, Mapping) and isinstance(sub_spec.get("type"), str):
                        # A multi-field reads the same value as its parent, indexed its own way.
                        found[f"{path}.{sub}"] = _TYPES.get(sub_spec["type"], FieldType.KEYWORD)
    return found


class IndexFields:
    """The query engine's ``Fields`` over one index: the field's ``name`` is the path read from ``_source``."""

    def __init__(self, mappings: Mapping[str, Any]) -> None:
        self._types = _mapped(mappings)
        self._multi = {name for name in self._types if name.rsplit(".", 1)[0] in self._types}

    def resolve(self, name: str) -> Field | None:
        if not isinstance(name, str) or not name:
            return None
        if name == "_id":
            return ID
        kind = self._types.get(name)
        if kind is not None:
            path = name.rsplit(".", 1)[0] if name in self._multi else name
            return Field(path, kind)
        if name.endswith(".keyword") and len(name) > len(".keyword"):
            return Field(name[: -len(".keyword")], FieldType.KEYWORD)
        return Field(name, FieldType.TEXT)  # dynamic: strings are text

    def names(self) -> Sequence[str]:
        return list(self._types)
