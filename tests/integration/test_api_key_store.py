"""The API-key repository on a real store: query tree to SQL, sort, search_after, aggregations."""

from __future__ import annotations

import asyncio

from keyplane.api.aggregations import render_aggregations
from keyplane.apikeys import core, hashing
from keyplane.apikeys.backends.base import KeyFilter
from keyplane.apikeys.backends.sql import SqlApiKeyRepository
from keyplane.apikeys.core import ApiKey, Creator
from keyplane.apikeys.query import parse_aggs, parse_query, parse_sort
from keyplane.query.aggs import CompositeResult
from keyplane.store.database import Database
from keyplane.store.migrations import migrate


def _key(i: int, owner: str, **kw) -> ApiKey:  # type: ignore[no-untyped-def]
    return ApiKey(
        id=f"key{i:03d}",
        name=kw.get("name", f"k-{i}"),
        type=kw.get("type", core.REST),
        creation=1000 + i,
        expiration=kw.get("expiration"),
        invalidated=kw.get("invalidated", False),
        invalidation=None,
        hash=hashing.hash_secret("s"),
        creator=Creator(owner, None, None, {}, "default_native", "native"),
        metadata=kw.get("metadata"),
    )


async def _repo(url: str) -> tuple[Database, SqlApiKeyRepository]:
    db = Database(url)
    await db.open()
    await migrate(db)
    repo = SqlApiKeyRepository(db)
    for i in range(10):
        owner = "ann" if i % 2 else "bob"
        await repo.insert(
            _key(
                i,
                owner,
                expiration=5000 + i if i < 5 else None,
                metadata={"env": "prod" if i < 3 else "dev", "n": i},
                type=core.CROSS_CLUSTER if i == 9 else core.REST,
            )
        )
    return db, repo


def test_search_sort_and_search_after(database_url: str) -> None:
    async def go() -> None:
        db, repo = await _repo(database_url)
        q = parse_query(
            {
                "bool": {
                    "filter": [{"term": {"invalidated": False}}, {"term": {"type": "rest"}}],
                    "should": [
                        {"range": {"expiration": {"gt": 5002}}},
                        {"bool": {"must_not": {"exists": {"field": "expiration"}}}},
                    ],
                    "minimum_should_match": 1,
                }
            }
        )
        sort = parse_sort([{"creation": "desc"}])
        page = await repo.search(q, sort, 0, 3, None, 0)
        assert page.total == 6  # keys 3..8
        assert [k.id for k in page.keys] == ["key008", "key007", "key006"]
        nxt = await repo.search(q, sort, 0, 3, page.sort_values[-1], 0)
        assert [k.id for k in nxt.keys] == ["key005", "key004", "key003"]
        meta = await repo.search(parse_query({"term": {"metadata.env": "prod"}}), [], 0, 10, None, 0)
        assert {k.id for k in meta.keys} == {"key000", "key001", "key002"}
        num = await repo.search(parse_query({"term": {"metadata.n": "4"}}), [], 0, 10, None, 0)
        assert [k.id for k in num.keys] == ["key004"]
        wild = await repo.search(parse_query({"wildcard": {"name": "k-?"}}), [], 0, 0, None, 0)
        assert wild.total == 10 and wild.keys == []
        missing_last = await repo.search(parse_query(None), parse_sort(["expiration"]), 0, 10, None, 0)
        assert [k.expiration for k in missing_last.keys][-1] is None
        await db.close()

    asyncio.run(go())


