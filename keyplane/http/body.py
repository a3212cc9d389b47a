"""Request bodies: JSON decoding and typed field access with Elasticsearch's parser messages."""

from __future__ import annotations

from typing import Any

import orjson

from keyplane.http.errors import EsError, parse_error, x_content_parse
from keyplane.json_kinds import token_kind
from keyplane.jsontext import TooDeep, check_depth, scan_depth

MAX_BODY_BYTES = 100 * 1024 * 1024  # Elasticsearch's default http.max_content_length


def decode(raw: bytes, *, required: bool) -> Any:
    """Decode a JSON body; ``None`` when empty and optional."""
    if not raw or not raw.strip():
        if required:
            raise parse_error("request body is required")
        return None
    try:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            if "depth" in exc.msg or "recursion" in exc.msg:
                scan_depth(raw)  # orjson stops at 1024 levels: report Elasticsearch's limit instead
            line, col = getattr(exc, "lineno", 1), getattr(exc, "colno", 1)
            raise x_content_parse(f"[{line}:{col}] Unexpected character or malformed JSON: {exc.msg}") from None
        # Elasticsearch's parser refuses more than 1000 levels; anything shallower can be stored and rendered.
        check_depth(raw, value)
    except TooDeep as exc:
        raise x_content_parse(f"[{exc.line}:{exc.column}] {exc}") from None
    return value


class Body:
    """A JSON object read by a named parser, as Elasticsearch's ObjectParser reports errors."""

    def __init__(self, data: Any, parser: str, raw: bytes = b"") -> None:
        if not isinstance(data, dict):
            raise parse_error(f"[{parser}] expected an object but found [{token_kind(data)}]")
        self.data: dict[str, Any] = data
        self.parser = parser
        self.raw = raw

    def where(self, field: str) -> str:
        """Line and column of a field in the raw text, as Jackson would report its token."""
        needle = orjson.dumps(field)
        pos = self.raw.find(needle)
        if pos < 0:
            return "[1:2]"
        before = self.raw[:pos]
        line = before.count(b"\n") + 1
        col = pos - (before.rfind(b"\n") + 1) + 1
        return f"[{line}:{col}]"

    def check_fields(self, allowed: set[str] | frozenset[str]) -> None:
        for field in self.data:
            if field not in allowed:
                raise x_content_parse(f"{self.where(field)} [{self.parser}] unknown field [{field}]")

    def failed(self, field: str, cause: str | None = None) -> EsError:
        err = x_content_parse(f"{self.where(field)} [{self.parser}] failed to parse field [{field}]")
        if cause:
            err.root_cause = {"type": "illegal_argument_exception", "reason": cause}
        return err

    def _null(self, field: str) -> EsError:
        return x_content_parse(
            f"{self.where(field)} [{self.parser}] {field} doesn't support values of type: VALUE_NULL"
        )

    def has(self, field: str) -> bool:
        return field in self.data

    def string(self, field: str, *, nullable: bool = False) -> str | None:
        if field not in self.data:
            return None
        value = self.data[field]
        if value is None:
            if nullable:
                return None
            raise self._null(field)
        if isinstance(value, (dict, list)):
            raise self.failed(field)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value) if not isinstance(value, str) else value

    def boolean(self, field: str) -> bool | None:
        if field not in self.data:
            return None
        value = self.data[field]
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value in ("true", "false"):
            return value == "true"
        if value is None:
            raise self._null(field)
        raise self.failed(field)

    def integer(self, field: str) -> int | None:
        if field not in self.data:
            return None
        value = self.data[field]
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise self.failed(field) if value is not None else self._null(field)
        try:
            return int(value)
        except ValueError:
            raise self.failed(field) from None

    def strings(self, field: str) -> list[str] | None:
        """A string or an array of strings (Elasticsearch accepts both for lists)."""
        if field not in self.data:
            return None
        value = self.data[field]
        if value is None:
            raise self._null(field)
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.failed(field)
        return list(value)

    def obj(self, field: str, *, nullable: bool = False) -> dict[str, Any] | None:
        if field not in self.data:
            return None
        value = self.data[field]
        if value is None:
            if nullable:
                return None
            raise self._null(field)
        if not isinstance(value, dict):
            raise self.failed(field)
        return value
