"""``_bulk`` and ``_mget`` through the official Python client, with per-item results and index privileges."""

from __future__ import annotations

import httpx
import pytest
from elasticsearch import AuthorizationException, BadRequestError, Elasticsearch, helpers

from tests.e2e.server import Server


def test_bulk_items_answer_one_by_one(es: Elasticsearch) -> None:
    answer = es.bulk(
        refresh=True,
        operations=[
            {"index": {"_index": "books", "_id": "1"}},
            {"title": "one"},
            {"create": {"_index": "books", "_id": "1"}},
            {"title": "again"},
            {"update": {"_index": "books", "_id": "1"}},
            {"doc": {"pages": 10}},
            {"update": {"_index": "books", "_id": "2"}},
            {"doc": {"title": "two"}, "doc_as_upsert": True},
            {"delete": {"_index": "books", "_id": "3"}},
            {"delete": {"_index": "nothing-here", "_id": "1"}},
            {"index": {"_index": "books", "_id": "1", "if_seq_no": 0, "if_primary_term": 1}},
            {"title": "stale"},
        ],
    ).body
    assert answer["errors"] is True and isinstance(answer["took"], int)
    items = answer["items"]
    assert items[0]["index"] == {
        "_index": "books",
        "_id": "1",
        "_version": 1,
        "result": "created",
        "_shards": {"total": 2, "successful": 1, "failed": 0},
        "_seq_no": 0,
        "_primary_term": 1,
        "forced_refresh": True,  # refresh=true: each item says its write was refreshed, as in Elasticsearch
        "status": 201,
    }
    conflict = items[1]["create"]
    assert conflict["status"] == 409 and conflict["error"]["type"] == "version_conflict_engine_exception"
    assert conflict["error"]["reason"] == "[1]: version conflict, document already exists (current version [1])"
    assert set(conflict["error"]) == {"type", "reason", "index_uuid", "shard", "index"}
    assert (items[2]["update"]["result"], items[2]["update"]["_version"], items[2]["update"]["status"]) == (
        "updated",
        2,
        200,
    )
    assert (items[3]["update"]["result"], items[3]["update"]["status"]) == ("created", 201)
    assert (items[4]["delete"]["result"], items[4]["delete"]["status"]) == ("not_found", 404)
    assert "error" not in items[4]["delete"]
    assert items[5]["delete"]["error"]["type"] == "index_not_found_exception"
    assert items[6]["index"]["status"] == 409
    assert es.indices.exists(index="nothing-here").body is False  # a delete never creates its index
    assert es.get(index="books", id="1").body["_source"] == {"title": "one", "pages": 10}

    docs = es.mget(
        docs=[{"_index": "books", "_id": "1"}, {"_index": "books", "_id": "9"}, {"_index": "gone", "_id": "1"}]
    ).body["docs"]
    assert docs[0]["found"] is True and docs[0]["_source"] == {"title": "one", "pages": 10}
    assert docs[0]["_version"] == 2 and docs[0]["_seq_no"] == 1
    assert docs[1] == {"_index": "books", "_id": "9", "found": False}
    assert docs[2]["error"]["type"] == "index_not_found_exception"
    by_ids = es.mget(index="books", ids=["1", "2"], source_includes=["title"]).body["docs"]
    assert [d["_source"] for d in by_ids] == [{"title": "one"}, {"title": "two"}]


def test_helpers_bulk_and_the_default_ingestion_pipeline(es: Elasticsearch) -> None:
    actions = ({"_index": "content", "_id": str(i), "_source": {"n": i}} for i in range(250))
    done, errors = helpers.bulk(es, actions, chunk_size=100)
    assert (done, errors) == (250, [])
    assert es.count(index="content").body["count"] == 250
    answer = es.bulk(
        pipeline="search-default-ingestion",
        operations=[
            {"index": {"_index": "content", "_id": "x"}},
            {
                "body": " a  \n b ",
                "_reduce_whitespace": True,
                "_extract_binary_content": True,
                "_run_ml_inference": False,
            },
            {"index": {"_index": "content", "_id": "y", "pipeline": "missing"}},
            {"body": "b"},
        ],
    ).body
    assert answer["items"][0]["index"]["result"] == "created"
    assert answer["items"][1]["index"]["status"] == 400
    assert answer["items"][1]["index"]["error"] == {
        "type": "illegal_argument_exception",
        "reason": "pipeline with id [missing] does not exist",
    }
    assert es.get(index="content", id="x").body["_source"] == {"body": "a b"}


def test_malformed_bodies_are_refused_whole(http: httpx.Client) -> None:
    ndjson = {"Content-Type": "application/x-ndjson"}
    bad = http.post("/_bulk", content=b'{"index":"x"}\n', headers=ndjson)
    assert bad.status_code == 400
    assert bad.json()["error"]["reason"] == (
        "Malformed action/metadata line [1], expected START_OBJECT or END_OBJECT but found [VALUE_STRING]"
    )
    empty = http.post("/_bulk", content=b'{"index":{"_index":"a","_id":"1"}}\n{"f":1}\n{}\n', headers=ndjson)
    assert (
        empty.json()["error"]["reason"]
        == "Malformed action/metadata line [3], expected FIELD_NAME but found [END_OBJECT]"
    )
    unknown = http.post("/_bulk", content=b'{"upsert":{}}\n', headers=ndjson)
    assert (
        "expected field [create], [delete], [index] or [update] but found [upsert]" in unknown.json()["error"]["reason"]
    )
    no_index = http.post("/_bulk", content=b'{"index":{}}\n{"f":1}\n', headers={"Content-Type": "application/json"})
    assert no_index.json()["error"]["type"] == "action_request_validation_exception"


