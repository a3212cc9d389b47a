"""The bulk and multi-get requests: their bodies read into items, with Elasticsearch's rules and messages.

A bulk body is newline-delimited JSON: an action line (``index``, ``create``, ``update`` or
``delete`` with its metadata), then a source line for every action but ``delete``. A malformed
action line refuses the whole request, as Elasticsearch's parser does; an item Elasticsearch
would accept and then fail (a missing index, a conflict, a missing pipeline) fails alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from keyplane.errors import InvalidArgument, KeyplaneError, ValidationError
from keyplane.indices import core
from keyplane.indices.core import Condition, UpdateSpec
from keyplane.json_kinds import token_kind
from keyplane.source_filtering import SourceFilter, source_filter

Action = Literal["index", "create", "update", "delete"]
ACTIONS: tuple[Action, ...] = ("index", "create", "update", "delete")

_METADATA = frozenset(
    {
        "_index",
        "_id",
        "routing",
        "op_type",
        "version",
        "version_type",
        "if_seq_no",
        "if_primary_term",
        "retry_on_conflict",
        "pipeline",
        "_source",
        "require_alias",
        "require_data_stream",
        "list_executed_pipelines",
        "dynamic_templates",
    }
)
_UPDATE_FIELDS = frozenset({"doc", "upsert", "doc_as_upsert", "detect_noop", "_source", "scripted_upsert"})


class MalformedBody(InvalidArgument):
    """A bulk body Elasticsearch's parser refuses as a whole (400 illegal_argument_exception)."""


class BadUpdateLine(KeyplaneError):
    """An update line the UpdateRequest parser refuses (400 x_content_parse_exception)."""


class ItemFailure(KeyplaneError):
    """One item refused on its own (400 illegal_argument_exception in its place of the answer)."""


# Slots, and not frozen: a bulk request builds one per document, and a frozen dataclass costs several
# times as much to build (each field set through ``object.__setattr__``); nothing changes one once built.
@dataclass(slots=True)
class BulkItem:
    action: Action
    index: str | None
    id: str | None
    cond: Condition | None = None
    source: Any = None  # index and create: the document line as decoded (an object when valid)
    update: UpdateSpec | None = None
    pipeline: str | None = None
    require_alias: bool = False
    shown: SourceFilter | None = None  # update: how its answer shows the updated document (``get``), if asked


def _line_value(raw: bytes, line: int) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"Malformed action/metadata line [{line}], {exc.msg}") from None


