"""Aggregations: the typed requests the parser builds, and the typed results storage returns.

A request keeps the options it was sent (``options``) and converts the ones that may fail (sizes,
orders, range bounds) only when it runs: the API-key query skips aggregations when nothing matches,
and such a request has always answered without reading them. Results carry values, not wire
shapes; ``keyplane.api.aggregations`` renders them as Elasticsearch's JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, ClassVar

from keyplane.query.dates import parse_date
from keyplane.query.fields import Field, FieldType
from keyplane.query.tree import Query

# -- requests -----------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Agg:
    kind: ClassVar[str]
    name: str
    options: Mapping[str, Any]  # the aggregation's body as sent
    subs: list[Agg] = dataclass_field(default_factory=list)


@dataclass(kw_only=True)
class FieldAgg(Agg):
    field: Field


@dataclass(kw_only=True)
class TermsAgg(FieldAgg):
    kind = "terms"

    @property
    def size(self) -> int:
        return int(self.options.get("size", 10))

    @property
    def order(self) -> tuple[str, str]:
        """What buckets sort by (``_count`` or ``_key``) and in which direction."""
        order = self.options.get("order", {"_count": "desc"})
        order = order if isinstance(order, dict) else order[0]
        by, direction = next(iter(order.items())) if order else ("_count", "desc")
        return str(by), str(direction)


@dataclass
class RangeSpec:
    """One bucket of a range aggregation: ``low <= value < high``, either bound open when None."""

    key: Any  # the bucket's key, when the request names it
    low: Any
    high: Any
    named: bool = False  # whether the request gave a key (possibly null)


@dataclass(kw_only=True)
class RangeAgg(FieldAgg):
    kind = "range"

    @property
    def dates(self) -> bool:
        """Whether bounds are dates (a date_range, or a range over a date field)."""
        return self.field.type is FieldType.DATE

    @property
    def keyed(self) -> bool:
        return bool(self.options.get("keyed", False))

    def ranges(self) -> list[RangeSpec]:
        out = []
        for spec in self.options.get("ranges", []):
            low, high = spec.get("from"), spec.get("to")
            if self.dates:
                low = parse_date(low) if low is not None else None
                high = parse_date(high) if high is not None else None
            out.append(RangeSpec(spec.get("key"), low, high, "key" in spec))
        return out


@dataclass(kw_only=True)
class DateRangeAgg(RangeAgg):
    kind = "date_range"

    @property
    def dates(self) -> bool:
        return True


@dataclass(kw_only=True)
class MissingAgg(FieldAgg):
    kind = "missing"


@dataclass(kw_only=True)
class CardinalityAgg(FieldAgg):
    kind = "cardinality"


@dataclass(kw_only=True)
class ValueCountAgg(FieldAgg):
    kind = "value_count"


@dataclass(kw_only=True)
class FilterAgg(Agg):
    kind = "filter"
    query: Query


@dataclass(kw_only=True)
class FiltersAgg(Agg):
    kind = "filters"
    filters: list[tuple[str, Query]]
    keyed: bool = False  # filters given by name (an object), not as a list


@dataclass
class CompositeSource:
    """One ``terms`` source of a composite aggregation; documents without a value are skipped
    unless ``missing_bucket`` (their bucket sorts first ascending, last descending)."""

    name: str
    field: Field
    missing_bucket: bool = False
    descending: bool = False


@dataclass(kw_only=True)
class CompositeAgg(Agg):
    kind = "composite"
    sources: list[CompositeSource]

    @property
    def size(self) -> int:
        return int(self.options.get("size", 10))

    @property
    def after(self) -> dict[str, Any] | None:
        after = self.options.get("after")
        return after if isinstance(after, dict) else None


# -- results ------------------------------------------------------------------------------------------


@dataclass
class Bucket:
    """A bucket of a terms or composite aggregation (a composite's key is a dict of source values)."""

    key: Any
    doc_count: int
    subs: dict[str, AggResult] = dataclass_field(default_factory=dict)


@dataclass
class TermsResult:
    buckets: list[Bucket]
    sum_other_doc_count: int


@dataclass
class CompositeResult:
    buckets: list[Bucket]
    after_key: dict[str, Any] | None  # the last bucket's key: where the next page starts


@dataclass
class RangeBucket:
    spec: RangeSpec
    doc_count: int
    subs: dict[str, AggResult] = dataclass_field(default_factory=dict)


@dataclass
class RangeResult:
    buckets: list[RangeBucket]


@dataclass
class SingleBucket:
    """The one bucket of a filter or missing aggregation."""

    doc_count: int
    subs: dict[str, AggResult] = dataclass_field(default_factory=dict)


@dataclass
class FiltersResult:
    buckets: list[tuple[str, SingleBucket]]


@dataclass
class ValueResult:
    """A metric: cardinality, value_count."""

    value: int


AggResult = TermsResult | CompositeResult | RangeResult | SingleBucket | FiltersResult | ValueResult
