"""The fields of an index as its queries see them: names, types, aliases and flattened objects.

A query names fields by their public name; the parser resolves each to a :class:`Field` (its
canonical name, a dotted path in the index's documents, and its type), or refuses it. Evaluators
only see resolved fields: the SQL backend maps canonical names to columns, the in-memory evaluator
reads the dotted path from each document.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol


class FieldType(Enum):
    KEYWORD = "keyword"  # the whole value is one term
    TEXT = "text"  # words: ``match`` looks for them one by one
    DATE = "date"  # epoch milliseconds; queries accept dates and date math
    BOOLEAN = "boolean"
    FLATTENED = "flattened"  # an object whose every leaf is a keyword, queryable as ``field.key.path``
    DOC = "_doc"  # the index order, a sort key only


@dataclass(frozen=True)
class Field:
    """A resolved field. ``parent`` names the flattened field a key path belongs to."""

    name: str
    type: FieldType
    parent: str | None = None

    @property
    def path(self) -> tuple[str, ...]:
        """The keys below the flattened parent (``metadata.a.b`` -> ``("a", "b")``)."""
        if self.parent is None:
            return ()
        return tuple(self.name[len(self.parent) + 1 :].split("."))


DOC = Field("_doc", FieldType.DOC)


class Fields(Protocol):
    """What the parser asks of an index's fields."""

    def resolve(self, name: str) -> Field | None:
        """The field a query may use under ``name``, or None when it may not."""
        ...

    def names(self) -> Sequence[str]:
        """Public names, in declaration order (what a field pattern such as ``na*`` expands over)."""
        ...


class FieldMap:
    """Public name -> field. A flattened field also answers for its key paths (``metadata.env``), as
    keywords; one listed in ``subfields_only`` is queryable by key path only."""

    def __init__(self, fields: Mapping[str, Field], *, subfields_only: frozenset[str] = frozenset()) -> None:
        self._fields = dict(fields)
        self._subfields_only = subfields_only

    @classmethod
    def of(cls, types: Mapping[str, FieldType], *, subfields_only: frozenset[str] = frozenset()) -> FieldMap:
        """A map whose public names are the canonical names."""
        return cls({name: Field(name, kind) for name, kind in types.items()}, subfields_only=subfields_only)

    def names(self) -> Sequence[str]:
        return list(self._fields)

    def resolve(self, name: str) -> Field | None:
        if not isinstance(name, str):
            return None
        field = self._fields.get(name)
        if field is not None:
            return None if name in self._subfields_only else field
        # A key path below a flattened field, which may itself sit at a dotted path.
        dot = name.find(".")
        while dot != -1:
            parent = self._fields.get(name[:dot])
            rest = name[dot + 1 :]
            if parent is not None and parent.type is FieldType.FLATTENED and rest:
                return Field(f"{parent.name}.{rest}", FieldType.KEYWORD, parent.name)
            dot = name.find(".", dot + 1)
        return None

    def field(self, name: str) -> Field:
        """The field behind a public name, for code that builds queries itself."""
        field = self.resolve(name)
        if field is None:
            raise KeyError(name)
        return field


class NamedFields:
    """Fields named by a function: public name -> document field (a keyword), or None when not queryable."""

    def __init__(self, name_of: Callable[[str], str | None]) -> None:
        self.name_of = name_of

    def resolve(self, name: str) -> Field | None:
        if not isinstance(name, str):
            return None
        mapped = self.name_of(name)
        return Field(mapped, FieldType.KEYWORD) if mapped is not None else None

    def names(self) -> Sequence[str]:
        return ()
