"""Searches pushed down to the store (term rows, ``indices/pushdown.py``) answer exactly as the in-memory
search over every document: generated documents, writes, refreshes and queries, on the store under test."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyplane.errors import KeyplaneError
from keyplane.indices.backends.base import DocWrite
from keyplane.indices.backends.sql import SqlDocumentRepository, SqlIndexRepository
from keyplane.indices.core import IndexMeta, StoredDoc
from keyplane.indices.refresh import refreshes_on_write
from keyplane.indices.search import SearchRequest, SearchResult, parse_sort
from keyplane.indices.search import run as run_search
from keyplane.indices.service import IndexService
from keyplane.store.database import Database
from keyplane.store.migrations import migrate

NAMES = ["a", "b", "c"]
FIELDS = ["a", "b", "c", "a.x", "b.keyword", "_id", "c.y.z", "a.x.keyword"]

# Values of regular documents, and now and then one that makes its document irregular (evaluated in memory).
regular = st.one_of(
    st.integers(0, 2),
    st.integers(0, 2),
    st.sampled_from([0.5, -1.5, 2.0, 1e20]),
    st.booleans(),
    st.sampled_from(["", "x", "X", "y", "1", "true", "a b", "é", "x\x01y"]),
)
scalars = st.one_of(regular, regular, regular, st.sampled_from(["z\x00", "L" * 2000, 2**60]))
values = st.one_of(scalars, st.none(), st.lists(st.one_of(scalars, st.none()), max_size=3))
leaf_or_object = st.one_of(values, values, st.dictionaries(st.sampled_from(["x", "y", "x", "x.y"]), values, max_size=2))
keys = st.sampled_from(NAMES * 6 + ["a.x", "_id", "a\x01"])
sources = st.dictionaries(keys, leaf_or_object, max_size=3)
# Ids holding NUL and the stores' escape character: PostgreSQL is given them sealed, as stored.
ids = st.sampled_from(["1", "2", "3", "4", "5", "6", "7", "8", "9", "x", "n\x00", "e\uffff"])
query_values = st.one_of(scalars, st.none())


def leaves() -> st.SearchStrategy[dict[str, Any]]:
    field = st.sampled_from(NAMES * 3 + FIELDS)
    bound = st.one_of(st.integers(0, 2), st.integers(0, 2), st.sampled_from([0.5, "x", "", "b", "y", True, 2**60]))
    return st.one_of(
        st.just({"match_all": {}}),
        st.builds(lambda f, v: {"term": {f: v}}, field, query_values),
        st.builds(lambda f, v: {"term": {f: {"value": v, "case_insensitive": True}}}, field, scalars),
        st.builds(lambda f, v: {"terms": {f: v}}, field, st.lists(query_values, max_size=3)),
        st.builds(lambda v: {"ids": {"values": v}}, st.lists(ids, max_size=3)),
        st.builds(lambda f: {"exists": {"field": f}}, field),
        st.builds(
            lambda f, b: {"range": {f: b}},
            field,
            st.dictionaries(st.sampled_from(["gt", "gte", "lt", "lte"]), bound, max_size=2),
        ),
        st.builds(lambda f, v: {"prefix": {f: v}}, field, st.sampled_from(["x", "t", "1"])),
        st.builds(lambda f, v: {"match": {f: v}}, field, st.sampled_from(["x", "a", "y b"])),
    )


queries = st.recursive(
    leaves(),
    lambda inner: st.builds(
        lambda must, should, must_not, minimum: {
            "bool": {
                "must": must,
                "should": should,
                "must_not": must_not,
                **({"minimum_should_match": minimum} if minimum is not None else {}),
            }
        },
        st.lists(inner, max_size=2),
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=2),
        st.one_of(st.none(), st.integers(-1, 3)),
    ),
    max_leaves=6,
)
index_op = st.tuples(st.just("index"), ids, sources)
operations = st.lists(
    st.one_of(
        index_op,
        index_op,
        index_op,
        st.tuples(st.just("delete"), ids, st.none()),
        st.tuples(st.just("bulk"), st.lists(st.tuples(ids, st.one_of(st.none(), sources)), max_size=4), st.none()),
        st.tuples(st.just("refresh"), st.none(), st.none()),
    ),
    min_size=5,
    max_size=20,
)
requests = st.fixed_dictionaries(
    {
        "query": queries,
        "sort": st.sampled_from([None, "a", "a:desc", "b.keyword", "_doc", "_score"]),
        "from": st.integers(0, 4),
        "size": st.integers(0, 4),
        "track": st.sampled_from([True, False, 2, 10_000]),
        "scroll": st.booleans(),
    }
)
_names = itertools.count()


def _shown(result: SearchResult, hits: Any) -> Any:
    return (
        [(h.index.name, h.doc.id, h.doc.seq_no, h.doc.source, h.score, h.sort) for h in hits],
        result.total,
        result.total_is_exact,
        result.max_score,
    )


async def _reference(svc: IndexService, metas: list[IndexMeta], request: SearchRequest) -> SearchResult:
    loaded: list[tuple[IndexMeta, list[StoredDoc]]] = []
    for meta in sorted(metas, key=lambda m: m.name):
        loaded.append((meta, [doc async for doc in svc.documents.scan(meta.name)]))
    return run_search(loaded, request)


async def _compare(svc: IndexService, metas: list[IndexMeta], spec: dict[str, Any]) -> None:
    """The search and count of ``spec`` answer as the in-memory search over every document."""
    request = SearchRequest(spec["query"], parse_sort(spec["sort"]), spec["from"], spec["size"], spec["track"])
    scroll = ("me", 60_000) if spec["scroll"] else None
    try:
        want = await _reference(svc, metas, request)
    except KeyplaneError as exc:
        want_error = (type(exc), str(exc))
        try:
            await svc.search(metas, request, scroll)
        except KeyplaneError as refused:
            assert (type(refused), str(refused)) == want_error
            return
        raise AssertionError(f"no error, expected {want_error}") from None
    got, _ = await svc.search(metas, request, scroll)
    if scroll is not None:
        assert _shown(got, got.hits) == _shown(want, want.hits)
    window = (request.start, request.size)
    assert _shown(got, got.page(*window)) == _shown(want, want.page(*window)), spec
    assert await svc.count(metas, spec["query"]) == len(want.hits), spec  # every match, as _count counts


async def _apply(svc: IndexService, name: str, ops: list[Any]) -> None:
    for op, doc_id, body in ops:
        try:
            if op == "index":
                await svc.index(name, doc_id, body, "index", None, None)
            elif op == "delete":
                await svc.delete_doc(name, doc_id, None)
            elif op == "refresh":
                await svc.refresh([await svc.get(name)])
            else:
                writes: list[DocWrite] = []
                latest: dict[str, StoredDoc | None] = {}
                for one_id, source in doc_id:
                    latest.setdefault(one_id, await svc.documents.get(name, one_id))
                    before = latest[one_id]
                    version = 1 if before is None else before.version + 1
                    writes.append(DocWrite(one_id, source, version))
                    latest[one_id] = None if source is None else StoredDoc(one_id, source, -1, version)
                expected = {i: await svc.documents.get(name, i) for i, _ in doc_id}
                meta = await svc.get(name)
                for _, source in doc_id:
                    if source is not None:
                        meta = await svc.map_dynamic(meta, source)
                await svc.documents.write_many(name, writes, expected, refresh=refreshes_on_write(meta))
        except KeyplaneError:
            pass  # a mapping conflict: the write is refused, as it would be through the API


def test_pushed_down_searches_answer_as_the_in_memory_search(database_url: str) -> None:
    loop = asyncio.new_event_loop()
    db = Database(database_url)
    loop.run_until_complete(db.open())
    loop.run_until_complete(migrate(db))
    svc = IndexService(SqlIndexRepository(db), SqlDocumentRepository(db))

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        ops=st.lists(operations, min_size=1, max_size=2),
        manual=st.booleans(),
        asked=st.lists(requests, min_size=1, max_size=8),
    )
    def check(ops: list[list[Any]], manual: bool, asked: list[dict[str, Any]]) -> None:
        async def go() -> None:
            metas = []
            for part in ops:
                name = f"p{next(_names)}"
                await svc.create(name, {"index.refresh_interval": "-1"} if manual else {})
                await _apply(svc, name, part)
                metas.append(await svc.get(name))
            for spec in asked:
                await _compare(svc, metas, spec)

        loop.run_until_complete(go())

    try:
        check()
    finally:
        loop.run_until_complete(db.close())
        loop.close()


CORPUS = [
    {"s": "x", "n": 1, "f": 1.5, "b": True, "arr": ["x", 2, False, None], "o": {"k": "v", "n": 2}},
    {"s": "X", "n": 2, "f": -0.5, "b": False, "arr": [], "o": {"k": "w"}},
    {"s": "1", "n": 0, "f": 2.0, "b": "true", "arr": [["nested"], {"in": "list"}], "o": None},
    {"s": "", "n": -1, "f": 1e20, "arr": "y", "o": {}},
    {"s": "é", "n": "2", "b": 1, "arr": [None]},
    {"s": "a b", "n": 1.0, "o": {"k": ["v", "w"], "deep": {"er": True}}},
    {"s.dotted": "x", "n": 3},  # irregular: a dotted key
    {"s": "L" * 2000, "n": 2**60},  # irregular: a long string, a big integer
    {},
]
PROBES: list[dict[str, Any]] = [
    {"match_all": {}},
    *(
        {"term": {field: value}}
        for field in ("s", "n", "f", "b", "arr", "o.k", "o")
        for value in ("x", 1, 1.5, True, "true", "1", 2)
    ),
    {"term": {"_id": "3"}},
    {"term": {"_id": 3}},
    {"terms": {"s": ["x", "X", "", "é"]}},
    {"terms": {"n": [1, "2", 2.0]}},
    {"ids": {"values": ["1", "4", "nope"]}},
    *({"exists": {"field": f}} for f in ("s", "n", "arr", "o", "o.k", "o.deep", "o.deep.er", "missing", "_id")),
    *({"range": {"n": {op: bound}}} for op in ("gt", "gte", "lt", "lte") for bound in (0, 1, 1.0, 2)),
    {"range": {"f": {"gte": -0.5, "lt": 2.0}}},
    {"range": {"b": {"gte": 1}}},
    {"range": {"s": {"gt": "", "lte": "x"}}},
    {"range": {"s": {"gte": "X"}}},
    {"range": {"arr": {"lt": "z"}}},
    {"bool": {"must": [{"exists": {"field": "s"}}], "must_not": [{"term": {"s": "x"}}]}},
    {"bool": {"should": [{"term": {"n": 1}}, {"term": {"s": "X"}}, {"term": {"b": True}}], "minimum_should_match": 2}},
    {"bool": {"filter": [{"range": {"n": {"gte": 0}}}], "should": [{"prefix": {"s": "x"}}]}},
    {"bool": {"must_not": [{"match": {"s": "b"}}]}},
]


def test_pushed_down_searches_answer_as_the_in_memory_search_on_each_kind_of_value(database_url: str) -> None:
    async def go() -> None:
        db = Database(database_url)
        await db.open()
        await migrate(db)
        svc = IndexService(SqlIndexRepository(db), SqlDocumentRepository(db))
        try:
            await svc.create("corpus", {"index.refresh_interval": "-1"})
            for n, source in enumerate(CORPUS):
                await svc.documents.write("corpus", str(n), source, 1, None, refresh=n < len(CORPUS) - 1)
            metas = [await svc.get("corpus")]
            for query in PROBES:
                for sort, size, scroll in ((None, 20, False), ("n", 3, False), (None, 2, True)):
                    spec = {"query": query, "sort": sort, "from": 1, "size": size, "track": True, "scroll": scroll}
                    await _compare(svc, metas, spec)
        finally:
            await db.close()

    asyncio.run(go())


def test_ids_holding_nul_and_the_escape_character_are_found_by_id(database_url: str) -> None:
    odd = ["n\x00", "e\uffff", "both\x00\uffff"]

    async def go() -> None:
        db = Database(database_url)
        await db.open()
        await migrate(db)
        svc = IndexService(SqlIndexRepository(db), SqlDocumentRepository(db))
        try:
            await svc.create("odd")
            for doc_id in [*odd, "plain"]:
                await svc.documents.write("odd", doc_id, {"id": doc_id, "t": "x"}, 1, None)
            metas = [await svc.get("odd")]
            for query in (
                {"ids": {"values": odd}},
                {"term": {"_id": "n\x00"}},
                {"bool": {"filter": [{"ids": {"values": odd[1:]}}, {"term": {"t": "x"}}]}},
            ):
                spec = {"query": query, "sort": None, "from": 0, "size": 10, "track": True, "scroll": False}
                await _compare(svc, metas, spec)
            request = SearchRequest(query={"ids": {"values": odd}}, size=10)
            result, _ = await svc.search(metas, request)
            assert sorted(hit.doc.id for hit in result.hits) == sorted(odd)
        finally:
            await db.close()

    asyncio.run(go())
