"""The query engine's SQL evaluator on a real store, over a table of its own (not API keys): conditions,
sorts, search_after and aggregations, checked against the in-memory evaluator on the same documents."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, MetaData, Table, func, insert, select

from keyplane.api.aggregations import render_aggregations
from keyplane.query import memory
from keyplane.query.aggs import CompositeResult, TermsResult
from keyplane.query.backends.sql import SqlIndex, SqlQuery
from keyplane.query.fields import Field, FieldMap, FieldType
from keyplane.query.parser import Rules, parse_aggs, parse_query, parse_sort
from keyplane.store.database import Database
from keyplane.store.nul import SafeJSON, SafeString

_md = MetaData()
docs_table = Table(
    "query_engine_docs",
    _md,
    Column("id", SafeString(32), primary_key=True),
    Column("title", SafeString(64), nullable=True),
    Column("published", BigInteger, nullable=True),
    Column("draft", Boolean, nullable=False),
    Column("labels", SafeJSON(none_as_null=True), nullable=True),
)
FIELDS = FieldMap(
    {
        "title": Field("title", FieldType.KEYWORD),
        "published": Field("published", FieldType.DATE),
        "draft": Field("draft", FieldType.BOOLEAN),
        "labels": Field("labels", FieldType.FLATTENED),
    }
)
RULES = Rules(FIELDS, aggregations=frozenset({"terms", "composite", "filters", "missing", "cardinality"}))
INDEX = SqlIndex(
    table=docs_table,
    id=docs_table.c.id,
    columns={name: docs_table.c[name] for name in ("title", "published", "draft")},
    flattened={"labels": docs_table.c.labels},
    doc_order=docs_table.c.id,
)
SQL = SqlQuery(INDEX)
DOCS: list[dict[str, Any]] = [
    {"id": "d1", "title": "alpha", "published": 1000, "draft": False, "labels": {"env": ["prod", "eu"], "n": 3}},
    {"id": "d2", "title": "beta", "published": 2000, "draft": True, "labels": {"env": "dev", "ok": True}},
    {"id": "d3", "title": "Gamma", "published": None, "draft": False, "labels": None},
    {"id": "d4", "title": None, "published": 3000, "draft": False, "labels": {"env": "prod", "n": "3"}},
]
QUERIES: list[Any] = [
    None,
    {"term": {"title": "beta"}},
    {"term": {"title": {"value": "GAMMA", "case_insensitive": True}}},
    {"term": {"draft": "true"}},
    {"term": {"labels.env": "prod"}},
    {"term": {"labels.n": 3}},
    {"term": {"labels.ok": True}},
    {"terms": {"labels.env": ["eu", "dev"]}},
    {"terms": {"title": ["alpha", "Gamma", "x"]}},
    {"prefix": {"title": "a"}},
    {"wildcard": {"title": "?e*"}},
    {"exists": {"field": "title"}},
    {"exists": {"field": "labels.env"}},
    {"range": {"published": {"gte": "1970-01-01T00:00:02Z"}}},
    {"range": {"published": {"gt": 1000, "lt": 3000}}},
    {"ids": {"values": ["d2", "d4", "x"]}},
    {"bool": {"must_not": [{"exists": {"field": "published"}}]}},
    {"bool": {"must_not": [{"term": {"labels.env": "prod"}}]}},
    {
        "bool": {
            "filter": [{"term": {"draft": False}}],
            "should": [{"term": {"title": "alpha"}}, {"term": {"title": "Gamma"}}],
            "minimum_should_match": 1,
        }
    },  # noqa: E501
    {
        "bool": {
            "should": [{"term": {"draft": True}}, {"prefix": {"title": "G"}}, {"exists": {"field": "labels"}}],
            "minimum_should_match": 2,
        }
    },  # noqa: E501
]


async def _store(url: str) -> Database:
    db = Database(url)
    await db.open()
    async with db.transaction() as conn:
        await conn.run_sync(_md.create_all)
        for doc in DOCS:
            await conn.execute(insert(docs_table).values(**doc))
    return db


async def _ids(db: Database, query: Any) -> list[str]:
    tree = parse_query(query, RULES)
    stmt = select(docs_table.c.id).where(SQL.where(tree)).order_by(docs_table.c.id)
    async with db.transaction() as conn:
        rows = (await conn.execute(stmt)).rows
        total = 0
        for sign, part in SQL.count_parts(tree):
            count = select(func.count()).select_from(docs_table).where(part)
            total += sign * int((await conn.execute(count)).scalar() or 0)
    found = [r["id"] for r in rows]
    assert total == len(found), query
    return found


def test_sql_and_memory_agree(database_url: str) -> None:
    async def go() -> None:
        db = await _store(database_url)
        for query in QUERIES:
            matches = memory.compile_query(parse_query(query, RULES))
            expected = [d["id"] for d in DOCS if matches({**d, "_id": d["id"]})]
            assert await _ids(db, query) == expected, query
        await db.close()

    asyncio.run(go())


def test_sort_and_search_after(database_url: str) -> None:
    async def go() -> None:
        db = await _store(database_url)
        sort = parse_sort([{"published": "desc"}, "title"], RULES)

        async def page(after: list[Any] | None) -> list[str]:
            cond = SQL.where(parse_query(None, RULES))
            if after:
                cond = cond & SQL.after(sort, after)
            stmt = select(docs_table.c.id).where(cond).order_by(*SQL.order_by(sort)).limit(2)
            async with db.transaction() as conn:
                return [r["id"] for r in (await conn.execute(stmt)).rows]

        assert await page(None) == ["d4", "d2"]  # missing values last
        assert await page([2000, "beta"]) == ["d1", "d3"]
        assert await page(["1970-01-01T00:00:01Z", "alpha"]) == ["d3"]  # dates come back as text too
        await db.close()

    asyncio.run(go())


def test_aggregations_return_typed_results(database_url: str) -> None:
    async def go() -> None:
        db = await _store(database_url)
        aggs = parse_aggs(
            {
                "env": {"terms": {"field": "labels.env"}, "aggs": {"drafts": {"terms": {"field": "draft"}}}},
                "pages": {"composite": {"size": 2, "sources": [{"d": {"terms": {"field": "draft"}}}]}},
                "untitled": {"missing": {"field": "title"}},
                "titles": {"cardinality": {"field": "title"}},
                "kinds": {"filters": {"filters": {"old": {"range": {"published": {"lt": 2000}}}}}},
            },
            RULES,
        )
        async with db.transaction() as conn:
            results = await SQL.aggregate(conn, aggs, parse_query(None, RULES), postgres=db.is_postgres)
        env = results["env"]
        assert isinstance(env, TermsResult)
        assert [(b.key, b.doc_count) for b in env.buckets] == [("prod", 2), ("dev", 1), ("eu", 1)]
        pages = results["pages"]
        assert isinstance(pages, CompositeResult) and pages.after_key == {"d": True}
        out = render_aggregations(aggs, results, typed_keys=True)
        assert out["sterms#env"]["buckets"][0]["lterms#drafts"]["buckets"] == [
            {"key": 0, "key_as_string": "false", "doc_count": 2}
        ]
        assert out["composite#pages"]["buckets"] == [
            {"key": {"d": False}, "doc_count": 3},
            {"key": {"d": True}, "doc_count": 1},
        ]
        assert out["missing#untitled"] == {"doc_count": 1}
        assert out["cardinality#titles"] == {"value": 3}
        assert out["filters#kinds"] == {"buckets": {"old": {"doc_count": 1}}}
        await db.close()

    asyncio.run(go())
