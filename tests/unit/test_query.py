import pytest

from keyplane.errors import InvalidArgument
from keyplane.query.fields import NamedFields
from keyplane.query.memory import Doc, Predicate
from keyplane.query.parser import Rules
from keyplane.security.query import ROLE_RULES, USER_RULES, RecordHit, matcher, ordered


def rules_of(names: set[str], prefix: str | None = None) -> Rules:
    return Rules(NamedFields(lambda f: f if f in names or (prefix and f.startswith(prefix)) else None), strict=False)


def search(docs: list[Doc], rules: Rules, query: object, sort: object, default: str) -> list[RecordHit]:
    predicate = matcher(rules, query)
    return ordered([d for d in docs if predicate(d)], rules, sort, default)


DOCS = [
    {"username": "ann", "roles": ["a", "b"], "enabled": True, "full_name": "Ann Smith"},
    {"username": "bob", "roles": ["b"], "enabled": False, "full_name": None},
    {"username": "cat", "roles": [], "enabled": True, "full_name": "Cat Jones"},
]
C = rules_of({"username", "roles", "enabled", "full_name"})


def names(query: dict) -> list[str]:  # type: ignore[type-arg]
    pred: Predicate = matcher(C, query)
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
    rules = rules_of({"name"}, "metadata.")

    def matching(query: dict) -> list[str]:  # type: ignore[type-arg]
        pred = matcher(rules, query)
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
        matcher(C, {"fuzzy": {"username": "x"}})
    with pytest.raises(InvalidArgument, match="Field \\[secret\\] is not allowed"):
        matcher(C, {"term": {"secret": "x"}})


def test_sort() -> None:
    hits = ordered([dict(d) for d in DOCS], C, [{"username": {"order": "desc"}}], "username")
    assert [h.record["username"] for h in hits] == ["cat", "bob", "ann"]
    assert hits[0].sort == ["cat"] and "_sort" not in hits[0].record
    assert [h.sort for h in ordered([dict(d) for d in DOCS], C, None, "username")] == [None, None, None]


def test_search_over_the_user_and_role_indices() -> None:
    """The preferred entry point: the index's rules, the request's query and sort, a default order."""
    docs = [dict(d) for d in DOCS]
    found = search(docs, USER_RULES, {"term": {"enabled": True}}, None, "username")
    assert [h.record["username"] for h in found] == ["ann", "cat"] and found[0].sort is None
    by_name = search(docs, USER_RULES, None, [{"username": "desc"}], "username")
    assert [h.sort for h in by_name] == [["cat"], ["bob"], ["ann"]]
    with pytest.raises(InvalidArgument, match="Field \\[password\\] is not allowed"):
        search(docs, USER_RULES, {"term": {"password": "x"}}, None, "username")
    roles = [{"name": "r1", "metadata": {"tier": "gold"}}, {"name": "r2", "metadata": {}}]
    gold = search(roles, ROLE_RULES, {"term": {"metadata.tier": "gold"}}, None, "name")
    assert [h.record["name"] for h in gold] == ["r1"]
    with pytest.raises(InvalidArgument, match="Field \\[metadata\\] is not allowed"):
        search(roles, ROLE_RULES, {"exists": {"field": "metadata"}}, None, "name")
