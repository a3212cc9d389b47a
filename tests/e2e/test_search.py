"""_search and scroll on content indices through the official Python client, with index privileges."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from elasticsearch import AuthorizationException, BadRequestError, Elasticsearch, NotFoundError

from tests.e2e.server import Server


def _books(es: Elasticsearch) -> None:
    es.indices.create(index="books", mappings={"properties": {"genre": {"type": "keyword"}}})
    for i, (title, genre, year) in enumerate(
        [("Dune", "sf", 1965), ("Emma", "novel", 1815), ("Solaris", "sf", 1961), ("Ulysses", None, 1922)], 1
    ):
        doc: dict[str, Any] = {"title": title, "year": year, "meta": {"pages": 100 * i, "isbn": f"i{i}"}}
        if genre is not None:
            doc["genre"] = genre
        es.index(index="books", id=str(i), document=doc)


def _ids(answer: Any) -> list[str]:
    return [hit["_id"] for hit in answer["hits"]["hits"]]


def test_search_shape_query_sort_and_paging(es: Elasticsearch) -> None:
    _books(es)
    everything = es.search(index="books").body
    assert set(everything) == {"took", "timed_out", "_shards", "hits"}
    assert everything["_shards"] == {"total": 1, "successful": 1, "skipped": 0, "failed": 0}
    assert everything["hits"]["total"] == {"value": 4, "relation": "eq"}
    assert everything["hits"]["max_score"] == 1.0
    assert everything["hits"]["hits"][0] == {
        "_index": "books",
        "_id": "1",
        "_score": 1.0,
        "_source": {"title": "Dune", "genre": "sf", "year": 1965, "meta": {"pages": 100, "isbn": "i1"}},
    }

    sf = es.search(index="books", query={"term": {"genre": "sf"}}).body
    assert _ids(sf) == ["1", "3"] and sf["hits"]["total"]["value"] == 2
    filtered = es.search(index="books", query={"bool": {"filter": [{"range": {"year": {"lt": 1950}}}]}}).body
    assert _ids(filtered) == ["2", "4"] and filtered["hits"]["max_score"] == 0.0

    by_year = es.search(index="books", sort=[{"year": "desc"}], size=2, from_=1).body
    assert _ids(by_year) == ["3", "4"]
    assert by_year["hits"]["max_score"] is None
    assert [h["_score"] for h in by_year["hits"]["hits"]] == [None, None]
    assert [h["sort"] for h in by_year["hits"]["hits"]] == [[1961], [1922]]
    # Missing values sort last, ascending or descending.
    assert _ids(es.search(index="books", sort="genre").body) == ["2", "1", "3", "4"]
    assert _ids(es.search(index="books", sort=[{"genre": {"order": "desc"}}, "_doc"]).body) == ["1", "3", "2", "4"]


def test_source_filtering_versions_and_total_hits(es: Elasticsearch) -> None:
    _books(es)
    hit = es.search(index="books", query={"ids": {"values": ["2"]}}, source_includes=["meta.*"]).body["hits"]["hits"]
    assert hit[0]["_source"] == {"meta": {"pages": 200, "isbn": "i2"}}
    body = es.search(
        index="books",
        query={"ids": {"values": ["2"]}},
        source={"excludes": ["meta"]},
        seq_no_primary_term=True,
        version=True,
    ).body
    assert body["hits"]["hits"][0] == {
        "_index": "books",
        "_id": "2",
        "_version": 1,
        "_seq_no": 1,
        "_primary_term": 1,
        "_score": 1.0,
        "_source": {"title": "Emma", "genre": "novel", "year": 1815},
    }
    assert "_source" not in es.search(index="books", source=False).body["hits"]["hits"][0]
    limited = es.search(index="books", track_total_hits=2).body["hits"]["total"]
    assert limited == {"value": 2, "relation": "gte"}
    assert "total" not in es.search(index="books", track_total_hits=False).body["hits"]
    assert es.search(index="books", rest_total_hits_as_int=True).body["hits"]["total"] == 4
    assert _ids(es.search(index="books", q="title:solaris").body) == ["3"]
    with pytest.raises(BadRequestError) as window:
        es.search(index="books", from_=9999, size=2)
    error = window.value.body["error"]
    assert error["type"] == "search_phase_execution_exception"
    assert error["root_cause"][0]["reason"].startswith(
        "Result window is too large, from + size must be less than or equal to: [10000] but was [10001]."
    )


def test_search_across_indices_and_missing_index(es: Elasticsearch) -> None:
    _books(es)
    es.index(index="films", id="f1", document={"title": "Solaris", "year": 1972})
    both = es.search(index="books,films", query={"match": {"title": "solaris"}}).body
    assert [(h["_index"], h["_id"]) for h in both["hits"]["hits"]] == [("books", "3"), ("films", "f1")]
    assert both["_shards"]["total"] == 2
    assert es.search(query={"match": {"title": "solaris"}}).body["hits"]["total"]["value"] == 2
    with pytest.raises(NotFoundError) as missing:
        es.search(index="nope")
    assert missing.value.body["error"]["type"] == "index_not_found_exception"


def test_scroll_and_clear_scroll(es: Elasticsearch, http: httpx.Client) -> None:
    _books(es)
    first = es.search(index="books", scroll="1m", size=3, sort="year").body
    scroll_id = first["_scroll_id"]
    assert _ids(first) == ["2", "4", "3"]
    es.index(index="books", id="5", document={"title": "Later", "year": 2000})  # not in the open context
    second = es.scroll(scroll_id=scroll_id, scroll="1m").body
    assert second["_scroll_id"] == scroll_id and _ids(second) == ["1"]
    assert second["hits"]["total"] == {"value": 4, "relation": "eq"}
    assert _ids(es.scroll(scroll_id=scroll_id).body) == []
    cleared = es.clear_scroll(scroll_id=scroll_id)
    assert cleared.body == {"succeeded": True, "num_freed": 1}
    with pytest.raises(NotFoundError) as gone:
        es.scroll(scroll_id=scroll_id)
    error = gone.value.body["error"]
    assert error["type"] == "search_phase_execution_exception"
    assert error["root_cause"][0]["type"] == "search_context_missing_exception"
    again = http.request("DELETE", "/_search/scroll", json={"scroll_id": [scroll_id]})
    assert (again.status_code, again.json()) == (404, {"succeeded": True, "num_freed": 0})
    with pytest.raises(BadRequestError, match="size"):
        es.search(index="books", scroll="1m", size=0)


def test_search_needs_read_on_each_index(es: Elasticsearch, server: Server) -> None:
    _books(es)
    es.index(index="secret", id="1", document={"title": "x"})
    es.security.put_role(name="role-a", indices=[{"names": ["books"], "privileges": ["read"]}])
    es.security.put_user(username="reader", password="reader-secret", roles=["role-a"])
    reader = Elasticsearch(server.url, basic_auth=("reader", "reader-secret"))
    assert reader.search(index="books").body["hits"]["total"]["value"] == 4
    assert reader.search(index="*").body["hits"]["total"]["value"] == 4  # wildcards: what the caller may read
    with pytest.raises(AuthorizationException) as denied:
        reader.search(index="secret")
    assert denied.value.body["error"]["reason"] == (
        "action [indices:data/read/search] is unauthorized for user [reader] with effective roles [role-a] on "
        "indices [secret], this action is granted by the index privileges [read,all]"
    )
    # A scroll is continued by its owner only.
    opened = reader.search(index="books", scroll="1m", size=1).body["_scroll_id"]
    with pytest.raises(NotFoundError):
        es.scroll(scroll_id=opened)
    assert len(reader.scroll(scroll_id=opened).body["hits"]["hits"]) == 1

    key = es.security.create_api_key(
        name="k", role_descriptors={"r": {"indices": [{"names": ["books"], "privileges": ["read"]}]}}
    )
    with_key = Elasticsearch(server.url, api_key=key.body["encoded"])
    assert with_key.search(index="books", size=0).body["hits"]["total"]["value"] == 4
    with pytest.raises(AuthorizationException, match="indices:data/read/search"):
        with_key.search(index="secret")


def test_docvalue_fields_and_stored_fields_come_from_source(es: Elasticsearch, http: httpx.Client) -> None:
    es.indices.create(index="dated", mappings={"properties": {"at": {"type": "date"}}})
    es.index(index="dated", id="1", document={"at": "2021-02-11", "n": 2, "tags": ["b", "a"], "d": 1.5}, refresh=True)
    hit = es.search(index="dated", docvalue_fields=["n", {"field": "d", "format": "#.00"}, "at", "tags.keyword"]).body[
        "hits"
    ]["hits"][0]
    assert hit["fields"] == {"n": [2], "d": ["1.50"], "at": ["2021-02-11T00:00:00.000Z"], "tags.keyword": ["a", "b"]}
    assert "_source" in hit
    # As a URL parameter.
    answer = http.get("/dated/_search", params={"docvalue_fields": "n"}).json()
    assert answer["hits"]["hits"][0]["fields"] == {"n": [2]}
    # Stored fields replace _source unless they name it.
    assert "_source" not in es.search(index="dated", stored_fields=["n"]).body["hits"]["hits"][0]
    assert "_source" in es.search(index="dated", stored_fields=["n", "_source"]).body["hits"]["hits"][0]


def test_terms_lookup_and_max_terms_count(es: Elasticsearch) -> None:
    es.indices.create(
        index="users",
        settings={"index.max_terms_count": 2},
        mappings={"properties": {"user": {"type": "keyword"}, "follows": {"type": "keyword"}}},
    )
    for user, follows in (("u1", ["u2", "u3"]), ("u2", ["u1", "u3", "u4"]), ("u3", ["u1"])):
        es.index(index="users", id=user, document={"user": user, "follows": follows})
    lookup = {"terms": {"user": {"index": "users", "id": "u1", "path": "follows"}}}
    assert sorted(_ids(es.search(index="users", query=lookup).body)) == ["u2", "u3"]
    with pytest.raises(BadRequestError) as err:
        es.search(index="users", query={"terms": {"user": ["u1", "u2", "u3"]}})
    assert "has exceeded the allowed maximum of [2]" in str(err.value.body)
    with pytest.raises(BadRequestError):  # the looked-up values count too
        es.search(index="users", query={"terms": {"user": {"index": "users", "id": "u2", "path": "follows"}}})


def test_terms_lookup_needs_read_on_the_looked_up_index(es: Elasticsearch, server: Server) -> None:
    es.index(index="public", id="1", document={"user": "u1"}, refresh=True)
    es.index(index="secret", id="s", document={"users": ["u1"]}, refresh=True)
    es.security.put_role(name="public_reader", indices=[{"names": ["public"], "privileges": ["read"]}])
    es.security.put_user(username="reader", password="reader-pass", roles=["public_reader"])
    reader = Elasticsearch(server.url, basic_auth=("reader", "reader-pass"))
    lookup = {"terms": {"user": {"index": "secret", "id": "s", "path": "users"}}}
    with pytest.raises(AuthorizationException):
        reader.search(index="public", query=lookup)
    assert _ids(reader.search(index="public", query={"terms": {"user": ["u1"]}}).body) == ["1"]