def test_aggregations(database_url: str) -> None:
    async def go() -> None:
        db, repo = await _repo(database_url)
        aggs = parse_aggs(
            {
                "owners": {"terms": {"field": "username"}, "aggs": {"types": {"terms": {"field": "type"}}}},
                "never": {"missing": {"field": "expiration"}},
                "pairs": {
                    "composite": {
                        "sources": [{"u": {"terms": {"field": "username"}}}, {"t": {"terms": {"field": "type"}}}]
                    }
                },
                "names": {"cardinality": {"field": "name"}},
                "soon": {"range": {"field": "expiration", "ranges": [{"to": 5003}, {"from": 5003}]}},
                "f": {"filters": {"filters": {"prod": {"term": {"metadata.env": "prod"}}}}},
                "expiring": {"date_range": {"field": "expiration", "ranges": [{"from": "1970-01-01T00:00:05.002Z"}]}},
                "with_expiry": {"value_count": {"field": "expiration"}},
                "bob_only": {
                    "filter": {"term": {"username": "bob"}},
                    "aggs": {"n": {"cardinality": {"field": "name"}}},
                },
            }
        )
        out = render_aggregations(aggs, await repo.aggregate(parse_query(None), aggs), typed_keys=True)
        owners = out["sterms#owners"]["buckets"]
        assert [(b["key"], b["doc_count"]) for b in owners] == [("ann", 5), ("bob", 5)]
        assert owners[0]["sterms#types"]["buckets"][0]["doc_count"] == 4
        assert out["missing#never"]["doc_count"] == 5
        assert out["composite#pairs"]["buckets"][0] == {"key": {"u": "ann", "t": "cross_cluster"}, "doc_count": 1}
        assert out["cardinality#names"]["value"] == 10
        assert [b["doc_count"] for b in out["range#soon"]["buckets"]] == [3, 2]
        assert out["filters#f"]["buckets"]["prod"]["doc_count"] == 3
        assert out["date_range#expiring"]["buckets"][0]["doc_count"] == 3
        assert out["date_range#expiring"]["buckets"][0]["from_as_string"] == "1970-01-01T00:00:05.002Z"
        assert out["value_count#with_expiry"]["value"] == 5
        assert out["filter#bob_only"]["doc_count"] == 5
        assert out["filter#bob_only"]["cardinality#n"]["value"] == 5
        await db.close()

    asyncio.run(go())


def test_metadata_reads_like_a_flattened_field(database_url: str) -> None:
    """Leaves are keywords (true is "true", 42 is "42"), array elements match one by one, objects do not."""

    async def go() -> None:
        db = Database(database_url)
        await db.open()
        await migrate(db)
        repo = SqlApiKeyRepository(db)
        await repo.insert(_key(1, "ann", metadata={"managed": True, "n": 42, "tags": ["prod", "eu"], "o": {"k": "v"}}))
        await repo.insert(_key(2, "ann", metadata={"managed": False, "tags": "prod", "n": "42"}))
        await repo.insert(_key(3, "bob", metadata={"other": 1}))

        async def ids(query: dict) -> list[str]:  # type: ignore[type-arg]
            page = await repo.search(parse_query(query), parse_sort(["name"]), 0, 10, None, 0)
            return [k.id for k in page.keys]

        assert await ids({"term": {"metadata.managed": True}}) == ["key001"]
        assert await ids({"term": {"metadata.managed": "false"}}) == ["key002"]
        assert await ids({"term": {"metadata.n": 42}}) == ["key001", "key002"]
        assert await ids({"term": {"metadata.tags": "eu"}}) == ["key001"]
        assert await ids({"terms": {"metadata.tags": ["prod", "x"]}}) == ["key001", "key002"]
        assert await ids({"term": {"metadata.o": "v"}}) == []
        assert await ids({"term": {"metadata.o.k": "v"}}) == ["key001"]
        assert await ids({"bool": {"must_not": {"term": {"metadata.tags": "eu"}}}}) == ["key002", "key003"]
        aggs = parse_aggs(
            {
                "m": {"terms": {"field": "metadata.managed"}},
                "tags": {
                    "terms": {"field": "metadata.tags", "size": 1},
                    "aggs": {"u": {"terms": {"field": "username"}}},
                },
                "distinct_tags": {"cardinality": {"field": "metadata.tags"}},
                "tag_values": {"value_count": {"field": "metadata.tags"}},
                "untagged": {"missing": {"field": "metadata.tags"}},
                "no_object_values": {"value_count": {"field": "metadata.o"}},
            }
        )
        out = render_aggregations(aggs, await repo.aggregate(parse_query(None), aggs))
        assert [(b["key"], b["doc_count"]) for b in out["m"]["buckets"]] == [("false", 1), ("true", 1)]
        # Each element of an array is a value of its own: "prod" is in two keys, "eu" in one.
        assert out["tags"]["buckets"] == [{"key": "prod", "doc_count": 2, "u": out["tags"]["buckets"][0]["u"]}]
        assert out["tags"]["buckets"][0]["u"]["buckets"] == [{"key": "ann", "doc_count": 2}]
        assert out["tags"]["sum_other_doc_count"] == 1
        assert out["distinct_tags"] == {"value": 2}
        assert out["tag_values"] == {"value": 3}
        assert out["untagged"] == {"doc_count": 1}
        assert out["no_object_values"] == {"value": 0}
        pairs = parse_aggs(
            {
                "c": {
                    "composite": {
                        "sources": [
                            {"tag": {"terms": {"field": "metadata.tags", "missing_bucket": True}}},
                            {"user": {"terms": {"field": "username"}}},
                        ]
                    },
                    "aggs": {"n": {"value_count": {"field": "name"}}},
                }
            }
        )
        composite = render_aggregations(pairs, await repo.aggregate(parse_query(None), pairs))["c"]["buckets"]
        assert [(b["key"]["tag"], b["key"]["user"], b["doc_count"], b["n"]["value"]) for b in composite] == [
            (None, "bob", 1, 1),
            ("eu", "ann", 1, 1),
            ("prod", "ann", 2, 2),
        ]
        await db.close()

    asyncio.run(go())


