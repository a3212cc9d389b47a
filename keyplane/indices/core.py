"""The rules of indices and their documents, as Elasticsearch applies them.

Errors carry the index they concern (its name and uuid), because Elasticsearch's error for a
document names them; the REST layer renders them.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from keyplane.documents import deep_copy, deep_merge
from keyplane.errors import InvalidArgument, KeyplaneError

Source = dict[str, Any]

MAX_NAME_BYTES = 255
MAX_ID_BYTES = 512
PRIMARY_TERM = 1  # one primary that never fails over
INDEX_VERSION_CREATED = "9033000"  # the index version of Elasticsearch 9.1
# Elasticsearch prints its set of forbidden characters in its hash order, so the message is fixed.
_FORBIDDEN = frozenset('\\/*?"<>| ,')
_FORBIDDEN_TEXT = '[ , ", *, \\, <, |, ,, >, /, ?]'


# -- errors ------------------------------------------------------------------------------------------


class IndexFailure(KeyplaneError):
    """A failure about one index; ``uuid`` is ``_na_`` when the index does not exist."""

    def __init__(self, message: str, index: str, uuid: str = "_na_") -> None:
        super().__init__(message)
        self.index = index
        self.uuid = uuid


class InvalidIndexName(IndexFailure):
    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"Invalid index name [{name}], {why}", name)


class IndexMissing(IndexFailure):
    def __init__(self, name: str) -> None:
        super().__init__(f"no such index [{name}]", name)


class IndexExists(IndexFailure):
    def __init__(self, name: str, uuid: str) -> None:
        super().__init__(f"index [{name}/{uuid}] already exists", name, uuid)


class VersionConflict(IndexFailure):
    """A write whose expectations the stored document does not meet (409)."""


class DocMissing(IndexFailure):
    """An update of a document that does not exist (404 document_missing_exception)."""


class MappingFailure(KeyplaneError):
    """A mapping Elasticsearch's mapper refuses (mapper_parsing_exception); ``cause`` is the inner reason."""

    def __init__(self, message: str, cause: str | None = None) -> None:
        super().__init__(message)
        self.cause = cause


# -- index names -------------------------------------------------------------------------------------


def name_problem(name: str) -> str | None:
    """Why Elasticsearch refuses ``name`` for a new index, or None (the checks in its order)."""
    if not name:
        return "must not be empty"
    if any(ch in _FORBIDDEN for ch in name):
        return f"must not contain the following characters {_FORBIDDEN_TEXT}"
    if "#" in name:
        return "must not contain '#'"
    if ":" in name:
        return "must not contain ':'"
    if name[0] in "_-+":
        return "must not start with '_', '-', or '+'"
    size = len(name.encode())
    if size > MAX_NAME_BYTES:
        return f"index name is too long, ({size} > {MAX_NAME_BYTES})"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if name.lower() != name:
        return "must be lowercase"
    return None


def check_settings(flat: Mapping[str, Any]) -> None:
    """Refuse the settings Elasticsearch 9 refuses at creation (flat ``index.*`` keys)."""
    if str(flat.get("index.soft_deletes.enabled", "true")).lower() == "false":
        raise InvalidArgument(
            "Creating indices with soft-deletes disabled is no longer supported. "
            "Please do not specify a value for setting [index.soft_deletes.enabled]."
        )


def check_name(name: str) -> None:
    problem = name_problem(name)
    if problem is not None:
        raise InvalidIndexName(name, problem)


def id_problem(doc_id: str) -> str | None:
    size = len(doc_id.encode())
    if size > MAX_ID_BYTES:
        return f"id [{doc_id}] is too long, must be no longer than {MAX_ID_BYTES} bytes but was: {size}"
    return None


# -- index metadata ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexMeta:
    """An index as created: settings flat (``index.number_of_replicas`` -> ``"0"``), mappings and aliases as given."""

    name: str
    uuid: str
    created_ms: int
    settings: dict[str, Any] = field(default_factory=dict)
    mappings: dict[str, Any] = field(default_factory=dict)
    aliases: dict[str, Any] = field(default_factory=dict)

    def all_settings(self) -> dict[str, Any]:
        """The flat settings Elasticsearch reports: its defaults, then what the creator set."""
        flat: dict[str, Any] = {
            "index.routing.allocation.include._tier_preference": "data_content",
            "index.number_of_shards": "1",
            "index.provided_name": self.name,
            "index.creation_date": str(self.created_ms),
            "index.number_of_replicas": "1",
            "index.uuid": self.uuid,
            "index.version.created": INDEX_VERSION_CREATED,
        }
        flat.update(self.settings)
        return flat

    # Read from the settings and their default directly, not from ``all_settings``, once per metadata
    # (its settings never change in place; a change is a new IndexMeta): every write's answer (each
    # bulk item's) asks for the replicas.
    @functools.cached_property
    def replicas(self) -> int:
        try:
            return int(self.settings.get("index.number_of_replicas", "1"))
        except ValueError:
            return 1

    @property
    def shards(self) -> int:
        try:
            return max(1, int(self.settings.get("index.number_of_shards", "1")))
        except ValueError:
            return 1

    @property
    def hidden(self) -> bool:
        return str(self.settings.get("index.hidden", "false")).lower() == "true"


