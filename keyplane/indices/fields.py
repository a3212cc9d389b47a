"""An index's fields as the query engine sees them: mapped fields by their type, every other name
as Elasticsearch's dynamic mapping would have made it (a string is text with a ``.keyword`` subfield)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keyplane.errors import KeyplaneError
from keyplane.query import memory
from keyplane.query.dates import format_date, parse_date
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


def _mapped(mappings: Mapping[str, Any], declared: dict[str, str] | None = None) -> dict[str, FieldType]:
    """Dotted field name -> type, for every field the mappings declare (object fields recurse); the
    mapping's own type names and formats go to ``declared`` (``name`` and ``name#format``)."""
    found: dict[str, FieldType] = {}
    declared = {} if declared is None else declared
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
                declared[path] = kind
                if isinstance(spec.get("format"), str):
                    declared[path + "#format"] = spec["format"]
            subfields = spec.get("fields")
            if isinstance(subfields, Mapping):
                for sub, sub_spec in subfields.items():
                    if isinstance(sub_spec, Mapping) and isinstance(sub_spec.get("type"), str):
                        # A multi-field reads the same value as its parent, indexed its own way.
                        found[f"{path}.{sub}"] = _TYPES.get(sub_spec["type"], FieldType.KEYWORD)
                        declared[f"{path}.{sub}"] = sub_spec["type"]
    return found


class IndexFields:
    """The query engine's ``Fields`` over one index: the field's ``name`` is the path read from ``_source``."""

    def __init__(self, mappings: Mapping[str, Any]) -> None:
        self._declared: dict[str, str] = {}
        self._types = _mapped(mappings, self._declared)
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

    def declared(self, name: str) -> str | None:
        """The type the mappings give ``name`` (``date``, ``long``, ``keyword``...), None when unmapped."""
        return self._declared.get(name)

    def date_format(self, name: str) -> str | None:
        """The ``format`` the mappings give a date field, None for Elasticsearch's default."""
        return self._declared.get(name + "#format")

    def values(self, source: Mapping[str, Any], name: str, fmt: str | None = None) -> list[Any] | None:
        """A field's values as doc values give them (``docvalue_fields``, ``fields``), derived from
        ``_source``: keywords as strings, numbers as numbers, dates as formatted strings; ``fmt`` is the
        request's format (a decimal pattern for numbers). None when the document has no value."""
        field = self.resolve(name)
        if field is None:
            return None
        found = [v for v in memory.values(dict(source), field.name) if v is not None and not isinstance(v, dict)]
        flat: list[Any] = []
        for value in found:
            flat += value if isinstance(value, list) else [value]
        if not flat:
            return None
        kind = self.declared(name) or _dynamic_kind(name, flat[0])
        out = [_doc_value(value, kind, fmt) for value in flat]
        return sorted(out, key=lambda v: (isinstance(v, str), v))  # doc values come sorted


def _dynamic_kind(name: str, value: Any) -> str:
    """The type dynamic mapping gives a value (strings: text, with ``.keyword`` for their keyword view)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "float"
    return "keyword" if name.endswith(".keyword") else "text"


def _doc_value(value: Any, kind: str, fmt: str | None) -> Any:
    if kind in ("date", "date_nanos"):
        try:
            return format_date(parse_date(value))
        except KeyplaneError:
            return value
    if kind in NUMERIC and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            number: float | int = float(value) if kind in FLOATING or "." in str(value) else int(value)
        except ValueError:
            return value
        return decimal_format(number, fmt) if fmt else number
    if kind == "boolean":
        return value is True or value == "true"
    return memory.keyword(value)


NUMERIC = frozenset({"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float"})
FLOATING = frozenset({"double", "float", "half_float", "scaled_float"})


def decimal_format(number: float | int, pattern: str) -> str:
    """A number through a Java ``DecimalFormat`` pattern's fraction part (``#.0`` -> ``1.0``, ``0.00``)."""
    _, dot, fraction = pattern.partition(".")
    if not dot:
        return str(round(number))
    most = len(fraction.rstrip("%"))
    least = fraction.count("0")
    text = f"{number:.{most}f}"
    whole, _, digits = text.partition(".")
    digits = digits.rstrip("0")
    digits += "0" * max(0, least - len(digits))
    return f"{whole}.{digits}" if digits else whole
