"""Content indices and their documents through the official Python client, with index privileges."""

from __future__ import annotations

import httpx
import pytest
from elasticsearch import (
    AuthorizationException,
    BadRequestError,
    ConflictError,
    Elasticsearch,
    NotFoundError,
)

from tests.e2e.server import Server


def test_create_get_and_delete_an_index(es: Elasticsearch, http: httpx.Client) -> None:
    created = es.indices.create(
        index="books",
        settings={"number_of_replicas": 0},
        mappings={"properties": {"title": {"type": "text"}}},
    )
    assert created.body == {"acknowledged": True, "shards_acknowledged": True, "index": "books"}
    assert es.indices.exists(index="books").body is True
    got = es.indices.get(index="books").body["books"]
    assert got["mappings"] == {"properties": {"title": {"type": "text"}}}
    index = got["settings"]["index"]
    assert (index["number_of_replicas"], index["number_of_shards"], index["provided_name"]) == ("0", "1", "books")
    assert set(index) >= {"uuid", "creation_date", "version", "routing"}
    flat = http.get("/books", params={"flat_settings": "true"}).json()["books"]["settings"]
    assert flat["index.number_of_replicas"] == "0"

    with pytest.raises(BadRequestError) as exists:
        es.indices.create(index="books")
    error = exists.value.body["error"]
    assert error["type"] == "resource_already_exists_exception"
    assert error["reason"] == f"index [books/{index['uuid']}] already exists"
    with pytest.raises(BadRequestError) as invalid:
        es.indices.create(index="Books")
    assert invalid.value.body["error"]["reason"] == "Invalid index name [Books], must be lowercase"

    assert es.indices.delete(index="books").body == {"acknowledged": True}
    assert es.indices.exists(index="books").body is False


def test_document_crud_with_versions_and_sequence_numbers(es: Elasticsearch) -> None:
    first = es.index(index="docs", id="1", document={"foo": "bar", "nested": {"one": 1, "two": 2}})
    assert first.meta.status == 201
    assert {k: first.body[k] for k in ("_index", "_id", "_version", "result", "_seq_no", "_primary_term")} == {
        "_index": "docs",
        "_id": "1",
        "_version": 1,
        "result": "created",
        "_seq_no": 0,
        "_primary_term": 1,
    }
    assert first.body["_shards"] == {"total": 2, "successful": 1, "failed": 0}  # auto-created: one replica
    got = es.get(index="docs", id="1").body
    assert got == {
        "_index": "docs",
        "_id": "1",
        "_version": 1,
        "_seq_no": 0,
        "_primary_term": 1,
        "found": True,
        "_source": {"foo": "bar", "nested": {"one": 1, "two": 2}},
    }
    assert es.get(index="docs", id="1", source_includes="nested.one").body["_source"] == {"nested": {"one": 1}}
    assert "_source" not in es.get(index="docs", id="1", source=False).body
    assert es.get_source(index="docs", id="1", source_excludes="nested").body == {"foo": "bar"}
    assert es.exists(index="docs", id="1").body is True
    assert es.exists(index="docs", id="2").body is False

    updated = es.update(index="docs", id="1", doc={"nested": {"one": 3}, "tooltip": None})
    assert (updated.body["result"], updated.body["_version"], updated.body["_seq_no"]) == ("updated", 2, 1)
    source = es.get(index="docs", id="1").body["_source"]
    assert source == {"foo": "bar", "nested": {"one": 3, "two": 2}, "tooltip": None}
    noop = es.update(index="docs", id="1", doc={"tooltip": None})
    assert noop.body["result"] == "noop" and noop.body["_shards"] == {"total": 0, "successful": 0, "failed": 0}

    generated = es.index(index="docs", document={"x": 1})
    assert generated.body["result"] == "created" and len(generated.body["_id"]) == 20
    assert es.count(index="docs").body["count"] == 2
    assert es.count(index="docs", query={"match": {"foo": "bar"}}).body["count"] == 1
    assert es.indices.refresh(index="docs").body == {"_shards": {"total": 2, "successful": 1, "failed": 0}}

    deleted = es.delete(index="docs", id="1")
    assert (deleted.body["result"], deleted.body["_version"]) == ("deleted", 3)
    with pytest.raises(NotFoundError) as missing:
        es.delete(index="docs", id="1")
    assert missing.value.body["result"] == "not_found"
    with pytest.raises(NotFoundError) as gone:
        es.get(index="docs", id="1")
    assert gone.value.body == {"_index": "docs", "_id": "1", "found": False}
    with pytest.raises(NotFoundError) as no_index:
        es.get(index="nothing-here", id="1")
    assert no_index.value.body["error"]["type"] == "index_not_found_exception"


