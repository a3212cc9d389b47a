import pytest

from keyplane.errors import InvalidArgument
from keyplane.security.query import ROLE_RULES, USER_RULES, QueryCompiler, search, sort_docs

DOCS = [
    {"username": "ann", "roles": ["a", "b"], "enabled": True, "full_name": "Ann Smith"},
    {"username": "bob", "roles": ["b"], "enabled": False, "full_name": None},
    {"username": "cat", "roles": [], "enabled": True, "full_name": "Cat Jones"},
]
C = QueryCompiler(lambda f: f if f in {"username", "roles", "enabled", "full_name"} else None)


def names(query: dict) -> list[str]:
    pred = C.compile(query)
    return [d["username"] for d in DOCS if pred(d)]


def test_query_types() -> None:
    assert names({"match_all": {}}) == ["ann", "bob", "cat"]
    assert names({"term": {"roles": "b"}}) == ["ann", "bob"]
    assert names({"terms": {"username": ["ann", "cat"]}}) == ["ann", "cat"]
    assert names({"prefix": {"username": {"value": "B", "case_insensitive": True}}}) == ["bob"]
    assert names({"wildcard": {"username": "*a*"}}) == ["ann", "cat"]
    assert names({"match": {"full_name": "jones"}}) == ["cat"]
    assert names({"exists": {"field": "full_name"}}) == ["ann", "cat"]
    assert names({"bool": {"must": [{"term": {"enabled": True}}], "must_not": [{"term": {"username": "cat"}}]}}) == [
        "ann"
    ]
    assert names({"bool": {"should": [{"term": {"username": "bob"}}, {"term": {"username": "cat"}}]}}) == ["bob", "cat"]
    assert names({"range": {"username": {"gt": "ann", "lte": "bob"}}}) == ["bob"]


def test_values_compare_as_keywords() -> None:
    """Booleans and numbers match their text, as in Elasticsearch's keyword and flattened fields."""
    docs = [{"name": "r1", "metadata": {"managed": True, "n": 3, "tags": ["a", "b"]}}, {"name": "r2", "metadata": {}}]
    compiler = QueryCompiler(lambda f: f if f == "name" or f.startswith("metadata.") else None)

    def matching(query: dict) -> list[str]:  # type: ignore[type-arg]
        pred = compiler.compile(query)
        return [d["name"] for d in docs if pred(d)]

    for query in (
        {"term": {"metadata.managed": True}},
        {"term": {"metadata.managed": "true"}},
        {"term": {"metadata.n": "3"}},
        {"term": {"metadata.n": 3}},
        {"terms": {"metadata.managed": [True]}},
        {"terms": {"metadata.n": ["3"]}},
        {"term": {"metadata.tags": "b"}},
    ):
        assert matching(query) == ["r1"], query
    assert matching({"term": {"metadata.managed": "false"}}) == []
    assert names({"term": {"enabled": "false"}}) == ["bob"]


def test_refusals() -> None:
    with pytest.raises(InvalidArgument, match="Query type \\[fuzzy\\]"):
        C.compile({"fuzzy": {"username": "x"}})
    with pytest.raises(InvalidArgument, match="Field \\[secret\\] is not allowed"):
        C.compile({"term": {"secret": "x"}})


def test_sort() -> None:
    docs, sorted_ = sort_docs([dict(d) for d in DOCS], [{"username": {"order": "desc"}}], C.field, "username")
    assert sorted_ and [d["username"] for d in docs] == ["cat", "bob", "ann"]
    assert docs[0]["_sort"] == ["cat"]


def test_search_over_the_user_and_role_indices() -> None:
    """The preferred entry point: the index's rules, the request's query and sort, a default order."""
    docs = [dict(d) for d in DOCS]
    found = search(docs, USER_RULES, {"term": {"enabled": True}}, None, "username")
    assert [d["username"] for d in found] == ["ann", "cat"] and "_sort" not in found[0]
    ordered = search(docs, USER_RULES, None, [{"username": "desc"}], "username")
    assert [d["_sort"] for d in ordered] == [["cat"], ["bob"], ["ann"]]
    with pytest.raises(InvalidArgument, match="Field \\[password\\] is not allowed"):
        search(docs, USER_RULES, {"term": {"password": "x"}}, None, "username")
    roles = [{"name": "r1", "metadata": {"tier": "gold"}}, {"name": "r2", "metadata": {}}]
    assert [r["name"] for r in search(roles, ROLE_RULES, {"term": {"metadata.tier": "gold"}}, None, "name")] == ["r1"]
    with pytest.raises(InvalidArgument, match="Field \\[metadata\\] is not allowed"):
        search(roles, ROLE_RULES, {"exists": {"field": "metadata"}}, None, "name")
