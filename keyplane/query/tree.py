"""The query tree: one dataclass per clause, over resolved fields, and the sort keys.

Values are already in the field's representation (epoch ms for dates, booleans, keyword text)
when the parser validated them; the lenient user and role queries keep values as sent, and the
in-memory evaluator compares them as keywords.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from keyplane.query.fields import Field

RangeOp = Literal["gt", "gte", "lt", "lte"]


@dataclass(frozen=True)
class MatchAll:
    pass


@dataclass(frozen=True)
class MatchNone:
    pass


@dataclass(frozen=True)
class Term:
    field: Field
    value: Any
    case_insensitive: bool = False


@dataclass(frozen=True)
class Terms:
    field: Field
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Prefix:
    field: Field
    value: str
    case_insensitive: bool = False


@dataclass(frozen=True)
class Wildcard:
    """``*`` stands for any text, ``?`` for one character."""

    field: Field
    pattern: str
    case_insensitive: bool = False


@dataclass(frozen=True)
class Exists:
    field: Field


@dataclass(frozen=True)
class Range:
    """Bounds in the order sent; every one must hold."""

    field: Field
    bounds: tuple[tuple[RangeOp, Any], ...]


@dataclass(frozen=True)
class Ids:
    values: tuple[str, ...]


@dataclass(frozen=True)
class Match:
    """Documents whose field holds any (``or``) or all (``and``) of the words of ``text``, ignoring case."""

    field: Field
    text: str
    operator: str = "or"


@dataclass(frozen=True)
class SimpleQueryString:
    """Documents holding any word of ``text`` (``word*``: a word starting so) in ``fields``, or in
    every field of the document when ``fields`` is None (the user and role queries' reading)."""

    text: str
    fields: tuple[Field, ...] | None


@dataclass(frozen=True)
class Bool:
    must: tuple[Query, ...] = ()
    filter: tuple[Query, ...] = ()
    should: tuple[Query, ...] = ()
    must_not: tuple[Query, ...] = ()
    minimum_should_match: int | None = None  # None: Elasticsearch's default, see required_should

    def required_should(self) -> int:
        """How many ``should`` clauses must match: by default one when nothing else is required."""
        if self.minimum_should_match is not None:
            return self.minimum_should_match
        return 1 if self.should and not (self.must or self.filter) else 0


Query = (
    MatchAll | MatchNone | Term | Terms | Prefix | Wildcard | Exists | Range | Ids | Match | SimpleQueryString | Bool
)

MATCH_ALL = MatchAll()


@dataclass(frozen=True)
class SortKey:
    field: Field
    desc: bool = False
    format: str | None = None  # a date field's values are returned formatted when set
