"""Index and document operations, one per API: the rules of ``core`` over the repositories.

Writes retry when another writer came first (the repository's compare-and-set saw it): an
unconditional write applies on top of the newer document, a conditional one is checked again and
then refused with Elasticsearch's conflict.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from keyplane import ids
from keyplane.errors import InvalidArgument, KeyplaneError
from keyplane.indices import core, pushdown
from keyplane.indices.backends.base import DocStats, DocumentRepository, IndexRepository
from keyplane.indices.core import Condition, Expand, IndexMeta, OpType, Source, StoredDoc, UpdateSpec
from keyplane.indices.fields import IndexFields
from keyplane.indices.mappings import dynamic_update, merge
from keyplane.indices.pipeline import check_pipeline, ingest
from keyplane.indices.refresh import Refresh, visible_at_once
from keyplane.indices.scroll import Scrolls
from keyplane.indices.search import (
    SearchRequest,
    SearchResult,
    TermsLookup,
    lookup_values,
    page_result,
    pages_in_order,
    parsed_query,
    terms_lookups,
    with_lookups,
)
from keyplane.indices.search import run as run_search
from keyplane.indices.stats import IndexStats
from keyplane.query import memory
from keyplane.query.parser import Rules, parse_query
from keyplane.timevalue import now_ms

# Called before an index is created because a document was written to it: authorization raises here.
AutoCreateGuard = Callable[[str], None]

_ATTEMPTS = 64


# Slots, and not frozen: a bulk request builds one or more per document, and a frozen dataclass costs
# about three times as much to build (each field set through ``object.__setattr__``); nothing changes
# one once built (and none is hashed: it holds dicts).
@dataclass(slots=True)
class Written:
    """What a write did: ``result`` is created, updated, deleted, not_found or noop."""

    index: IndexMeta
    id: str
    result: str
    seq_no: int
    version: int
    primary_term: int = core.PRIMARY_TERM
    forced_refresh: bool = False  # the write's ``refresh=true`` refreshed the index
    source: Source | None = None  # what an update left (its answer may show it as ``get``)


class _Lost(KeyplaneError):
    """Every attempt lost its race with another writer (should not happen in practice)."""


def _alias_flag(spec: Any, key: str, default: bool = False) -> bool:
    value = spec.get(key) if isinstance(spec, dict) else None
    return default if value is None else value is True or str(value).lower() == "true"


def _new_uuid() -> str:
    return ids.urlsafe(secrets.token_bytes(16))[:22]


class IndexService:
    def __init__(self, indices: IndexRepository, documents: DocumentRepository) -> None:
        self.indices = indices
        self.documents = documents
        self.scrolls = Scrolls(now_ms)  # scroll contexts live in this process, as in an Elasticsearch node

    # -- indices -------------------------------------------------------------------------------------

    async def create(
        self,
        name: str,
        settings: dict[str, Any] | None = None,
        mappings: dict[str, Any] | None = None,
        aliases: dict[str, Any] | None = None,
    ) -> IndexMeta:
        core.check_name(name)
        core.check_mappings(mappings or {})
        meta = IndexMeta(
            name, _new_uuid(), now_ms(), core.flat_settings(settings or {}), dict(mappings or {}), dict(aliases or {})
        )
        created = await self.indices.create(meta)
        if created is None:
            existing = await self.indices.get(name)
            raise core.IndexExists(name, existing.uuid if existing else "_na_")
        return created

    async def resolve(self, expressions: list[str], expand: Expand, visible: Callable[[str], bool]) -> list[IndexMeta]:
        return core.resolve(expressions, await self.indices.list(), expand, visible)

    async def delete(self, indices: list[IndexMeta]) -> None:
        for meta in indices:
            await self.indices.delete(meta.name)

    async def get(self, name: str) -> IndexMeta:
        meta = await self.indices.get(name)
        if meta is None:
            raise core.IndexMissing(name)
        return meta

    async def write_index(self, name: str) -> IndexMeta | None:
        """The index a write to ``name`` goes to: that index, or the write index of the alias ``name``
        (its only index, or the one marked ``is_write_index``); None when neither exists."""
        meta = await self.indices.get(name)
        if meta is not None:
            return meta
        members = [m for m in await self.indices.list() if name in m.aliases]
        if not members:
            return None
        marked = [m for m in members if _alias_flag(m.aliases[name], "is_write_index")]
        if len(marked) == 1:
            return marked[0]
        if len(members) == 1 and _alias_flag(members[0].aliases[name], "is_write_index", True):
            return members[0]
        raise InvalidArgument(
            f"no write index is defined for alias [{name}]. The write index may be explicitly disabled using "
            "is_write_index=false or the alias points to multiple indices without one being designated as a "
            "write index"
        )

    async def _writable(self, name: str, auto_create: AutoCreateGuard | None) -> IndexMeta:
        """The index a document goes to, created first when missing (Elasticsearch's default)."""
        meta = await self.write_index(name)
        if meta is not None:
            return meta
        if auto_create is None:
            raise core.IndexMissing(name)
        auto_create(name)
        try:
            return await self.create(name)
        except core.IndexExists:
            return await self.get(name)  # created meanwhile by another request

    # -- documents -----------------------------------------------------------------------------------

    async def index(
        self,
        name: str,
        doc_id: str | None,
        source: Source,
        op: OpType,
        cond: Condition | None,
        auto_create: AutoCreateGuard | None,
        *,
        refresh: Refresh = Refresh.NONE,
        pipeline: str | None = None,
    ) -> Written:
        """Write the document as ``pipeline`` leaves it, mapping the fields it brings."""
        check_pipeline(pipeline)
        meta = await self._writable(name, auto_create)
        source = ingest(pipeline, source)
        meta = await self.map_dynamic(meta, source)
        doc_id = doc_id if doc_id is not None else ids.new_id()
        visible, forced = visible_at_once(meta, refresh), refresh is Refresh.IMMEDIATE
        for _ in range(_ATTEMPTS):
            current = await self.documents.get(meta.name, doc_id)
            core.check_write(meta, doc_id, current, op, cond)
            version = core.next_version(current)
            written = await self.documents.write(meta.name, doc_id, source, version, current, refresh=visible)
            if written is not None:
                result = "created" if current is None else "updated"
                return Written(meta, doc_id, result, written.seq_no, written.version, forced_refresh=forced)
        raise _Lost(f"[{doc_id}]: too many concurrent writes")

    async def get_doc(
        self, name: str, doc_id: str, *, realtime: bool = True, refresh: bool = False, version: int | None = None
    ) -> tuple[IndexMeta, StoredDoc | None]:
        """The latest version of the document, or with ``realtime=False`` the one searches see
        (after refreshing the index first with ``refresh``); with ``version``, a conflict unless it is that one."""
        meta = await self.get(name)
        if refresh:
            await self.documents.refresh(meta.name)
        doc = await self.documents.get(meta.name, doc_id, realtime=realtime)
        if doc is not None and version is not None and doc.version != version:
            raise core.VersionConflict(
                f"[{doc_id}]: version conflict, current version [{doc.version}] is different than the one "
                f"provided [{version}]",
                meta.name,
                meta.uuid,
            )
        return meta, doc

    async def refresh(self, indices: list[IndexMeta]) -> None:
        """Make every write so far visible to searches (``_refresh``)."""
        for meta in indices:
            await self.documents.refresh(meta.name)

    async def delete_doc(
        self, name: str, doc_id: str, cond: Condition | None, *, refresh: Refresh = Refresh.NONE
    ) -> Written:
        meta = await self.get(name)
        visible, forced = visible_at_once(meta, refresh), refresh is Refresh.IMMEDIATE
        for _ in range(_ATTEMPTS):
            current = await self.documents.get(meta.name, doc_id)
            if cond is not None:
                core.check_condition(meta, doc_id, current, cond)
            seq_no = await self.documents.delete(meta.name, doc_id, current, refresh=visible)
            if seq_no is not None:
                result = "not_found" if current is None else "deleted"
                return Written(meta, doc_id, result, seq_no, core.next_version(current), forced_refresh=forced)
        raise _Lost(f"[{doc_id}]: too many concurrent writes")

    async def update(
        self,
        name: str,
        doc_id: str,
        spec: UpdateSpec,
        cond: Condition | None,
        auto_create: AutoCreateGuard | None,
        *,
        refresh: Refresh = Refresh.NONE,
    ) -> Written:
        meta = await self._writable(name, auto_create)
        visible, forced = visible_at_once(meta, refresh), refresh is Refresh.IMMEDIATE
        for _ in range(_ATTEMPTS):
            current = await self.documents.get(meta.name, doc_id)
            result, source = core.apply_update(meta, doc_id, current, spec)
            if cond is not None:
                core.check_condition(meta, doc_id, current, cond)
            if result == "noop" and current is not None:
                if refresh is not Refresh.NONE:  # nothing written, but the caller still asked for a refresh
                    await self.documents.refresh(meta.name)
                return Written(meta, doc_id, result, current.seq_no, current.version, source=current.source)
            meta = await self.map_dynamic(meta, source)
            version = core.next_version(current)
            written = await self.documents.write(meta.name, doc_id, source, version, current, refresh=visible)
            if written is not None:
                return Written(
                    meta, doc_id, result, written.seq_no, written.version, forced_refresh=forced, source=source
                )
        raise _Lost(f"[{doc_id}]: too many concurrent writes")

    async def count(self, indices: list[IndexMeta], query: Any) -> int:
        """How many documents of the indices match ``query`` (None: all of them)."""
        total = 0
        for meta in indices:
            if query is None or (isinstance(query, dict) and list(query) == ["match_all"]):
                total += await self.documents.count(meta.name)
                continue
            parsed = parse_query(query, Rules(IndexFields(meta.mappings), strict=False))
            match = memory.compile_query(parsed)
            plan, exact = pushdown.plan(parsed)
            found = None
            if plan != pushdown.EVERYTHING or exact:
                found = await self.documents.matches(meta.name, plan, exact, (0, 0))
            if found is not None and found.total is not None:
                total += found.total
            elif found is not None:
                total += sum(1 for doc in found.docs if match({**doc.source, "_id": doc.id}))
            else:
                async for batch in self.documents.scan_batches(meta.name):
                    total += sum(1 for doc in batch if match({**doc.source, "_id": doc.id}))
        return total

    async def search(
        self, indices: list[IndexMeta], request: SearchRequest, scroll: tuple[str, int] | None = None
    ) -> tuple[SearchResult, str | None]:
        """Every hit of the search over the indices, in order (the caller takes its page), and with
        ``scroll`` (owner, keep-alive ms) the id of a scroll context whose first batch is that page."""
        lookups = terms_lookups(request.query)
        if lookups:
            found: dict[TermsLookup, list[Any]] = {}
            for lookup in lookups:
                doc = await self.documents.get(lookup.index, lookup.id)  # a get: realtime, as in Elasticsearch
                found[lookup] = lookup_values(doc.source if doc else None, lookup.path)
            request = replace(request, query=with_lookups(request.query, found))
        ordered = sorted(indices, key=lambda m: m.name)
        result = await self._pushed_down(ordered, request, scroll is None)
        if result is None:
            loaded: list[tuple[IndexMeta, list[StoredDoc]]] = []
            for meta in ordered:
                docs: list[StoredDoc] = []
                async for batch in self.documents.scan_batches(meta.name):
                    docs.extend(batch)
                loaded.append((meta, docs))
            result = run_search(loaded, request)
        if scroll is None:
            return result, None
        owner, keep_alive_ms = scroll
        return result, self.scrolls.open(owner, result, request, keep_alive_ms)

    async def _pushed_down(self, indices: list[IndexMeta], request: SearchRequest, paged: bool) -> SearchResult | None:
        """The search with its matching left to the store (``pushdown.py``); None when a full scan is
        needed. Unsorted pages are counted and read by the store; otherwise the store finds the
        candidates and the in-memory search orders (and checks) them."""
        plans = []
        for meta in indices:
            query = parsed_query(meta, request)
            plan, exact = pushdown.plan(query)
            if plan == pushdown.EVERYTHING and not exact:
                return None  # nothing to narrow the scan with
            plans.append((meta, query, plan, exact))
        if paged and pages_in_order(request):
            pages = []
            skip, want = request.start, request.size
            for meta, query, plan, exact in plans:
                found = await self.documents.matches(meta.name, plan, exact, (skip, want))
                if found is None or found.total is None:
                    break
                pages.append((meta, query, found.docs, found.total))
                skip, want = max(skip - found.total, 0), want - len(found.docs)
            else:
                return page_result(pages, request)
        if any(key.kind == "_doc" for key in request.sort):
            return None  # _doc sort values are positions among every document
        loaded: list[tuple[IndexMeta, list[StoredDoc]]] = []
        for meta, _, plan, exact in plans:
            found = await self.documents.matches(meta.name, plan, exact, None)
            if found is None:
                return None
            loaded.append((meta, found.docs))
        return run_search(loaded, request)

    async def reset(self) -> None:
        self.scrolls.reset()
        await self.indices.delete_all()

    # -- index metadata: mappings and statistics ------------------------------------------------------

    async def put_mapping(self, indices: list[IndexMeta], update: dict[str, Any]) -> None:
        """Merge ``update`` into each index's mappings (a type change is refused before any is written)."""
        core.check_mappings(update)
        for meta in indices:
            merge(meta.mappings, update)
        for meta in indices:
            await self._remap(meta, lambda current: merge(current, update))

    async def map_dynamic(self, meta: IndexMeta, source: Source) -> IndexMeta:
        """The index once the fields ``source`` brings are mapped (dynamic mapping); for the write path."""
        if dynamic_update(meta.mappings, source) is None:
            return meta
        return await self._remap(meta, lambda current: dynamic_update(current, source) or current)

    async def map_dynamic_all(self, meta: IndexMeta, sources: list[Source]) -> IndexMeta:
        """The index once the fields every source brings are mapped, in one update (a bulk's batch)."""

        def change(current: dict[str, Any]) -> dict[str, Any]:
            for source in sources:
                current = dynamic_update(current, source) or current
            return current

        return await self._remap(meta, change)

    async def _remap(self, meta: IndexMeta, change: Callable[[dict[str, Any]], dict[str, Any]]) -> IndexMeta:
        for _ in range(_ATTEMPTS):
            new = change(meta.mappings)
            if new == meta.mappings:
                return meta
            if await self.indices.set_mappings(meta, new):
                return replace(meta, mappings=new)
            meta = await self.get(meta.name)  # changed meanwhile: apply the change to the newer mappings
        raise _Lost(f"[{meta.name}]: too many concurrent mapping updates")

    async def stats(self, indices: list[IndexMeta]) -> list[IndexStats]:
        measured = await self.indices.doc_stats()
        counted = [(m, measured.get(m.name, DocStats(0, 0))) for m in indices]
        return [IndexStats(m, found.count, found.source_bytes) for m, found in counted]
