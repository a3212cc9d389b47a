"""The bulk body parser and the item rules, without a server."""

from __future__ import annotations

import pytest

from keyplane.errors import ValidationError
from keyplane.indices import bulk
from keyplane.indices.core import Condition


def _parse(text: str, index: str | None = None, pipeline: str | None = None) -> list[bulk.BulkItem]:
    return bulk.parse_bulk(text.encode(), index, pipeline)


def test_actions_metadata_and_sources() -> None:
    items = _parse(
        '{"index":{"_index":"a","_id":"1","if_seq_no":3,"if_primary_term":1,"routing":"r"}}\n{"f":1}\n'
        '{"create":{"_id":"2"}}\n{"f":2}\n'
        "\n"
        '{"update":{"_id":"3","retry_on_conflict":2}}\n{"doc":{"g":1},"doc_as_upsert":true}\n'
        '{"delete":{"_id":"4"}}\n'
        '{"index":{"op_type":"create","pipeline":"p"}}\r\n{"f":5}\r\n',
        index="dflt",
        pipeline="search-default-ingestion",
    )
    assert [(i.action, i.index, i.id) for i in items] == [
        ("index", "a", "1"),
        ("create", "dflt", "2"),
        ("update", "dflt", "3"),
        ("delete", "dflt", "4"),
        ("create", "dflt", None),
    ]
    assert items[0].cond == Condition(3, 1) and items[0].source == {"f": 1}
    assert items[1].pipeline == "search-default-ingestion" and items[4].pipeline == "p"
    assert items[2].update is not None and items[2].update.doc_as_upsert is True


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('"x"\n', "Malformed action/metadata line [1], expected START_OBJECT but found [VALUE_STRING]"),
        ("{}\n", "Malformed action/metadata line [1], expected FIELD_NAME but found [END_OBJECT]"),
        (
            '{"index":[]}\n',
            "Malformed action/metadata line [1], expected START_OBJECT or END_OBJECT but found [START_ARRAY]",
        ),
        (
            '{"delete":{"_id":"1"}}\n{"nope":{}}\n',
            "Malformed action/metadata line [2], expected field [create], [delete], [index] or [update] "
            "but found [nope]",
        ),
        ('{"index":{"_type":"t"}}\n{}\n', "Action/metadata line [1] contains an unknown parameter [_type]"),
        (
            '{"index":{"_id":["a"]}}\n{}\n',
            "Malformed action/metadata line [1], expected a simple value for field [_id] but found [START_ARRAY]",
        ),
        ('{"index":{"_index":"a"}}\n{}', "The bulk request must be terminated by a newline [\\n]"),
    ],
)
def test_malformed_bodies(body: str, reason: str) -> None:
    with pytest.raises(bulk.MalformedBody) as refused:
        _parse(body)
    assert str(refused.value) == reason


def test_validation_of_items() -> None:
    with pytest.raises(ValidationError) as missing:
        _parse('{"index":{}}\n{}\n{"delete":{"_index":"a"}}\n')
    assert missing.value.messages == ["index is missing", "id is missing"]
    with pytest.raises(ValidationError) as empty:
        _parse("\n")
    assert empty.value.messages == ["no requests added"]
    with pytest.raises(ValidationError) as cas:
        _parse('{"create":{"_index":"a","_id":"1","if_seq_no":1,"if_primary_term":1}}\n{}\n')
    assert cas.value.messages == ["create operations do not support compare and set. use index instead"]
    with pytest.raises(bulk.BadUpdateLine):
        _parse('{"update":{"_index":"a","_id":"1"}}\n{"doc":{},"bogus":1}\n')


def test_document_lines() -> None:
    # The pipeline's rules are tested in test_ingest_pipeline.py.
    item = _parse('{"index":{"_index":"a"}}\nnot json\n')[0]
    assert bulk.document_problem(item.source) is not None
    assert bulk.document_problem({"a": 1}) is None


def test_mget_items() -> None:
    items = bulk.parse_mget(
        {"docs": [{"_index": "a", "_id": 1, "_source": ["x"]}, {"_id": "2", "_source": False}]}, "d"
    )
    assert [(i.index, i.id, i.source) for i in items] == [("a", "1", (["x"], [])), ("d", "2", False)]
    assert [i.id for i in bulk.parse_mget({"ids": ["1", "2"]}, "d")] == ["1", "2"]
    with pytest.raises(ValidationError):
        bulk.parse_mget({"docs": [{"_id": "1"}]}, None)
