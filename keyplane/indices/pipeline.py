"""The ``search-default-ingestion`` pipeline: what it does to a document, as a reader of the result sees it.

Elasticsearch installs this pipeline for search content, and connectors write through it. Its processors,
each run only when the document asks for it with a control field:

- with ``_extract_binary_content: true``: extract the text of the base64 ``_attachment`` (Tika, in the
  attachment processor), copy it to ``body`` (not when empty), remove U+FFFD replacement characters;
- with ``_reduce_whitespace: true``: squash whitespace runs in ``body`` to one space and trim it;
- always: remove the control fields and the attachment.

Keyplane has no Tika. It extracts what needs no parser library: plain text in any of the encodings a
browser would guess first, and the text of HTML. Any other format (PDF, office files, images) is left
without a ``body`` and gets an entry in ``_ingestion_errors``, the field where the pipeline records a
processor's failure, so the gap is visible in the document rather than silent.
"""

from __future__ import annotations

import base64
import binascii
import re
from html.parser import HTMLParser
from typing import Any

from keyplane.errors import InvalidArgument

DEFAULT_INGESTION = "search-default-ingestion"
NO_PIPELINE = "_none"
# The attachment processor's default for indexed_chars.
_DEFAULT_INDEXED_CHARS = 100_000
_META_FIELDS = (
    "_attachment",
    "_attachment_indexed_chars",
    "_extracted_attachment",
    "_extract_binary_content",
    "_reduce_whitespace",
    "_run_ml_inference",
)
_SPACES = re.compile(r"\s+")
# Leading bytes of formats that need a real parser: a few common ones, named in the error.
_BINARY_MAGIC = (
    (b"%PDF", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"\xd0\xcf\x11\xe0", "application/x-tika-msoffice"),
    (b"{\\rtf", "application/rtf"),
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
)
_HTML_START = re.compile(rb"^\s*(<!doctype\s+html|<html|<head|<body)", re.IGNORECASE)


class UnknownPipeline(InvalidArgument):
    """The request names a pipeline that does not exist here (in a bulk, its item fails alone)."""


def check_pipeline(pipeline: str | None) -> None:
    """Only the pipeline Elasticsearch installs out of the box exists here (and ``_none``, no pipeline)."""
    if pipeline is not None and pipeline not in (DEFAULT_INGESTION, NO_PIPELINE):
        raise UnknownPipeline(f"pipeline with id [{pipeline}] does not exist")


def ingest(pipeline: str | None, source: dict[str, Any]) -> dict[str, Any]:
    """The document as the pipeline leaves it; unchanged for no pipeline."""
    if pipeline != DEFAULT_INGESTION:
        return source
    out = dict(source)
    errors: list[str] = []
    if out.get("_extract_binary_content") is True and "_attachment" in out:
        text, problem = _extract(out["_attachment"], _indexed_chars(out.get("_attachment_indexed_chars")))
        if problem is not None:
            errors.append(f"Processor 'attachment' in pipeline '{DEFAULT_INGESTION}' failed with message '{problem}'")
        elif text:
            out["body"] = text
        if isinstance(out.get("body"), str):
            out["body"] = out["body"].replace("\ufffd", "")
    if out.get("_reduce_whitespace") is True and isinstance(out.get("body"), str):
        out["body"] = _SPACES.sub(" ", out["body"]).strip()
    for name in _META_FIELDS:
        out.pop(name, None)
    if errors:
        previous = out.get("_ingestion_errors")
        kept = previous if isinstance(previous, list) else [] if previous is None else [previous]
        out["_ingestion_errors"] = [*kept, *errors]
    return out


def _indexed_chars(value: Any) -> int | None:
    """How many characters to keep: the document's ``_attachment_indexed_chars``, -1 for all."""
    if isinstance(value, int) and not isinstance(value, bool):
        return None if value < 0 else value
    return _DEFAULT_INDEXED_CHARS


def _extract(value: Any, limit: int | None) -> tuple[str, str | None]:
    """The attachment's text, or the reason it has none."""
    if not isinstance(value, str):
        return "", "field [_attachment] of type [" + type(value).__name__ + "] cannot be cast to [java.lang.String]"
    try:
        data = base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        return "", "Illegal base64 character in field [_attachment]"
    for magic, content_type in _BINARY_MAGIC:
        if data.startswith(magic):
            return "", f"Keyplane extracts text from plain-text and HTML attachments only, not [{content_type}]"
    text = _decode(data)
    if text is None:
        return "", "Keyplane extracts text from plain-text and HTML attachments only, not [application/octet-stream]"
    if _HTML_START.match(data[:512]):
        text = _html_text(text)
    text = text.strip()
    return (text if limit is None else text[:limit]), None


def _decode(data: bytes) -> str | None:
    """Text in the encodings Tika tries first for plain text; None when the bytes are not text."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    # Control characters other than whitespace mean binary data, not text.
    controls = sum(1 for ch in text[:4096] if ord(ch) < 32 and ch not in "\t\n\r\f\v")
    return None if controls else text


class _TextOfHtml(HTMLParser):
    """Collects the text a reader sees: no tags, no scripts or styles, blocks separated by newlines."""

    _SKIPPED = frozenset({"script", "style", "head", "title"})
    _BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIPPED:
            self._skipping += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIPPED and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _html_text(markup: str) -> str:
    parser = _TextOfHtml()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)
