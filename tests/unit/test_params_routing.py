import pytest

from keyplane.http.errors import EsError
from keyplane.http.params import accepted, check_unrecognized, parse_bool, split_list
from keyplane.http.routing import Router, split_path


async def _h(request):  # type: ignore[no-untyped-def]
    return {}


def test_parse_bool_is_strict() -> None:
    assert parse_bool("x", None, False) is False
    assert parse_bool("x", "", False) is True
    assert parse_bool("x", "false", True) is False
    with pytest.raises(EsError):
        parse_bool("x", "1", False)


def test_split_path_decodes_segments() -> None:
    assert split_path("/_connector/my%20conn%2F1%2Bx") == ["_connector", "my conn/1+x"]
    assert split_path("/_connector//_error") == ["_connector", "", "_error"]
    assert split_path("/a/b/") == ["a", "b"]
    assert split_list("a,b,,c") == ["a", "b", "c"]


def test_literal_segments_win_over_parameters() -> None:
    router = Router()
    router.add("GET", "/_security/user/{username}", _h, action="get")
    router.add("GET", "/_security/user/_privileges", _h, action="privs")
    route, params, _ = router.resolve("GET", ["_security", "user", "_privileges"])
    assert route is not None and route.action == "privs" and params == {}
    route, params, _ = router.resolve("GET", ["_security", "user", "bob"])
    assert route is not None and params == {"username": "bob"}


def test_allowed_methods_reported() -> None:
    router = Router()
    router.add(("PUT", "POST"), "/r/{id}", _h)
    route, _, allowed = router.resolve("DELETE", ["r", "1"])
    assert route is None and allowed == {"PUT", "POST"}


def test_unrecognized_params() -> None:
    check_unrecognized("/p", {"pretty", "a"}, accepted(["a"]))
    check_unrecognized("/p", {"filter_path": "x", "a": "1"}.keys(), accepted(["a"]))
    with pytest.raises(EsError, match=r"contains unrecognized parameters: \[b\], \[c\]"):
        check_unrecognized("/p", {"b", "c", "pretty"}, accepted([]))
    with pytest.raises(EsError, match=r"contains unrecognized parameter: \[b\]$"):
        check_unrecognized("/p", {"a": "", "b": ""}.keys(), accepted(["a"]))


def test_raw_paths_resolve_as_their_segments_and_get_their_own_params() -> None:
    router = Router()
    router.add("GET", "/_connector/{id}", _h, action="get")
    router.add("GET", "/_connector/{id}/_x", _h, action="x")
    for _ in range(2):  # the second time from the cache
        route, params, _ = router.resolve_path("GET", "/_connector/a%2F_x")
        assert route is not None and route.action == "get" and params == {"id": "a/_x"}
        params["id"] = "changed"  # a handler's change stays its own
    route, params, _ = router.resolve_path("GET", "/_connector/a/_x")
    assert route is not None and route.action == "x" and params == {"id": "a"}
    # Split paths and raw ones share the cache without mixing up: "/_connector/a/_x" split is not "a%2F_x".
    route, params, _ = router.resolve("GET", ["_connector", "a/_x"])
    assert route is not None and route.action == "get" and params == {"id": "a/_x"}