def _setting_text(value: Any) -> Any:
    """Settings are strings in Elasticsearch, lists of strings included."""
    if isinstance(value, list):
        return [_setting_text(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return None
    return str(value)


def flat_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Nested or dotted settings as flat ``index.*`` keys with string values."""
    flat: dict[str, Any] = {}
    pending: list[tuple[str, Mapping[str, Any]]] = [("", settings)]
    while pending:
        prefix, node = pending.pop(0)
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, Mapping):
                pending.append((name + ".", value))
            else:
                flat[name] = _setting_text(value)
    return {(k if k.startswith("index.") else f"index.{k}"): v for k, v in flat.items()}


def nested_settings(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Flat settings as the nested objects Elasticsearch prints by default."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # a value and an object under one name: keep the flat key
                node[key] = value
                break
            node = child
        else:
            node[parts[-1]] = value
    return out


# Field types Elasticsearch's mapper knows (without plugins); any other is refused at creation.
FIELD_TYPES = frozenset(
    "aggregate_metric_double alias binary boolean byte completion constant_keyword counted_keyword date "
    "date_nanos date_range dense_vector double double_range flattened float float_range geo_point geo_shape "
    "half_float histogram integer integer_range ip ip_range join keyword long long_range match_only_text "
    "nested object passthrough percolator point rank_feature rank_features rank_vectors scaled_float "
    "search_as_you_type semantic_text shape short sparse_vector text token_count unsigned_long version "
    "wildcard".split()
)


def check_mappings(mappings: Mapping[str, Any]) -> None:
    """Refuse what Elasticsearch's mapper refuses at creation: unknown types and empty field names."""
    for section, what in (("properties", "field"), ("runtime", "runtime field")):
        pending: list[Any] = [mappings.get(section)]
        while pending:
            props = pending.pop()
            if not isinstance(props, Mapping):
                continue
            for name, spec in props.items():
                if name == "":
                    reason = "field name cannot be an empty string"
                    raise MappingFailure(f"Failed to parse mapping: {reason}", reason)
                if not isinstance(spec, Mapping):
                    continue
                kind = spec.get("type")
                if isinstance(kind, str) and kind not in FIELD_TYPES:
                    raise MappingFailure(
                        f"Failed to parse mapping: The mapper type [{kind}] declared on {what} [{name}] does not "
                        "exist. It might have been created within a future version or requires a plugin to be "
                        "installed. Check the documentation."
                    )
                pending += [spec.get("properties"), spec.get("fields")]


def matches(pattern: str, name: str) -> bool:
    """Whether an index expression (``*`` wildcards, ``_all``) names ``name``."""
    return pattern in ("_all", "*") or fnmatch.fnmatchcase(name, pattern)


# -- documents ---------------------------------------------------------------------------------------


# Slots, and not frozen: a bulk request builds one or more per document, and a frozen dataclass costs
# about three times as much to build (each field set through ``object.__setattr__``); nothing changes
# one once built (and none is hashed: it holds dicts).
@dataclass(slots=True)
class StoredDoc:
    """A document as stored, with the numbers a conditional write compares."""

    id: str
    source: Source
    seq_no: int
    version: int
    primary_term: int = PRIMARY_TERM


OpType = Literal["index", "create"]


@dataclass(frozen=True)
class Condition:
    """``if_seq_no``/``if_primary_term`` of a request (both or neither)."""

    seq_no: int
    primary_term: int


def condition_problem(if_seq_no: int | None, if_primary_term: int | None) -> str | None:
    """The validation message for a half-given condition, as Elasticsearch words it."""
    if if_seq_no is not None and if_seq_no < 0:
        return f"sequence number must be non negative. got [{if_seq_no}]."
    if if_primary_term is not None and if_primary_term < 0:
        return f"primary term must be non negative. got [{if_primary_term}]."
    if if_seq_no is not None and not if_primary_term:
        return "ifSeqNo is set, but primary term is [0]"
    if if_seq_no is None and if_primary_term:
        return f"ifSeqNo is unassigned, but primary term is [{if_primary_term}]"
    return None


def check_write(index: IndexMeta, doc_id: str, current: StoredDoc | None, op: OpType, cond: Condition | None) -> None:
    """Refuse a write the stored document does not allow, with Elasticsearch's conflict message."""
    if op == "create" and current is not None:
        raise VersionConflict(
            f"[{doc_id}]: version conflict, document already exists (current version [{current.version}])",
            index.name,
            index.uuid,
        )
    if cond is not None:
        check_condition(index, doc_id, current, cond)


def check_condition(index: IndexMeta, doc_id: str, current: StoredDoc | None, cond: Condition) -> None:
    if current is not None and current.seq_no == cond.seq_no and current.primary_term == cond.primary_term:
        return
    required = f"required seqNo [{cond.seq_no}], primary term [{cond.primary_term}]."
    found = (
        "but no document was found"
        if current is None
        else f"current document has seqNo [{current.seq_no}] and primary term [{current.primary_term}]"
    )
    raise VersionConflict(f"[{doc_id}]: version conflict, {required} {found}", index.name, index.uuid)


def next_version(current: StoredDoc | None) -> int:
    return 1 if current is None else current.version + 1


@dataclass(frozen=True)
class UpdateSpec:
    """An update request's body: a partial document, an upsert, and how they apply."""

    doc: Source | None = None
    upsert: Source | None = None
    doc_as_upsert: bool = False
    detect_noop: bool = True


UpdateResult = Literal["created", "updated", "noop"]


def apply_update(
    index: IndexMeta, doc_id: str, current: StoredDoc | None, spec: UpdateSpec
) -> tuple[UpdateResult, Source]:
    """What an update writes: the upsert when the document is missing, else the merged document.

    A merge that changes nothing is a noop when ``detect_noop`` (the default)."""
    if current is None:
        if spec.doc_as_upsert and spec.doc is not None:
            return "created", deep_copy(spec.doc)
        if spec.upsert is not None:
            return "created", deep_copy(spec.upsert)
        raise DocMissing(f"[{doc_id}]: document missing", index.name, index.uuid)
    merged: Source = deep_copy(current.source)
    deep_merge(merged, spec.doc or {})
    if spec.detect_noop and merged == current.source:
        return "noop", current.source
    return "updated", merged


# -- index expressions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expand:
    """How a request's index expressions resolve: ``ignore_unavailable``, ``allow_no_indices``,
    ``expand_wildcards``."""

    ignore_unavailable: bool = False
    allow_no_indices: bool = True
    wildcards: frozenset[str] = frozenset({"open"})
    # False for the APIs that act on concrete indices only (delete index): an alias named outright is an
    # error, and wildcards do not match aliases.
    aliases: bool = True


def check_destructive(expressions: list[str], requires_name: bool) -> None:
    """With ``action.destructive_requires_name`` (the default), a delete names its indices: no wildcard, no ``_all``."""
    if requires_name and any("*" in n or n == "_all" for n in expressions):
        raise InvalidArgument("Wildcard expressions or all indices are not allowed")


def alias_named(name: str) -> InvalidArgument:
    return InvalidArgument(
        f"The provided expression [{name}] matches an alias, specify the corresponding concrete indices instead."
    )


def resolve(
    expressions: list[str], existing: list[IndexMeta], expand: Expand, visible: Callable[[str], bool]
) -> list[IndexMeta]:
    """The indices a list of expressions names. Wildcards expand over the indices the caller may see
    (``visible``), hidden ones only when asked, and over aliases unless ``expand.aliases`` is off; an alias
    names its indices; a missing concrete name is an error unless ignored."""
    by_name = {m.name: m for m in existing}
    by_alias: dict[str, list[IndexMeta]] = {}
    for meta in existing:
        for alias in meta.aliases:
            by_alias.setdefault(alias, []).append(meta)
    found: dict[str, IndexMeta] = {}
    wildcards = [e for e in expressions if "*" in e or e == "_all"] or ([] if expressions else ["_all"])
    for expression in expressions or ["_all"]:
        if expression in wildcards:
            matched = [] if expand.wildcards <= {"none"} else _expand(expression, existing, expand, visible)
            if not matched and not expand.allow_no_indices:
                raise IndexMissing(expression)  # each wildcard must match something, as in Elasticsearch
            for meta in matched:
                found.setdefault(meta.name, meta)
        elif expression in by_name:
            found.setdefault(expression, by_name[expression])
        elif expression in by_alias and expand.aliases:
            for meta in by_alias[expression]:
                found.setdefault(meta.name, meta)
        elif expand.ignore_unavailable:
            continue
        elif expression in by_alias:
            raise alias_named(expression)
        else:
            raise IndexMissing(expression)
    return list(found.values())


def _expand(
    expression: str, existing: list[IndexMeta], expand: Expand, visible: Callable[[str], bool]
) -> list[IndexMeta]:
    show_hidden = bool(expand.wildcards & {"hidden", "all"})
    out = []
    for meta in existing:
        if not visible(meta.name) or (meta.hidden and not show_hidden):
            continue
        via_alias = expand.aliases and expression != "_all" and any(matches(expression, a) for a in meta.aliases)
        if matches(expression, meta.name) or via_alias:
            out.append(meta)
    return out
