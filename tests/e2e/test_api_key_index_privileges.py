"""An API key guards data: the update API key example of Elastic's docs, followed through to the documents."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from elasticsearch import AuthorizationException, Elasticsearch, helpers

from tests.e2e.server import Server


@pytest.fixture
def owner(es: Elasticsearch, server: Server) -> Iterator[Elasticsearch]:
    """A user who owns the key: update API key is called with the owner's credentials."""
    es.security.put_role(
        name="data-admin", cluster=["manage_own_api_key"], indices=[{"names": ["index-*"], "privileges": ["all"]}]
    )
    es.security.put_user(username="owner", password="owner-secret", roles=["data-admin"])
    client = Elasticsearch(server.url, basic_auth=("owner", "owner-secret"))
    yield client
    client.close()


def _as_key(server: Server, encoded: str) -> Elasticsearch:
    return Elasticsearch(server.url, api_key=encoded)


def test_read_then_write_on_index_a(es: Elasticsearch, owner: Elasticsearch, server: Server) -> None:
    for index in ("index-a", "index-b"):
        es.index(index=index, id="1", document={"title": f"first in {index}"}, refresh=True)
    key = owner.security.create_api_key(name="my-api-key")
    role_a = {"role-a": {"indices": [{"names": ["index-a*"], "privileges": ["read"]}]}}
    assert owner.security.update_api_key(id=key["id"], role_descriptors=role_a)["updated"] is True

    with _as_key(server, key["encoded"]) as client:
        hits = client.search(index="index-a", query={"match_all": {}})["hits"]
        assert [hit["_id"] for hit in hits["hits"]] == ["1"]
        assert client.get(index="index-a", id="1")["_source"] == {"title": "first in index-a"}
        with pytest.raises(AuthorizationException) as refused:
            client.search(index="index-b")
        assert refused.value.body["error"]["reason"] == (
            f"action [indices:data/read/search] is unauthorized for API key id [{key['id']}] of user [owner] "
            "on indices [index-b], this action is granted by the index privileges [read,all]"
        )
        with pytest.raises(AuthorizationException):
            client.index(index="index-a", id="2", document={"title": "second"})

    role_a["role-a"]["indices"][0]["privileges"] = ["write"]
    owner.security.update_api_key(id=key["id"], role_descriptors=role_a)

    with _as_key(server, key["encoded"]) as client:
        actions = [{"_index": "index-a", "_id": str(n), "title": f"doc {n}"} for n in range(2, 12)]
        ok, errors = helpers.bulk(client, actions, refresh=True)
        assert (ok, errors) == (10, [])
        with pytest.raises(AuthorizationException) as refused:
            client.search(index="index-a")
        assert "action [indices:data/read/search] is unauthorized" in refused.value.body["error"]["reason"]
        # index-b stays out of reach for writes too: the bulk item fails alone.
        result = client.bulk(operations=[{"index": {"_index": "index-b", "_id": "9"}}, {"title": "no"}])
        assert result["errors"] is True and result["items"][0]["index"]["status"] == 403

    assert es.count(index="index-a")["count"] == 11
    assert es.count(index="index-b")["count"] == 1


def test_the_key_is_limited_by_its_owner(es: Elasticsearch, server: Server) -> None:
    """Assigned descriptors cannot reach past the owner's own roles (assigned ∩ limited-by)."""
    es.index(index="index-a", id="1", document={"title": "a"}, refresh=True)
    es.index(index="other", id="1", document={"title": "o"}, refresh=True)
    es.security.put_role(
        name="a-reader", cluster=["manage_own_api_key"], indices=[{"names": ["index-a"], "privileges": ["read"]}]
    )
    es.security.put_user(username="reader", password="reader-secret", roles=["a-reader"])
    with Elasticsearch(server.url, basic_auth=("reader", "reader-secret")) as reader:
        everything = {"all": {"indices": [{"names": ["*"], "privileges": ["all"]}]}}
        key = reader.security.create_api_key(name="wide", role_descriptors=everything)
    with _as_key(server, key["encoded"]) as client:
        assert client.count(index="index-a")["count"] == 1
        with pytest.raises(AuthorizationException):
            client.count(index="other")
        with pytest.raises(AuthorizationException):
            client.index(index="index-a", id="2", document={"title": "b"})
