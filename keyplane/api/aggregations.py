"""Aggregation results rendered as Elasticsearch's JSON.

Storage returns typed results (``keyplane.query.aggs``); this is where they take the wire shape:
bucket keys of dates and booleans with their ``key_as_string``, range labels, keyed buckets, and
with ``typed_keys`` each aggregation's name prefixed by its result type (``sterms#owners``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keyplane.query.aggs import (
    Agg,
    AggResult,
    Bucket,
    CompositeResult,
    FieldAgg,
    FiltersAgg,
    FiltersResult,
    RangeAgg,
    RangeResult,
    SingleBucket,
    TermsResult,
    ValueResult,
)
from keyplane.query.dates import format_date
from keyplane.query.fields import Field, FieldType

_NUMERIC = (FieldType.DATE, FieldType.BOOLEAN)  # their terms are longs (``lterms``), shown with key_as_string


def render_aggregations(
    aggs: Sequence[Agg], results: Mapping[str, AggResult], *, typed_keys: bool = False
) -> dict[str, Any]:
    """``{name: result}`` for the requested aggregations, in request order."""
    out: dict[str, Any] = {}
    for agg in aggs:
        body, prefix = _render(agg, results[agg.name], typed_keys)
        out[f"{prefix}#{agg.name}" if typed_keys else agg.name] = body
    return out


def _render(agg: Agg, result: AggResult, typed_keys: bool) -> tuple[dict[str, Any], str]:
    if isinstance(result, TermsResult):
        assert isinstance(agg, FieldAgg)
        buckets = [_term_bucket(agg, bucket, typed_keys) for bucket in result.buckets]
        body = {"doc_count_error_upper_bound": 0, "sum_other_doc_count": result.sum_other_doc_count, "buckets": buckets}
        return body, "lterms" if agg.field.type in _NUMERIC else "sterms"
    if isinstance(result, CompositeResult):
        composite: dict[str, Any] = {}
        if result.after_key is not None:
            composite["after_key"] = result.after_key
        composite["buckets"] = [
            {"key": b.key, "doc_count": b.doc_count, **_subs(agg, b.subs, typed_keys)} for b in result.buckets
        ]
        return composite, "composite"
    if isinstance(result, RangeResult):
        assert isinstance(agg, RangeAgg)
        return _ranges(agg, result, typed_keys), agg.kind
    if isinstance(result, SingleBucket):
        return _single(agg, result, typed_keys), agg.kind
    if isinstance(result, FiltersResult):
        assert isinstance(agg, FiltersAgg)
        named = {name: _single(agg, bucket, typed_keys) for name, bucket in result.buckets}
        return {"buckets": named if agg.keyed else list(named.values())}, "filters"
    assert isinstance(result, ValueResult)
    return {"value": result.value}, agg.kind


def _subs(agg: Agg, subs: Mapping[str, AggResult], typed_keys: bool) -> dict[str, Any]:
    return render_aggregations(agg.subs, subs, typed_keys=typed_keys) if agg.subs else {}


def _single(agg: Agg, bucket: SingleBucket, typed_keys: bool) -> dict[str, Any]:
    return {"doc_count": bucket.doc_count, **_subs(agg, bucket.subs, typed_keys)}


def _term_bucket(agg: FieldAgg, bucket: Bucket, typed_keys: bool) -> dict[str, Any]:
    key = bucket.key
    fields: dict[str, Any]
    if agg.field.type is FieldType.DATE:
        fields = {"key_as_string": format_date(key), "key": key}
    elif agg.field.type is FieldType.BOOLEAN:
        fields = {"key": 1 if key else 0, "key_as_string": "true" if key else "false"}
    else:
        fields = {"key": key}
    return fields | {"doc_count": bucket.doc_count} | _subs(agg, bucket.subs, typed_keys)


def _label(field: Field, value: Any) -> str:
    if value is None:
        return "*"
    return format_date(value) if field.type is FieldType.DATE else str(float(value))


def _ranges(agg: RangeAgg, result: RangeResult, typed_keys: bool) -> dict[str, Any]:
    dates = agg.field.type is FieldType.DATE
    buckets = []
    for bucket in result.buckets:
        spec = bucket.spec
        key = spec.key if spec.named else f"{_label(agg.field, spec.low)}-{_label(agg.field, spec.high)}"
        entry: dict[str, Any] = {"key": key}
        if spec.low is not None:
            entry["from"] = spec.low
            if dates:
                entry["from_as_string"] = format_date(spec.low)
        if spec.high is not None:
            entry["to"] = spec.high
            if dates:
                entry["to_as_string"] = format_date(spec.high)
        entry["doc_count"] = bucket.doc_count
        entry.update(_subs(agg, bucket.subs, typed_keys))
        buckets.append(entry)
    if agg.keyed:
        return {"buckets": {b.pop("key"): b for b in buckets}}
    return {"buckets": buckets}
