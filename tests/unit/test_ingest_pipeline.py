"""The search-default-ingestion pipeline: what a connector's document looks like once written."""

from __future__ import annotations

import base64

import pytest

from keyplane.indices.pipeline import DEFAULT_INGESTION, UnknownPipeline, check_pipeline, ingest


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_plain_text_attachment_becomes_the_body_and_the_control_fields_go() -> None:
    doc = {
        "id": "1",
        "_attachment": _b64(b"  hello\n\n   world  \n"),
        "_extract_binary_content": True,
        "_reduce_whitespace": True,
        "_run_ml_inference": False,
    }
    assert ingest(DEFAULT_INGESTION, doc) == {"id": "1", "body": "hello world"}


def test_without_reduce_whitespace_the_text_is_only_trimmed() -> None:
    doc = {"_attachment": _b64("a\n\nb\u00e9\ufffd\n".encode()), "_extract_binary_content": True}
    assert ingest(DEFAULT_INGESTION, doc) == {"body": "a\n\nbé"}


def test_extraction_is_off_unless_asked_but_the_attachment_is_still_removed() -> None:
    doc = {"_attachment": _b64(b"text"), "body": "kept"}
    assert ingest(DEFAULT_INGESTION, doc) == {"body": "kept"}


def test_an_empty_attachment_keeps_the_existing_body() -> None:
    doc = {"_attachment": _b64(b"   "), "_extract_binary_content": True, "body": "kept"}
    assert ingest(DEFAULT_INGESTION, doc) == {"body": "kept"}


def test_html_gives_its_visible_text() -> None:
    page = b"<!DOCTYPE html><html><head><title>T</title><style>p{}</style></head><body><p>One</p><p>Two &amp; three</p>"
    out = ingest(
        DEFAULT_INGESTION, {"_attachment": _b64(page), "_extract_binary_content": True, "_reduce_whitespace": True}
    )
    assert out == {"body": "One Two & three"}


def test_indexed_chars_limits_the_text() -> None:
    doc = {"_attachment": _b64(b"abcdefgh"), "_extract_binary_content": True, "_attachment_indexed_chars": 3}
    assert ingest(DEFAULT_INGESTION, doc) == {"body": "abc"}
    doc["_attachment_indexed_chars"] = -1
    assert ingest(DEFAULT_INGESTION, doc) == {"body": "abcdefgh"}


@pytest.mark.parametrize("data", [b"%PDF-1.7 ...", b"PK\x03\x04rest", b"\x00\x01\x02\x03binary"])
def test_formats_needing_a_parser_are_recorded_as_ingestion_errors(data: bytes) -> None:
    out = ingest(DEFAULT_INGESTION, {"_attachment": _b64(data), "_extract_binary_content": True})
    assert "body" not in out and "_attachment" not in out
    [error] = out["_ingestion_errors"]
    assert error.startswith("Processor 'attachment' in pipeline 'search-default-ingestion' failed with message")


def test_no_pipeline_leaves_the_document_alone() -> None:
    doc = {"_attachment": "x", "_reduce_whitespace": True}
    assert ingest(None, doc) is doc
    assert ingest("_none", doc) is doc


def test_only_the_default_pipeline_exists() -> None:
    check_pipeline(None)
    check_pipeline(DEFAULT_INGESTION)
    check_pipeline("_none")
    with pytest.raises(UnknownPipeline, match=r"pipeline with id \[mine\] does not exist"):
        check_pipeline("mine")