def test_version_conflicts(es: Elasticsearch) -> None:
    es.index(index="cas", id="1", document={"foo": "bar"})
    uuid = es.indices.get(index="cas").body["cas"]["settings"]["index"]["uuid"]
    with pytest.raises(ConflictError) as stale:
        es.index(index="cas", id="1", document={"foo": "baz"}, if_seq_no=10, if_primary_term=1)
    cause = {
        "type": "version_conflict_engine_exception",
        "reason": "[1]: version conflict, required seqNo [10], primary term [1]. current document has seqNo [0] "
        "and primary term [1]",
        "index_uuid": uuid,
        "shard": "0",
        "index": "cas",
    }
    assert stale.value.body == {"error": {"root_cause": [cause], **cause}, "status": 409}
    assert es.index(index="cas", id="1", document={"foo": "baz"}, if_seq_no=0, if_primary_term=1).body["_version"] == 2
    with pytest.raises(ConflictError) as exists:
        es.create(index="cas", id="1", document={"foo": "bar"})
    assert (
        exists.value.body["error"]["reason"] == "[1]: version conflict, document already exists (current version [2])"
    )
    with pytest.raises(ConflictError):
        es.update(index="cas", id="1", doc={"foo": "qux"}, if_seq_no=0, if_primary_term=1)
    with pytest.raises(NotFoundError) as missing:
        es.update(index="cas", id="2", doc={"foo": "qux"})
    assert missing.value.body["error"]["type"] == "document_missing_exception"
    assert missing.value.body["error"]["reason"] == "[2]: document missing"
    upsert = es.update(index="cas", id="2", doc={"foo": "qux"}, upsert={"foo": "first"})
    assert upsert.meta.status == 201 and es.get(index="cas", id="2").body["_source"] == {"foo": "first"}


def test_index_privileges_on_documents(es: Elasticsearch, server: Server) -> None:
    es.index(index="index-a", id="1", document={"title": "a"})
    es.index(index="index-b", id="1", document={"title": "b"})
    es.security.put_role(name="role-a", indices=[{"names": ["index-a"], "privileges": ["read"]}])
    es.security.put_user(username="reader", password="reader-secret", roles=["role-a"])
    reader = Elasticsearch(server.url, basic_auth=("reader", "reader-secret"))
    assert reader.get(index="index-a", id="1").body["_source"] == {"title": "a"}
    assert reader.count(index="index-a").body["count"] == 1
    assert reader.count(index="index-*").body["count"] == 1  # wildcards expand over what the caller may read
    with pytest.raises(AuthorizationException) as denied:
        reader.get(index="index-b", id="1")
    assert denied.value.body["error"]["reason"] == (
        "action [indices:data/read/get] is unauthorized for user [reader] with effective roles [role-a] on "
        "indices [index-b], this action is granted by the index privileges [read,all]"
    )
    with pytest.raises(AuthorizationException) as write:
        reader.index(index="index-a", id="2", document={"title": "x"})
    assert write.value.body["error"]["reason"] == (
        "action [indices:data/write/index] is unauthorized for user [reader] with effective roles [role-a] on "
        "indices [index-a], this action is granted by the index privileges [create_doc,create,index,write,all]"
    )
    with pytest.raises(AuthorizationException, match="indices:data/write/update"):
        reader.update(index="index-a", id="1", doc={"title": "x"})
    with pytest.raises(AuthorizationException, match="indices:data/write/delete"):
        reader.delete(index="index-a", id="1")
    with pytest.raises(AuthorizationException, match="indices:admin/create"):
        reader.indices.create(index="index-a2")

    # A writer on index-c* may write an existing index, but creating one on first write needs create_index.
    es.security.put_role(name="writer", indices=[{"names": ["index-c*"], "privileges": ["write"]}])
    es.security.put_user(username="writer", password="writer-secret", roles=["writer"])
    writer = Elasticsearch(server.url, basic_auth=("writer", "writer-secret"))
    with pytest.raises(AuthorizationException) as auto:
        writer.index(index="index-c1", id="1", document={"a": 1})
    assert auto.value.body["error"]["reason"].startswith("action [indices:admin/auto_create] is unauthorized")
    assert auto.value.body["error"]["reason"].endswith(
        "this action is granted by the index privileges [auto_configure,create_index,manage,all]"
    )
    es.indices.create(index="index-c1")
    assert writer.index(index="index-c1", id="1", document={"a": 1}).body["result"] == "created"
    with pytest.raises(AuthorizationException, match="indices:data/read/get"):
        writer.get(index="index-c1", id="1")


def test_api_keys_are_limited_by_their_role_descriptors(es: Elasticsearch, server: Server) -> None:
    es.index(index="index-a", id="1", document={"title": "a"})
    es.index(index="index-b", id="1", document={"title": "b"})
    key = es.security.create_api_key(
        name="key-a", role_descriptors={"role-a": {"indices": [{"names": ["index-a"], "privileges": ["read"]}]}}
    ).body
    client = Elasticsearch(server.url, api_key=key["encoded"])
    assert client.count(index="index-a").body["count"] == 1
    with pytest.raises(AuthorizationException) as denied:
        client.count(index="index-b")
    assert denied.value.body["error"]["reason"].startswith(
        f"action [indices:data/read/search] is unauthorized for API key id [{key['id']}] of user [elastic]"
    )
    with pytest.raises(AuthorizationException):
        client.index(index="index-a", id="2", document={"title": "x"})


def test_update_with_source_shows_the_updated_document(es: Elasticsearch) -> None:
    answer = es.update(index="books", id="1", doc={"a": 2}, upsert={"a": 1, "b": 1}, source=["a"]).body
    assert answer["result"] == "created"
    assert answer["get"]["found"] is True and answer["get"]["_source"] == {"a": 1}
    answer = es.update(index="books", id="1", doc={"a": 2}, source=True).body
    assert answer["get"]["_source"] == {"a": 2, "b": 1}
    assert "get" not in es.update(index="books", id="1", doc={"a": 3}).body
