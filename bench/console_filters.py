"""The web console's API-key list over a seeded store: every filter, sort and page it can send.

The request bodies are built as keyplane/console/static/js/keys.js and key_health.js build them
(search text, type, owner, status, sort, 25 a page, then ``search_after``; keys expiring within
7 days, keys unused for 30 days), parsed as the REST handler parses them, and answered by the
store's own repository in this process: the times are the server's work for one request (total
and page), without HTTP.

Run: python bench/console_filters.py (--data-dir DIR | --database-url postgresql://...) [--runs 5]
     [--all] [--slower-than 50] [--types ,rest,cross_cluster,managed] [--only 'last_used,unused']
Seed a store first with ``python bench/scale.py --data-dir DIR`` (or ``--database-url``); scale.py's
keys have no ``last_used``: ``--last-used`` gives 5 in 8 keys one between creation and now, once.
``--all`` times each of the thousands of combinations once and prints those slower than
``--slower-than`` ms; without it, a table of representative shapes, p50 and p95 of ``--runs``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent.parent))
from keyplane.apikeys.backends.sql import SqlApiKeyRepository  # noqa: E402
from keyplane.apikeys.query import parse_query, parse_sort  # noqa: E402
from keyplane.store.database import Database  # noqa: E402
from keyplane.store.migrations import migrate  # noqa: E402
from keyplane.timevalue import now_ms  # noqa: E402

SORTS = ["creation:desc", "creation:asc", "name:asc", "name:desc", "expiration:asc", "last_used:desc", "last_used:asc"]
TEXTS = ["", "key-12345", "key-1", "user042", "key-9*"]
TYPES = ["", "rest", "cross_cluster", "managed"]
OWNERS = ["", "user042", "elastic"]
STATUSES = ["", "active", "expired", "invalidated"]


def console_query(text: str = "", kind: str = "", owner: str = "", status: str = "") -> dict[str, Any]:
    """keys.js buildQuery, in Python."""
    filters: list[Any] = []
    bool_: dict[str, Any] = {}
    text = text.strip()
    if text:
        by_name = (
            {"wildcard": {"name": {"value": text}}} if any(c in text for c in "*?") else {"prefix": {"name": text}}
        )
        should = [by_name, {"term": {"username": text}}, {"ids": {"values": [text]}}]
        filters.append({"bool": {"should": should, "minimum_should_match": 1}})
    if kind in ("rest", "cross_cluster"):
        filters.append({"term": {"type": kind}})
    elif kind == "managed":
        filters.append({"term": {"metadata.managed": True}})
    if owner:
        filters.append({"term": {"username": owner}})
    if status == "active":
        filters.append({"term": {"invalidated": False}})
        bool_["should"] = [
            {"range": {"expiration": {"gt": "now"}}},
            {"bool": {"must_not": {"exists": {"field": "expiration"}}}},
        ]
        bool_["minimum_should_match"] = 1
    elif status == "expired":
        filters += [{"term": {"invalidated": False}}, {"range": {"expiration": {"lte": "now"}}}]
    elif status == "invalidated":
        filters.append({"term": {"invalidated": True}})
    if not filters and not bool_:
        return {"match_all": {}}
    if filters:
        bool_["filter"] = filters
    return {"bool": bool_}


def console_sort(value: str) -> list[Any]:
    field, order = value.split(":")
    return [{field: {"order": order}}, "_doc"]


def expiring_query(days: int) -> dict[str, Any]:
    """key_health.js expiringQuery."""
    window = {"range": {"expiration": {"gt": "now", "lte": f"now+{days}d"}}}
    return {"bool": {"must_not": [{"term": {"invalidated": True}}], "filter": [window]}}


def unused_query(days: int) -> dict[str, Any]:
    """key_health.js unusedQuery."""
    before = f"now-{days}d"
    unused = {
        "bool": {
            "should": [
                {"range": {"last_used": {"lt": before}}},
                {
                    "bool": {
                        "must_not": {"exists": {"field": "last_used"}},
                        "filter": {"range": {"creation": {"lt": before}}},
                    }
                },
            ],
            "minimum_should_match": 1,
        }
    }
    live = {
        "bool": {
            "should": [
                {"bool": {"must_not": {"exists": {"field": "expiration"}}}},
                {"range": {"expiration": {"gt": "now"}}},
            ],
            "minimum_should_match": 1,
        }
    }
    return {"bool": {"must_not": [{"term": {"invalidated": True}}], "filter": [unused, live]}}


Shape = tuple[str, dict[str, Any], list[Any], int]


def representative() -> list[Shape]:
    """The shapes of the table: one filter or sort at a time, and the slow ones found before."""
    out: list[Shape] = [("list, newest first", {"match_all": {}}, console_sort("creation:desc"), 25)]
    for status in ("active", "expired", "invalidated"):
        out.append((f"{status}, newest first", console_query(status=status), console_sort("creation:desc"), 25))
    for kind in ("rest", "cross_cluster", "managed"):
        out.append(
            (f"type {kind} + active", console_query(kind=kind, status="active"), console_sort("creation:desc"), 25)
        )
    # Managed keys are few (scale.py seeds none): their walk in creation order or by name is long.
    out.append(("type managed, sort name:asc", console_query(kind="managed"), console_sort("name:asc"), 25))
    out.append(
        ("type managed + expired", console_query(kind="managed", status="expired"), console_sort("creation:desc"), 25)
    )
    out.append(
        ("owner user042 + active", console_query(owner="user042", status="active"), console_sort("creation:desc"), 25)
    )
    for text_ in ("key-12345", "key-1", "user042", "key-9*"):
        out.append(
            (
                f"search {text_!r} + active",
                console_query(text=text_, status="active"),
                console_sort("creation:desc"),
                25,
            )
        )
    for sort in SORTS[1:]:
        out.append((f"sort {sort}", {"match_all": {}}, console_sort(sort), 25))
        out.append((f"active, sort {sort}", console_query(status="active"), console_sort(sort), 25))
    out.append(("expiring within 7 days", expiring_query(7), [{"expiration": {"order": "asc"}}, "_doc"], 100))
    out.append(("unused for 30 days", unused_query(30), [{"creation": {"order": "asc"}}, "_doc"], 100))
    return out


def every_combination(types: list[str]) -> list[Shape]:
    out: list[Shape] = []
    for text_, kind, owner, status, sort in itertools.product(TEXTS, types, OWNERS, STATUSES, SORTS):
        label = f"text={text_!r} type={kind!r} owner={owner!r} status={status!r} sort={sort}"
        out.append((label, console_query(text_, kind, owner, status), console_sort(sort), 25))
    out.append(("expiring within 7 days", expiring_query(7), [{"expiration": {"order": "asc"}}, "_doc"], 100))
    out.append(("unused for 30 days", unused_query(30), [{"creation": {"order": "asc"}}, "_doc"], 100))
    return out


async def run_once(repo: SqlApiKeyRepository, shape: Shape, after: list[Any] | None) -> tuple[float, Any]:
    _, body, sort_body, size = shape
    start = time.perf_counter()
    query, sort = parse_query(body), parse_sort(sort_body)
    page = await repo.search(query, sort, 0, size, after, now_ms())
    return (time.perf_counter() - start) * 1000, page


async def measure(db: Database, shapes: list[Shape], runs: int, slower_than: float | None) -> None:
    repo = SqlApiKeyRepository(db)
    for shape in shapes:
        label = shape[0]
        first: list[float] = []
        nxt: list[float] = []
        page: Any = None
        for _ in range(runs):
            took, page = await run_once(repo, shape, None)
            first.append(took)
            if page.sort_values:
                took, _ = await run_once(repo, shape, page.sort_values[-1])
                nxt.append(took)
        p50, p50_next = statistics.median(first), statistics.median(nxt) if nxt else 0.0
        if slower_than is not None:
            if max(p50, p50_next) > slower_than:
                print(f"{p50:8.1f} {p50_next:8.1f} ms  total {page.total:>9,}  {label}", flush=True)
            continue
        p95 = max(first) if len(first) < 20 else statistics.quantiles(first, n=20)[-1]
        print(f"| {label} | {page.total:,} | {p50:.1f} | {p95:.1f} | {p50_next:.1f} |", flush=True)


async def give_last_used(db: Database) -> None:
    now = now_ms()
    spread = "(hashtext(id) & 1048575)::bigint" if db.is_postgres else "(abs(random()) % 1048576)"
    async with db.transaction() as conn:
        await conn.execute(
            text(
                f"UPDATE api_keys SET last_used = creation + {spread} * ({now} - creation) / 1048576 "
                f"WHERE last_used IS NULL AND ({spread} & 7) < 5"
            )
        )


async def main_async(args: argparse.Namespace) -> None:
    db = Database(args.database_url) if args.database_url else Database.for_data_dir(args.data_dir)
    await db.open()
    try:
        await migrate(db)
        if args.last_used:
            await give_last_used(db)
        shapes = every_combination(args.types.split(",")) if args.all else representative()
        if args.only:
            shapes = [s for s in shapes if any(part in s[0] for part in args.only.split(","))]
        if not args.all:
            print("| shape | total | first page p50 ms | p95 ms | next page p50 ms |")
            print("|---|---:|---:|---:|---:|")
        await measure(db, shapes, 1 if args.all else args.runs, args.slower_than if args.all else None)
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--all", action="store_true", help="every combination once; print the slow ones")
    parser.add_argument("--slower-than", type=float, default=50.0)
    parser.add_argument("--types", default=",".join(TYPES), help="with --all: the type filters, comma-separated")
    parser.add_argument("--last-used", action="store_true", help="give 5 in 8 keys a last_used first")
    parser.add_argument("--only", default="", help="the shapes whose label holds one of these comma-separated texts")
    args = parser.parse_args()
    if not args.data_dir and not args.database_url:
        parser.error("--data-dir or --database-url")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
