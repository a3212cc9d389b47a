import pytest

from keyplane.http.errors import EsError, RawError
from keyplane.http.media import negotiate

V8 = "application/vnd.elasticsearch+json; compatible-with=8"
V9 = "application/vnd.elasticsearch+json;compatible-with=9"


def test_plain_json_and_vendor() -> None:
    assert negotiate("application/json", "application/json", True) is None
    assert negotiate(V8, V8, True) == 8
    assert negotiate(V9 + ",text/plain", None, False) == 9
    assert negotiate(None, None, False) is None


def test_content_type_ignored_without_body() -> None:
    assert negotiate(V9, "text/plain", False) == 9


def test_bad_versions() -> None:
    with pytest.raises(EsError, match="Accept version must be either version 9 or 8, but found 7"):
        negotiate("application/vnd.elasticsearch+json; compatible-with=7", None, False)
    with pytest.raises(EsError, match="compatible versions must match"):
        negotiate(V8, V9, True)
    with pytest.raises(EsError, match="if either one has requested a compatible version"):
        negotiate("application/json", V9, True)


def test_unsupported_type() -> None:
    with pytest.raises(RawError) as exc:
        negotiate(None, "application/x-www-form-urlencoded", True)
    assert exc.value.status == 406