def _text(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(value: Any, line: int, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise MalformedBody(f"Malformed action/metadata line [{line}], [{name}] must be a number") from None


def _flag(value: Any) -> bool:
    return value is True or value == "true"


def _update_spec(data: Any) -> UpdateSpec:
    if not isinstance(data, dict):
        raise BadUpdateLine(f"[1:1] [UpdateRequest] expected an object but found [{token_kind(data)}]")
    for key in data:
        if key not in _UPDATE_FIELDS:
            raise BadUpdateLine(f"[1:2] [UpdateRequest] unknown field [{key}]")
    doc, upsert = data.get("doc"), data.get("upsert")
    for name, value in (("doc", doc), ("upsert", upsert)):
        if value is not None and not isinstance(value, dict):
            raise BadUpdateLine(f"[1:2] [UpdateRequest] failed to parse field [{name}]")
    detect = data.get("detect_noop", True)
    return UpdateSpec(doc, upsert, _flag(data.get("doc_as_upsert", False)), _flag(detect) or detect is None)


def _split_lines(body: bytes) -> list[bytes]:
    """The body's lines; the last must end with a newline, as Elasticsearch requires."""
    if body and not body.endswith(b"\n") and body.strip():
        raise MalformedBody("The bulk request must be terminated by a newline [\\n]")
    lines = body.split(b"\n")
    lines.pop()
    if b"\r" not in body:
        return lines
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def parse_bulk(
    body: bytes,
    default_index: str | None,
    default_pipeline: str | None,
    *,
    require_alias: bool = False,
    shown: SourceFilter | None = None,
) -> list[BulkItem]:
    """The items of a bulk body, or the error Elasticsearch gives for the whole request. ``require_alias``
    and ``shown`` (the ``_source`` parameters) are the request's defaults, which an item's own overrides."""
    lines = _split_lines(body)
    items: list[BulkItem] = []
    problems: list[str] = []
    pos = 0
    while pos < len(lines):
        number, raw = pos + 1, lines[pos]
        pos += 1
        if not raw.strip():
            continue
        head = _line_value(raw, number)
        if not isinstance(head, dict):
            raise MalformedBody(
                f"Malformed action/metadata line [{number}], expected START_OBJECT but found [{token_kind(head)}]"
            )
        if not head:
            raise MalformedBody(
                f"Malformed action/metadata line [{number}], expected FIELD_NAME but found [END_OBJECT]"
            )
        action, meta = next(iter(head.items()))
        if action not in ACTIONS:
            raise MalformedBody(
                f"Malformed action/metadata line [{number}], expected field [create], [delete], [index] or [update] "
                f"but found [{action}]"
            )
        if not isinstance(meta, dict):
            raise MalformedBody(
                f"Malformed action/metadata line [{number}], expected START_OBJECT or END_OBJECT but found "
                f"[{token_kind(meta)}]"
            )
        for key, value in meta.items():
            if key not in _METADATA:
                raise MalformedBody(f"Action/metadata line [{number}] contains an unknown parameter [{key}]")
            if isinstance(value, list) or (isinstance(value, dict) and key != "_source"):
                raise MalformedBody(
                    f"Malformed action/metadata line [{number}], expected a simple value for field [{key}] but "
                    f"found [{token_kind(value)}]"
                )
        if len(head) > 1:
            raise MalformedBody(
                f"Malformed action/metadata line [{number}], expected END_OBJECT but found [FIELD_NAME]"
            )
        get = meta.get
        raw_index, raw_id, raw_seq_no, raw_term = get("_index"), get("_id"), get("if_seq_no"), get("if_primary_term")
        # Strings as they usually are, without a call each (this runs for every document).
        index = raw_index if type(raw_index) is str else _text(raw_index) if raw_index is not None else default_index
        doc_id = raw_id if type(raw_id) is str else _text(raw_id) if raw_id is not None else None
        seq_no = _number(raw_seq_no, number, "if_seq_no") if raw_seq_no is not None else None
        term = _number(raw_term, number, "if_primary_term") if raw_term is not None else None
        cond = None
        if seq_no is not None or term is not None:
            problem = core.condition_problem(seq_no, term)
            if problem is not None:
                problems.append(problem)
            cond = Condition(seq_no, term or 0) if seq_no is not None and problem is None else None
        pipeline = _text(get("pipeline")) if get("pipeline") is not None else default_pipeline
        kind: Action = action
        if kind == "index" and meta.get("op_type") == "create":
            kind = "create"
        if index is None:
            problems.append("index is missing")
        if doc_id is not None and len(doc_id) > _ID_CHARS and (id_problem := core.id_problem(doc_id)) is not None:
            problems.append(id_problem)
        if kind == "delete":
            if doc_id is None:
                problems.append("id is missing")
            items.append(BulkItem("delete", index, doc_id, cond))
            continue
        if pos >= len(lines):
            break  # an action without its source line is dropped, as Elasticsearch's parser does
        source_raw = lines[pos]
        pos += 1
        if kind == "update":
            if "version" in meta or "version_type" in meta:
                raise MalformedBody(
                    "Update requests do not support versioning. Please use `if_seq_no` and `if_primary_term` instead"
                )
            try:
                data = orjson.loads(source_raw)
            except orjson.JSONDecodeError as exc:
                raise BadUpdateLine(f"[1:1] Unexpected character or malformed JSON: {exc.msg}") from None
            spec = _update_spec(data)
            if doc_id is None:
                problems.append("id is missing")
            if spec.doc is None:
                problems.append("script or doc is missing")
            item_source = meta.get("_source", data.get("_source") if isinstance(data, dict) else None)
            items.append(
                BulkItem(
                    "update",
                    index,
                    doc_id,
                    cond,
                    update=spec,
                    pipeline=pipeline,
                    require_alias=_flag(meta.get("require_alias", require_alias)),
                    shown=source_filter(item_source) if item_source is not None else shown,
                )
            )
            continue
        if kind == "create" and cond is not None:
            problems.append("create operations do not support compare and set. use index instead")
        try:
            source = orjson.loads(source_raw)
        except orjson.JSONDecodeError as exc:
            source = _Unparsable(exc.msg)
        alias = _flag(meta["require_alias"]) if "require_alias" in meta else require_alias
        items.append(BulkItem(kind, index, doc_id, cond, source, None, pipeline, alias))
    if problems:
        raise ValidationError(*problems)
    if not items:
        raise ValidationError("no requests added")
    return items


# Ids of at most this many characters are within MAX_ID_BYTES whatever they hold (4 bytes a character at most).
_ID_CHARS = core.MAX_ID_BYTES // 4


class _Unparsable:
    """A document line that is not JSON: the item fails when it is indexed, not the request."""

    def __init__(self, message: str) -> None:
        self.message = message


def document_problem(source: Any) -> str | None:
    """Why a document line cannot be indexed (Elasticsearch's document_parsing_exception), or None."""
    if isinstance(source, _Unparsable):
        return f"[1:1] failed to parse: {source.message}"
    if not isinstance(source, dict):
        return "[1:1] failed to parse: Root value must be an object"
    return None


# -- multi-get ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GetItem:
    index: str | None
    id: str
    # None: the request's source filtering; False: no source; else includes and excludes.
    source: tuple[list[str], list[str]] | bool | None = None


def _patterns(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _source_filter(value: Any) -> tuple[list[str], list[str]] | bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return [value], []
    if isinstance(value, list):
        return [str(v) for v in value], []
    if isinstance(value, dict):
        inc, exc = value.get("includes", value.get("include")), value.get("excludes", value.get("exclude"))
        return _patterns(inc), _patterns(exc)
    raise InvalidArgument(f"Expected one of [TRUE, FALSE, VALUE_STRING, START_ARRAY, START_OBJECT] but found [{value}]")


def parse_mget(body: Any, default_index: str | None) -> list[GetItem]:
    if not isinstance(body, dict):
        raise InvalidArgument("unexpected token while parsing mget request")
    for key in body:
        if key not in ("docs", "ids"):
            raise InvalidArgument(f"Unknown key for a START_ARRAY in [{key}].")
    items: list[GetItem] = []
    problems: list[str] = []
    for doc in body.get("docs") or []:
        if not isinstance(doc, dict):
            raise InvalidArgument("docs array element should include an object")
        index = doc.get("_index", default_index)
        doc_id = doc.get("_id")
        if doc_id is None:
            problems.append("id is missing")
            continue
        if index is None:
            problems.append("index is missing")
        items.append(
            GetItem(_text(index) if index is not None else None, _text(doc_id), _source_filter(doc.get("_source")))
        )
    for doc_id in body.get("ids") or []:
        if default_index is None:
            raise InvalidArgument("ids can only be used with an index in the path")
        items.append(GetItem(default_index, _text(doc_id)))
    if problems:
        raise ValidationError(*problems)
    if not items:
        raise ValidationError("no documents to get")
    return items