def test_bulk_and_mget_check_index_privileges_per_item(es: Elasticsearch, server: Server) -> None:
    es.index(index="index-a", id="1", document={"title": "a"})
    es.index(index="index-b", id="1", document={"title": "b"})
    es.security.put_role(name="role-a", indices=[{"names": ["index-a"], "privileges": ["read"]}])
    es.security.put_user(username="reader", password="reader-secret", roles=["role-a"])
    reader = Elasticsearch(server.url, basic_auth=("reader", "reader-secret"))
    # Reading only: bulk is not granted on any index, so the whole request is refused.
    with pytest.raises(AuthorizationException) as denied:
        reader.bulk(operations=[{"index": {"_index": "index-a", "_id": "2"}}, {"title": "x"}])
    assert denied.value.body["error"]["reason"] == (
        "action [indices:data/write/bulk] is unauthorized for user [reader] with effective roles [role-a], "
        "this action is granted by the index privileges [create_doc,create,delete,index,write,all]"
    )
    docs = reader.mget(docs=[{"_index": "index-a", "_id": "1"}, {"_index": "index-b", "_id": "1"}]).body["docs"]
    assert docs[0]["_source"] == {"title": "a"}
    assert docs[1]["error"]["type"] == "security_exception"
    assert docs[1]["error"]["reason"].startswith(
        "action [indices:data/read/mget[shard]] is unauthorized for user [reader]"
    )

    es.security.put_role(name="role-w", indices=[{"names": ["index-a"], "privileges": ["write"]}])
    es.security.put_user(username="writer", password="writer-secret", roles=["role-w"])
    writer = Elasticsearch(server.url, basic_auth=("writer", "writer-secret"))
    items = writer.bulk(
        operations=[
            {"index": {"_index": "index-a", "_id": "2"}},
            {"title": "x"},
            {"index": {"_index": "index-b", "_id": "2"}},
            {"title": "x"},
            {"delete": {"_index": "index-b", "_id": "1"}},
            {"index": {"_index": "index-new", "_id": "1"}},
            {"title": "x"},
        ]
    ).body["items"]
    assert items[0]["index"]["result"] == "created"
    assert items[1]["index"]["status"] == 403
    assert items[1]["index"]["error"] == {
        "type": "security_exception",
        "reason": "action [indices:data/write/index:op_type/index] is unauthorized for user [writer] with effective "
        "roles [role-w] on indices [index-b], this action is granted by the index privileges [create,index,write,all]",
    }
    assert items[2]["delete"]["error"]["reason"].startswith("action [indices:data/write/delete] is unauthorized")
    assert items[3]["index"]["error"]["reason"].startswith("action [indices:admin/auto_create] is unauthorized")
    assert es.count(index="index-b").body["count"] == 1


def test_an_api_key_with_write_bulk_indexes_into_its_index(es: Elasticsearch, server: Server) -> None:
    es.indices.create(index="index-a")
    key = es.security.create_api_key(
        name="key-a", role_descriptors={"role-a": {"indices": [{"names": ["index-a"], "privileges": ["write"]}]}}
    ).body
    client = Elasticsearch(server.url, api_key=key["encoded"])
    done, _ = helpers.bulk(client, ({"_index": "index-a", "_id": str(i), "_source": {"i": i}} for i in range(5)))
    assert done == 5
    assert es.count(index="index-a").body["count"] == 5
    with pytest.raises(AuthorizationException):
        client.count(index="index-a")
    with pytest.raises(BadRequestError):
        client.bulk(operations=[{"index": {}}, {"i": 1}])


def test_require_alias_and_update_items_showing_their_source(es: Elasticsearch) -> None:
    es.indices.create(index="backing", aliases={"books-alias": {}})
    answer = es.bulk(
        require_alias=True,
        operations=[
            {"index": {"_index": "not-an-alias", "_id": "1"}},
            {"f": 1},
            {"index": {"_index": "created-anyway", "_id": "1", "require_alias": False}},
            {"f": 2},
            {"index": {"_index": "books-alias", "_id": "1"}},
            {"f": 3, "g": 4},
            {"update": {"_index": "books-alias", "_id": "1", "_source": {"includes": "f"}}},
            {"doc": {"f": 5}},
        ],
    ).body
    items = answer["items"]
    assert items[0]["index"]["status"] == 404
    assert items[0]["index"]["error"]["type"] == "index_not_found_exception"
    assert items[0]["index"]["error"]["reason"] == (
        "no such index [not-an-alias] and [require_alias] request flag is [true] and [not-an-alias] is not an alias"
    )
    assert items[1]["index"]["result"] == "created"
    assert items[2]["index"]["_index"] == "backing"  # written through the alias
    assert items[3]["update"]["get"]["_source"] == {"f": 5}
    assert not es.indices.exists(index="not-an-alias")
