"""The refresh model: an index with ``refresh_interval: -1`` shows searches what was written before its last
refresh; realtime gets see every write; other indices show writes at once."""

from __future__ import annotations

import httpx
import pytest
from elasticsearch import ApiError, Elasticsearch, NotFoundError


def _titles(es: Elasticsearch, index: str) -> list[str]:
    hits = es.search(index=index, sort=["n"]).body["hits"]["hits"]
    return [hit["_source"]["title"] for hit in hits]


@pytest.fixture
def manual(es: Elasticsearch) -> str:
    es.indices.create(index="manual", settings={"index": {"refresh_interval": -1}})
    return "manual"


def test_writes_are_hidden_from_searches_until_a_refresh(es: Elasticsearch, manual: str) -> None:
    answer = es.index(index=manual, id="1", document={"title": "one", "n": 1}).body
    assert "forced_refresh" not in answer
    assert es.search(index=manual).body["hits"]["total"]["value"] == 0
    assert es.count(index=manual).body["count"] == 0
    assert es.get(index=manual, id="1").body["found"] is True  # realtime
    with pytest.raises(NotFoundError):
        es.get(index=manual, id="1", realtime=False)
    assert es.mget(index=manual, ids=["1"], realtime=False).body["docs"][0]["found"] is False

    forced = es.index(index=manual, id="2", document={"title": "two", "n": 2}, refresh=True).body
    assert forced["forced_refresh"] is True
    assert _titles(es, manual) == ["one", "two"]
    assert es.get(index=manual, id="1", realtime=False).body["_source"]["title"] == "one"


def test_rewrites_and_deletes_show_the_refreshed_version(es: Elasticsearch, manual: str) -> None:
    es.index(index=manual, id="1", document={"title": "one", "n": 1})
    es.index(index=manual, id="2", document={"title": "two", "n": 2}, refresh="wait_for")
    es.update(index=manual, id="1", doc={"title": "uno"})
    es.update(index=manual, id="1", doc={"title": "eins"})  # the kept version stays the refreshed one
    es.delete(index=manual, id="2")
    es.index(index=manual, id="3", document={"title": "three", "n": 3})
    assert _titles(es, manual) == ["one", "two"]
    assert es.count(index=manual).body["count"] == 2
    assert es.get_source(index=manual, id="1", realtime=False).body["title"] == "one"
    assert es.get_source(index=manual, id="1").body["title"] == "eins"
    with pytest.raises(NotFoundError):
        es.get(index=manual, id="2")  # realtime: deleted

    with pytest.raises(NotFoundError):  # refresh=true refreshes before reading: the delete is visible
        es.get(index=manual, id="2", realtime=False, refresh=True)
    assert _titles(es, manual) == ["eins", "three"]
    assert es.count(index=manual).body["count"] == 2


def test_bulk_refresh_and_empty_refresh_parameter(es: Elasticsearch, http: httpx.Client, manual: str) -> None:
    answer = es.bulk(index=manual, operations=[{"index": {"_id": "1"}}, {"title": "one", "n": 1}]).body
    assert "forced_refresh" not in answer["items"][0]["index"]
    assert es.count(index=manual).body["count"] == 0
    answer = es.bulk(index=manual, refresh=True, operations=[{"index": {"_id": "2"}}, {"title": "two", "n": 2}]).body
    assert answer["items"][0]["index"]["forced_refresh"] is True
    assert es.count(index=manual).body["count"] == 2
    # An empty refresh parameter means true.
    raw = http.put(f"/{manual}/_doc/3", params={"refresh": ""}, json={"title": "three", "n": 3})
    assert raw.json()["forced_refresh"] is True
    assert es.count(index=manual).body["count"] == 3


def test_unknown_refresh_value_is_refused(http: httpx.Client) -> None:
    answer = http.put("/books/_doc/1", params={"refresh": "later"}, json={"title": "x"})
    assert answer.status_code == 400
    assert answer.json()["error"]["reason"] == "Unknown value for refresh: [later]."


def test_default_interval_shows_writes_at_once(es: Elasticsearch) -> None:
    es.index(index="auto", id="1", document={"title": "one", "n": 1})
    assert es.count(index="auto").body["count"] == 1
    assert es.get(index="auto", id="1", realtime=False).body["found"] is True
    es.delete(index="auto", id="1")
    assert es.count(index="auto").body["count"] == 0


def test_get_with_version(es: Elasticsearch) -> None:
    es.index(index="books", id="1", document={"title": "one"})
    assert es.exists(index="books", id="1", version=1).body is True
    with pytest.raises(ApiError) as err:
        es.get(index="books", id="1", version=2)
    assert err.value.meta.status == 409
    assert err.value.body["error"]["type"] == "version_conflict_engine_exception"
