from keyplane.http.filter_path import apply

DOC = {"a": {"b": 1, "c": {"d": 2, "e": 3}}, "list": [{"x": 1, "y": 2}, {"x": 3}], "top": True}


def test_includes() -> None:
    assert apply(DOC, "a.b") == {"a": {"b": 1}}
    assert apply(DOC, "a.c.d,top") == {"a": {"c": {"d": 2}}, "top": True}
    assert apply(DOC, "list.x") == {"list": [{"x": 1}, {"x": 3}]}


def test_wildcards() -> None:
    assert apply(DOC, "a.*.d") == {"a": {"c": {"d": 2}}}
    assert apply(DOC, "**.e") == {"a": {"c": {"e": 3}}}
    assert apply(DOC, "t*") == {"top": True}


def test_excludes() -> None:
    assert apply(DOC, "-a,-list") == {"top": True}
    assert apply(DOC, "-**.d") == {"a": {"b": 1, "c": {"e": 3}}, "list": DOC["list"], "top": True}
    assert apply(DOC, "a,-a.c") == {"a": {"b": 1}}


def test_nothing_matches() -> None:
    assert apply(DOC, "missing") == {}
