"""How a domain error's cause is rendered: Elasticsearch shows plain causes under caused_by only."""

from __future__ import annotations

from keyplane.errors import ParseError
from keyplane.http.errors import from_domain, x_content_parse


def _parse_error_caused_by_a_plain_error() -> ParseError:
    try:
        try:
            raise ValueError("has_child query isn't supported as part of a role query")
        except ValueError as cause:
            raise ParseError("failed to parse field 'query'") from cause
    except ParseError as exc:
        return exc


def test_a_plain_cause_is_caused_by_not_a_root_cause() -> None:
    body = from_domain(_parse_error_caused_by_a_plain_error()).body()
    assert body == {
        "error": {
            "root_cause": [{"type": "parse_exception", "reason": "failed to parse field 'query'"}],
            "type": "parse_exception",
            "reason": "failed to parse field 'query'",
            "caused_by": {
                "type": "illegal_argument_exception",
                "reason": "has_child query isn't supported as part of a role query",
            },
        },
        "status": 400,
    }


def test_a_wrapped_error_keeps_its_cause_beneath_it() -> None:
    inner = from_domain(_parse_error_caused_by_a_plain_error())
    error = x_content_parse("[1:10] [role] failed to parse field [indices]", inner).body()["error"]
    assert error["root_cause"] == [{"type": "parse_exception", "reason": "failed to parse field 'query'"}]
    assert error["caused_by"]["type"] == "parse_exception"
    assert error["caused_by"]["caused_by"]["type"] == "illegal_argument_exception"


def test_a_parse_error_without_cause_has_no_caused_by() -> None:
    assert "caused_by" not in from_domain(ParseError("bad")).body()["error"]