def test_composite_missing_bucket_and_order(database_url: str) -> None:
    async def go() -> None:
        db, repo = await _repo(database_url)  # key009 is the only cross-cluster key; keys 0-4 expire

        async def run(sources: list, after: dict | None = None, size: int = 10) -> list:  # type: ignore[type-arg]
            spec: dict = {"sources": sources, "size": size}  # type: ignore[type-arg]
            if after is not None:
                spec["after"] = after
            out = await repo.aggregate(parse_query(None), parse_aggs({"c": {"composite": spec}}))
            result = out["c"]
            assert isinstance(result, CompositeResult)
            return [(tuple(b.key.values()), b.doc_count) for b in result.buckets]

        expiry = {"e": {"terms": {"field": "expiration"}}}
        assert len(await run([expiry])) == 5  # keys without a value are left out by default
        with_missing = {"e": {"terms": {"field": "expiration", "missing_bucket": True}}}
        rows = await run([with_missing])
        assert rows[0] == ((None,), 5) and len(rows) == 6  # the missing bucket first when ascending
        assert await run([with_missing], after={"e": None}, size=2) == [((5000,), 1), ((5001,), 1)]
        newest = {"e": {"terms": {"field": "expiration", "missing_bucket": True, "order": "desc"}}}
        rows = await run([newest])
        assert rows[0] == ((5004,), 1) and rows[-1] == ((None,), 5)  # and last when descending
        assert await run([newest], after={"e": 5000}) == [((None,), 5)]
        await db.close()

    asyncio.run(go())


def test_invalidate_replace_and_remove(database_url: str) -> None:
    async def go() -> None:
        db, repo = await _repo(database_url)
        assert await repo.invalidate(["key001", "key002", "nope"], 7000) == ["key001", "key002"]
        assert await repo.invalidate(["key001"], 7001) == []
        found = await repo.find(KeyFilter(username="ann", exclude_invalidated=True), 0)
        assert "key001" not in {k.id for k in found}
        key = await repo.get("key003")
        assert key is not None
        stale = await repo.get("key003")
        key.metadata = {"changed": True}
        assert await repo.replace_many([key]) == {"key003"}
        assert stale is not None and await repo.replace_many([stale]) == set()  # lost the race: refused
        assert (await repo.get("key003")).metadata == {"changed": True}  # type: ignore[union-attr]
        await repo.record_last_used({"key004": 9000})
        assert (await repo.get("key004")).last_used == 9000  # type: ignore[union-attr]
        removed = await repo.delete_inactive(before=7000)
        assert removed == 5  # keys 0..4 expired before 7000 (key001 and key002 are among them)
        await db.close()

    asyncio.run(go())
