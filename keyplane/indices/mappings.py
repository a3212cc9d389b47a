"""Mappings as Elasticsearch changes them: a put-mapping merges new fields into the stored ones, and a
document with fields the mapping lacks adds them (dynamic mapping).

Both are pure: they take mappings (``{"properties": ...}`` plus root options) and return new ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from keyplane.documents import deep_copy
from keyplane.errors import InvalidArgument, KeyplaneError

Mappings = dict[str, Any]

# Elasticsearch's default dynamic date formats: strict_date_optional_time, "yyyy/MM/dd HH:mm:ss Z" and
# "yyyy/MM/dd Z" (the zone is optional in practice for the slash forms).
_DATE = re.compile(
    r"^\d{4}-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2}([.,]\d{1,9})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?)?$"
    r"|^\d{4}/\d{2}/\d{2}( \d{2}:\d{2}:\d{2})?( ?(Z|[+-]\d{2}:?\d{2}))?$"
)


class StrictDynamicMapping(KeyplaneError):
    """A document brings a field into an object whose mapping is ``dynamic: strict``."""

    def __init__(self, field: str, within: str) -> None:
        super().__init__(f"mapping set to strict, dynamic introduction of [{field}] within [{within}] is not allowed")
        self.field = field


# -- put mapping ------------------------------------------------------------------------------------


def merge(current: Mapping[str, Any], update: Mapping[str, Any]) -> Mappings:
    """``current`` with ``update`` merged in, as a put-mapping does: new fields are added, root options
    replaced, and a field's type may not change."""
    merged: Mappings = deep_copy(dict(current))
    for key, value in update.items():
        if key == "properties" and isinstance(value, Mapping):
            merged["properties"] = _merge_properties(merged.get("properties") or {}, value, "")
        else:
            merged[key] = deep_copy(value)
    return merged


def _kind(spec: Mapping[str, Any]) -> str:
    return str(spec.get("type") or "object")


def _merge_properties(current: Mapping[str, Any], update: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = deep_copy(dict(current))
    for name, spec in update.items():
        path = f"{prefix}{name}"
        if not isinstance(spec, Mapping):
            out[name] = deep_copy(spec)
            continue
        old = out.get(name)
        if not isinstance(old, Mapping):
            out[name] = deep_copy(dict(spec))
            continue
        old_kind, new_kind = _kind(old), _kind(spec)
        objects = {"object", "nested"}
        if old_kind != new_kind:
            if old_kind in objects and new_kind not in objects:
                raise InvalidArgument(f"can't merge a non object mapping [{path}] with an object mapping")
            if new_kind in objects and old_kind not in objects:
                raise InvalidArgument(f"can't merge a non object mapping [{path}] with an object mapping")
            raise InvalidArgument(f"mapper [{path}] cannot be changed from type [{old_kind}] to [{new_kind}]")
        field = deep_copy(dict(old))
        for key, value in spec.items():
            if key == "properties" and isinstance(value, Mapping):
                field["properties"] = _merge_properties(field.get("properties") or {}, value, f"{path}.")
            elif key == "fields" and isinstance(value, Mapping):
                field["fields"] = _merge_properties(field.get("fields") or {}, value, f"{path}.")
            else:
                field[key] = deep_copy(value)
        out[name] = field
    return out


# -- dynamic mapping --------------------------------------------------------------------------------


def dynamic_update(mappings: Mapping[str, Any], source: Mapping[str, Any]) -> Mappings | None:
    """The mappings once the fields of ``source`` they lack are added as Elasticsearch's dynamic mapping
    adds them, or None when nothing is new. Strings become text with a keyword subfield (dates when they
    look like one), integers long, other numbers float, booleans boolean, objects object; ``dynamic:
    false`` (or ``runtime``) objects take no new fields and ``strict`` ones refuse them."""
    root = deep_copy(dict(mappings))
    changed = _add_fields(root, source, str(root.get("dynamic", "true")).lower(), "", "_doc")
    return root if changed else None


# The types of JSON leaves (and arrays): a mapped field given one of them needs no look at its mapping.
LEAF_TYPES = frozenset({str, int, float, bool, type(None), list})


def maps_every_field(mappings: Mapping[str, Any], source: Mapping[str, Any]) -> bool:
    """Whether every field of ``source`` that dynamic mapping would consider is mapped already, so that
    ``dynamic_update`` would give None: read without copying the mappings (the bulk path asks for each
    document)."""
    props = mappings.get("properties")
    if not isinstance(props, dict):
        props = {}
    for raw_name, value in source.items():
        name, _, rest = raw_name.partition(".")
        if rest:
            value = {rest: value}
        existing = props.get(name)
        if isinstance(existing, dict):
            # Most values are JSON leaves: no abstract-class check for them (this runs for every field written).
            leaf = type(value) in LEAF_TYPES
            if not leaf and isinstance(value, Mapping) and _kind(existing) in ("object", "nested"):
                if not maps_every_field(existing, value):
                    return False
            continue
        if value is None or (isinstance(value, list) and all(v is None for v in value)):
            continue  # nothing to map
        return False
    return True


def _add_fields(node: dict[str, Any], source: Mapping[str, Any], dynamic: str, prefix: str, within: str) -> bool:
    changed = False
    for raw_name, value in source.items():
        # A dotted name is a path of objects: {"a.b": 1} maps like {"a": {"b": 1}}.
        name, _, rest = raw_name.partition(".")
        if rest:
            value = {rest: value}
        path = f"{prefix}{name}"
        props = node.get("properties")
        existing = props.get(name) if isinstance(props, dict) else None
        if isinstance(existing, dict):
            if isinstance(value, Mapping) and _kind(existing) in ("object", "nested"):
                own = str(existing.get("dynamic", dynamic)).lower()
                changed |= _add_fields(existing, value, own, f"{path}.", path)
            continue
        spec = _field_for(value, dynamic, path)
        if spec is None:
            continue
        if dynamic == "strict":
            raise StrictDynamicMapping(name, within)
        if dynamic != "true":
            continue
        node.setdefault("properties", {})[name] = spec
        changed = True
    return changed


def _field_for(value: Any, dynamic: str, path: str) -> dict[str, Any] | None:
    """The mapping Elasticsearch gives a new field holding ``value``; None for null and empty arrays."""
    if isinstance(value, list):
        present = [v for v in value if v is not None]
        return _field_for(present[0], dynamic, path) if present else None
    if value is None:
        return None
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "long"}
    if isinstance(value, float):
        return {"type": "float"}
    if isinstance(value, str):
        if _DATE.match(value):
            return {"type": "date"}
        return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    if isinstance(value, Mapping):
        obj: dict[str, Any] = {}
        _add_fields(obj, value, dynamic if dynamic == "true" else "true", f"{path}.", path)
        return obj if obj else {"type": "object"}
    return None
