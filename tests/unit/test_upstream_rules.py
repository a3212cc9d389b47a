"""The forwarding rules of keyplane.upstream: which routes leave for the upstream cluster, and how."""

from __future__ import annotations

import pytest

from keyplane.api import build_router
from keyplane.errors import InvalidArgument
from keyplane.upstream.forward import _bulk_items, _path, _without_rendering
from keyplane.upstream.rules import RULES, is_system, rule_for


def _routes() -> list[tuple[str, str]]:
    router = build_router(test_mode=True)
    return [(m, r.template) for routes in router._by_length.values() for r in routes for m in r.methods]


def test_every_content_index_route_has_a_forwarding_rule() -> None:
    # A content route added without a rule would be served from Keyplane's own (empty) store behind an
    # upstream: the caller would silently see nothing.
    unruled = [
        (method, template)
        for method, template in _routes()
        if "{index}" in template and rule_for(method, template) is None
    ]
    assert unruled == []


def test_no_security_connector_or_system_index_route_is_forwarded() -> None:
    forwarded = [
        (method, template)
        for method, template in _routes()
        if rule_for(method, template) is not None
        and (template.startswith(("/_security", "/_connector", "/_keyplane", "/.")))
    ]
    assert forwarded == []
    assert all(not template.startswith("/.") for _, template in RULES)


def test_head_follows_get() -> None:
    assert rule_for("HEAD", "/{index}/_doc/{id}") == rule_for("GET", "/{index}/_doc/{id}")
    assert rule_for("PATCH", "/{index}") is None


def test_system_names() -> None:
    assert is_system(".elastic-connectors")
    assert is_system(".elastic-connectors-sync-jobs-v1")
    assert is_system(".elastic-connectors*")
    assert not is_system("search-docs")


def test_paths_are_quoted_segment_by_segment() -> None:
    assert _path("/{index}/_doc/{id}", {"index": "a,b*", "id": "x/y z"}) == "/a,b*/_doc/x%2Fy%20z"


def test_rendering_parameters_are_left_to_the_dispatcher_when_answers_are_merged() -> None:
    assert _without_rendering("refresh=true&pretty&filter_path=items.*.status") == "refresh=true"


def test_bulk_items_keep_their_lines_and_skip_blank_ones() -> None:
    body = (
        b'{"delete":{"_index":"a","_id":"1"}}\n\n{"index":{"_id":"2"}}\r\n{"f":1}\n'
        b'{"update":{"_index":"c","_id":"3"}}\n{"doc":{}}\n'
    )
    items = _bulk_items(body, "b")
    assert [(item.action, item.index, item.id) for item, _ in items] == [
        ("delete", "a", "1"),
        ("index", "b", "2"),
        ("update", "c", "3"),
    ]
    assert [lines for _, lines in items] == [
        [b'{"delete":{"_index":"a","_id":"1"}}'],
        [b'{"index":{"_id":"2"}}', b'{"f":1}'],
        [b'{"update":{"_index":"c","_id":"3"}}', b'{"doc":{}}'],
    ]


def test_a_bulk_body_that_cannot_be_read_is_refused_before_it_leaves() -> None:
    with pytest.raises(InvalidArgument, match="expected FIELD_NAME but found \\[END_OBJECT\\]"):
        _bulk_items(b'{"index":{"_index":"a"}}\n{}\n{}\n', None)
