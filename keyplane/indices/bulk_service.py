"""Bulk writes and multi-gets, item by item, over the single-document operations of ``IndexService``.

Each item goes through the same write as its single-document API, so versions, sequence numbers and
conflicts are the same; an item that fails fails alone and the rest go on, as in Elasticsearch.
Authorization is the caller's (``ItemGuard``): it raises for an item the caller may not write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from keyplane import ids
from keyplane.errors import KeyplaneError
from keyplane.indices import core
from keyplane.indices.backends.base import DocWrite, ReadMark
from keyplane.indices.bulk import BulkItem, GetItem, ItemFailure, document_problem
from keyplane.indices.core import IndexMeta, Source, StoredDoc
from keyplane.indices.mappings import LEAF_TYPES, StrictDynamicMapping, dynamic_update, maps_every_field
from keyplane.indices.pipeline import check_pipeline, ingest
from keyplane.indices.refresh import Refresh, visible_at_once
from keyplane.indices.service import AutoCreateGuard, IndexService, Written

# Raises when the caller may not run the item's action on the index named.
ItemGuard = Callable[[BulkItem, str], None]


class DocumentUnparsable(KeyplaneError):
    """A document line the mapper cannot read (400 document_parsing_exception)."""


class AliasRequired(core.IndexMissing):
    """``require_alias`` on a name that is no alias (404 index_not_found_exception)."""

    def __init__(self, name: str) -> None:
        core.IndexFailure.__init__(
            self,
            f"no such index [{name}] and [require_alias] request flag is [true] and [{name}] is not an alias",
            name,
        )


@dataclass(frozen=True)
class Fetched:
    """One multi-get item: the index it was read from and the document, if any."""

    index: IndexMeta
    doc: StoredDoc | None


async def _target(
    service: IndexService, item: BulkItem, auto_create: AutoCreateGuard, known: dict[str, IndexMeta] | None = None
) -> IndexMeta:
    """The item's index (an alias's write index), created first when missing and the item may create it
    (deletes never do). ``known`` remembers the answer per name given, for the items of one request."""
    name = item.index or ""
    meta = known.get(name) if known is not None else None
    if meta is None:
        meta = await service.write_index(name)
    if meta is not None:
        if item.require_alias and meta.name == name:
            raise AliasRequired(name)
    else:
        if item.require_alias:
            raise AliasRequired(name)
        if item.action == "delete":
            raise core.IndexMissing(name)
        auto_create(name)
        try:
            meta = await service.create(name)
        except core.IndexExists:
            meta = await service.get(name)  # created meanwhile by another request
    if known is not None:
        known[name] = meta
    return meta


def _check_item(item: BulkItem) -> None:
    """What fails an index or create item before its index is looked up: ingest runs before a missing
    index is created, so an unknown pipeline creates nothing."""
    if item.action in ("index", "create"):
        check_pipeline(item.pipeline)
        if item.id == "":
            raise ItemFailure("if _id is specified it must not be empty")


def _check_document(item: BulkItem) -> None:
    problem = document_problem(item.source)
    if problem is not None:
        raise DocumentUnparsable(problem)


async def _one(
    service: IndexService, item: BulkItem, guard: ItemGuard, auto_create: AutoCreateGuard, refresh: Refresh
) -> Written:
    _check_item(item)
    name = (await _target(service, item, auto_create)).name
    guard(item, name)
    if item.action == "delete":
        assert item.id is not None  # checked when parsed
        return await service.delete_doc(name, item.id, item.cond, refresh=refresh)
    if item.action == "update":
        assert item.id is not None and item.update is not None
        return await service.update(name, item.id, item.update, item.cond, auto_create, refresh=refresh)
    _check_document(item)
    return await service.index(
        name, item.id, item.source, item.action, item.cond, auto_create, refresh=refresh, pipeline=item.pipeline
    )


async def bulk_per_item(
    service: IndexService,
    items: list[BulkItem],
    guard: ItemGuard,
    auto_create: AutoCreateGuard,
    *,
    refresh: Refresh = Refresh.NONE,
) -> list[Written | KeyplaneError]:
    """Run every item in order through its single-document operation (one transaction each): the
    reference the batched ``bulk`` answers like, and its way out when another writer races it."""
    outcomes: list[Written | KeyplaneError] = []
    for item in items:
        try:
            outcomes.append(await _one(service, item, guard, auto_create, refresh))
        except KeyplaneError as exc:
            outcomes.append(exc)
    return outcomes


async def bulk(
    service: IndexService,
    items: list[BulkItem],
    guard: ItemGuard,
    auto_create: AutoCreateGuard,
    *,
    refresh: Refresh = Refresh.NONE,
) -> list[Written | KeyplaneError]:
    """Run every item in order; each answer is what it wrote or the error it failed with. ``refresh``
    applies to each item's write, so the items are visible when the answer is.

    Items are decided a chunk at a time, with the answers ``bulk_per_item`` would give: the chunk's
    documents are read in one query per index, each item is checked against what the items before it
    left, and the writes go to the store in one transaction per index."""
    batch = _Batch(service, items, guard, auto_create, refresh)
    for start in range(0, len(items), _CHUNK):
        await batch.run(range(start, min(start + _CHUNK, len(items))))
    return [out if out is not None else _Lost("item left unanswered") for out in batch.outcomes]


# Items decided and written together: one transaction (one fsync) per index for this many documents.
_CHUNK = 1000


class _Lost(KeyplaneError):
    """An item the batch did not answer (a bug if seen)."""


class _Raced(Exception):
    """Another writer changed the index or a document the batch read: its items run one by one."""


class _Guessed(Exception):
    """A document taken to be missing without a read exists (or another writer came first): nothing
    was written, and the chunk's items are decided again from the documents read."""


# By index uuid: whether the documents last read for a bulk were all missing (a load of new documents),
# so the next chunk's are taken to be missing without a read. A hint only: a wrong one costs a write
# that fails and a second decision of the chunk, never a different answer.
_FRESH: dict[str, bool] = {}
_FRESH_KEPT = 4096


def _remember_fresh(uuid: str, fresh: bool) -> None:
    if len(_FRESH) >= _FRESH_KEPT and uuid not in _FRESH:
        _FRESH.clear()
    _FRESH[uuid] = fresh


# Slots and not frozen: built for every document of a bulk, and a frozen dataclass costs several times
# as much to build (each field set through ``object.__setattr__``); nothing changes them once built.
@dataclass(slots=True)
class _Prepared:
    """An item whose index is known and that the caller may write: what is left depends on the documents."""

    pos: int
    item: BulkItem
    index: str
    doc_id: str
    source: Source | None = None  # index and create: the document as the pipeline left it


@dataclass(slots=True)
class _Planned:
    """An item decided in memory, waiting for its write (and the sequence number it takes)."""

    pos: int
    write: DocWrite
    result: str
    shown: Source | None  # an update's answer carries the document it left


def _dynamic_update(mappings: dict[str, Any], source: Source) -> dict[str, Any] | None:
    """``dynamic_update``, first tried on the mapped fields the document names only (the ones it reads):
    a large mappings is copied whole only for a document that brings a new field."""
    if maps_every_field(mappings, source):
        return None
    props = mappings.get("properties")
    if isinstance(props, dict) and len(props) > len(source):
        names = {key.partition(".")[0] for key in source}
        named = {**mappings, "properties": {name: props[name] for name in names if name in props}}
        if dynamic_update(named, source) is None:
            return None
    return dynamic_update(mappings, source)


class _Batch:
    def __init__(
        self,
        service: IndexService,
        items: list[BulkItem],
        guard: ItemGuard,
        auto_create: AutoCreateGuard,
        refresh: Refresh,
    ) -> None:
        self.service, self.items, self.guard, self.auto_create, self.refresh = (
            service,
            items,
            guard,
            auto_create,
            refresh,
        )
        self.outcomes: list[Written | KeyplaneError | None] = [None] * len(items)
        self.targets: dict[str, IndexMeta] = {}  # by the name an item gives: its write index
        self.indices: dict[str, IndexMeta] = {}  # by index name: the metadata as stored
        # By (index, id): the document as the items decided so far leave it (seq_no -1 until written).
        self.state: dict[tuple[str, str], StoredDoc | None] = {}
        # By index: the mark its known documents (``state``) were all read at, when they were.
        self.marks: dict[str, ReadMark | None] = {}
        # The group: what is decided but not written yet.
        # By index, then id: the document as stored when first written in the group.
        self.read: dict[str, dict[str, StoredDoc | None]] = {}
        self.planned: dict[str, list[_Planned]] = {}
        self.members: dict[str, list[int]] = {}  # every item decided against the index's documents
        self.mappings: dict[str, dict[str, Any]] = {}  # mappings with the group's new fields
        self.mapped: dict[str, list[Source]] = {}  # the group's documents that bring new fields
        self.refresh_after: set[str] = set()  # noop updates asked to refresh
        self.assumed: str | None = None  # the index whose documents were taken to be missing (``_fresh``)
        # By index: a mappings object, and the top-level field names of documents found to bring nothing new
        # to it (every name mapped): a document of the same names with plain values needs no check.
        self.mapped_names: dict[str, tuple[dict[str, Any], set[tuple[str, ...]]]] = {}

    async def run(self, positions: range) -> None:
        self.state.clear()  # read again: another writer may have changed the documents meanwhile
        self.marks.clear()
        prepared: list[_Prepared] = []
        items, targets = self.items, self.targets
        for pos in positions:
            item = items[pos]
            try:
                _check_item(item)
                # The index of a name seen before in the request, without a coroutine per document.
                meta = None if item.require_alias else targets.get(item.index or "")
                if meta is None:
                    meta = await _target(self.service, item, self.auto_create, targets)
                prepared.append(self._prepare(pos, item, meta))
            except KeyplaneError as exc:
                self.outcomes[pos] = exc
        index = self._fresh(prepared)
        if index is not None:
            # Documents taken to be new are not read: the write's insert refuses any that exists
            # (``write_many``), and then the chunk is decided again from what is stored.
            uuid = self.indices[index].uuid
            for p in prepared:
                self.state[(index, p.doc_id)] = None
            try:
                await self._decide_all(prepared, assumed=index)
                return
            except _Guessed:
                _FRESH[uuid] = False
                self.state.clear()
                self.marks.clear()
                for p in prepared:
                    self.outcomes[p.pos] = None
        await self._decide_all(prepared)

    def _fresh(self, prepared: list[_Prepared]) -> str | None:
        """The index of the chunk's items when all of them are likely to create their documents, so
        that the documents need not be read first: every item indexes or creates a document of one
        index, without a condition, each id once, and the ids are generated here or the index's
        documents last read in a bulk were all missing (a load of new documents)."""
        if not prepared:
            return None
        index = prepared[0].index
        meta = self.indices.get(index)
        if meta is None:
            return None
        generated = True
        for p in prepared:
            item = p.item
            if p.index != index or item.cond is not None or item.action not in ("index", "create"):
                return None
            generated = generated and item.id is None
        if not generated and not _FRESH.get(meta.uuid, False):
            return None
        if len({p.doc_id for p in prepared}) != len(prepared):
            return None
        return index

    async def _decide_all(self, prepared: list[_Prepared], assumed: str | None = None) -> None:
        """Decide and write the prepared items. ``assumed``: the index whose documents were taken to be
        missing without a read; its write failing raises ``_Guessed`` instead of running items alone."""
        self.assumed = assumed
        state, indices = self.state, self.indices
        for n, p in enumerate(prepared):
            if p.index in indices and (p.index, p.doc_id) in state:
                # The usual case, decided without a coroutine.
                self.members.setdefault(p.index, []).append(p.pos)
                try:
                    if self._decide(p):
                        await self._flush_before(p)
                except KeyplaneError as exc:
                    self.outcomes[p.pos] = exc
            else:
                await self._next(p, prepared, n)
        await self._flush(last=True)

    async def _next(self, p: _Prepared, rest: list[_Prepared], start: int = 0) -> None:
        """Decide the item ``p``; ``rest[start:]`` (from ``p`` on) are read with it when its document is not known."""
        if p.index not in self.indices:  # forgotten after a race: read again
            meta = await self.service.indices.get(p.index)
            if meta is None:  # deleted meanwhile: the item goes its own way (it may create the index)
                await self._alone(p.pos)
                return
            self.indices[p.index] = meta
        if (p.index, p.doc_id) not in self.state:
            await self._load(rest, start)
        self.members.setdefault(p.index, []).append(p.pos)
        try:
            if self._decide(p):
                await self._flush_before(p)
        except KeyplaneError as exc:
            self.outcomes[p.pos] = exc

    async def _alone(self, pos: int) -> None:
        try:
            self.outcomes[pos] = await _one(self.service, self.items[pos], self.guard, self.auto_create, self.refresh)
        except KeyplaneError as exc:
            self.outcomes[pos] = exc

    # -- before the documents: as _one, with the indices looked up once per request -------------------

    def _prepare(self, pos: int, item: BulkItem, meta: IndexMeta) -> _Prepared:
        """The item, checked (``_check_item``) and its index ``meta`` found."""
        self.indices.setdefault(meta.name, meta)
        name = meta.name
        self.guard(item, name)
        if item.action in ("delete", "update"):
            assert item.id is not None  # checked when parsed
            return _Prepared(pos, item, name, item.id)
        _check_document(item)
        doc_id = item.id if item.id is not None else ids.new_id()
        return _Prepared(pos, item, name, doc_id, ingest(item.pipeline, item.source))

    async def _load(self, prepared: list[_Prepared], start: int = 0) -> None:
        """Read the documents of the items ``prepared[start:]`` not known yet, one query per index."""
        wanted: dict[str, list[str]] = {}
        for n in range(start, len(prepared)):
            p = prepared[n]
            if (p.index, p.doc_id) not in self.state:
                wanted.setdefault(p.index, []).append(p.doc_id)
        for index, doc_ids in wanted.items():
            known = any(key[0] == index for key in self.state)
            found, mark = await self.service.documents.read_many(index, doc_ids)
            if (meta := self.indices.get(index)) is not None:
                _remember_fresh(meta.uuid, not found)
            # The index's documents known so far were read at one mark, or not: the write compares them.
            self.marks[index] = mark if not known or self.marks.get(index) == mark else None
            for doc_id in doc_ids:
                self.state[(index, doc_id)] = found.get(doc_id)

    # -- deciding: the rules of IndexService.index/update/delete_doc, in the same order ------------------

    def _decide(self, p: _Prepared) -> bool:
        """Decide the item in memory; True when it must wait for the group's write first (then decided
        again by ``_flush_before``)."""
        item, key = p.item, (p.index, p.doc_id)
        read = self.read.get(p.index)
        if item.cond is not None and read is not None and p.doc_id in read:
            # The condition compares the sequence number of a write not made yet: make it first.
            return True
        current = self.state[key]
        meta = self.indices[p.index]
        if item.action == "delete":
            if item.cond is not None:
                core.check_condition(meta, p.doc_id, current, item.cond)
            result = "not_found" if current is None else "deleted"
            self._plan(p, DocWrite(p.doc_id, None, core.next_version(current)), result, None)
            return False
        if item.action == "update":
            assert item.update is not None
            result, source = core.apply_update(meta, p.doc_id, current, item.update)
            if item.cond is not None:
                core.check_condition(meta, p.doc_id, current, item.cond)
            if result == "noop" and current is not None:
                if (
                    read is not None and p.doc_id in read
                ):  # the answer shows the sequence number of a write not made yet
                    return True
                if self.refresh is not Refresh.NONE:
                    self.refresh_after.add(p.index)
                noop = Written(meta, p.doc_id, result, current.seq_no, current.version, source=current.source)
                self.outcomes[p.pos] = noop
                return False
            self._map(p.index, source)
            self._plan(p, DocWrite(p.doc_id, source, core.next_version(current)), result, source)
            return False
        assert p.source is not None and item.action in ("index", "create")
        self._map(p.index, p.source)  # mapped before the checks, as a single write does
        core.check_write(meta, p.doc_id, current, item.action, item.cond)
        result = "created" if current is None else "updated"
        self._plan(p, DocWrite(p.doc_id, p.source, core.next_version(current)), result, None)
        return False

    async def _flush_before(self, p: _Prepared) -> None:
        """Write the group, then decide the item in the next one."""
        self.members[p.index].remove(p.pos)  # not one of the written group's items
        await self._flush()
        await self._next(p, [p])

    def _map(self, index: str, source: Source) -> None:
        mappings = self.mappings.get(index, self.indices[index].mappings)
        names = tuple(source)
        known = self.mapped_names.get(index)
        if (
            known is not None
            and known[0] is mappings
            and names in known[1]
            and LEAF_TYPES.issuperset(map(type, source.values()))
        ):
            return  # the same mapped top-level fields as a document before, with plain values: nothing new
        new = _dynamic_update(mappings, source)  # raises for a strict object given a new field
        if new is not None:
            self.mappings[index] = new
            self.mapped.setdefault(index, []).append(source)
            return
        props = mappings.get("properties")
        if isinstance(props, dict) and all("." not in name and isinstance(props.get(name), dict) for name in names):
            if known is None or known[0] is not mappings:
                known = self.mapped_names[index] = (mappings, set())
            known[1].add(names)

    def _plan(self, p: _Prepared, write: DocWrite, result: str, shown: Source | None) -> None:
        key = (p.index, p.doc_id)
        read = self.read.get(p.index)
        if read is None:
            read = self.read[p.index] = {}
        if p.doc_id not in read:
            read[p.doc_id] = self.state[key]
        self.planned.setdefault(p.index, []).append(_Planned(p.pos, write, result, shown))
        self.state[key] = None if write.source is None else StoredDoc(p.doc_id, write.source, -1, write.version)

    # -- writing the group ---------------------------------------------------------------------------------

    async def _flush(self, *, last: bool = False) -> None:
        """Write the group. ``last``: the chunk's last group, after which nothing reads ``state`` (the next
        chunk reads its documents again)."""
        indices = list(self.members)
        read, planned, members = self.read, self.planned, self.members
        mapped, refresh_after = self.mapped, self.refresh_after
        self.read, self.planned, self.members, self.refresh_after = {}, {}, {}, set()
        self.mappings, self.mapped = {}, {}
        for index in indices:
            rows = planned.get(index, [])
            expected = read.get(index, {})
            try:
                seq_nos = await self._write(index, rows, expected, mapped.get(index, []))
            except _Raced:
                if index == self.assumed:
                    raise _Guessed from None  # nothing written: the items are decided again
                self._forget(index)
                for pos in members[index]:
                    await self._alone(pos)
                continue
            except core.IndexMissing:
                # Forget what was read of the index and run its items one by one, as if alone.
                self._forget(index)
                for pos in members[index]:
                    await self._alone(pos)
                continue
            except KeyplaneError as exc:  # the store failed: the items not written fail with it
                self._forget(index)
                for row in rows:
                    self.outcomes[row.pos] = exc
                continue
            mark = self.marks.get(index)
            if seq_nos and mark is not None:
                # Written right after the mark (nothing between): what is known is what is stored at the new one.
                self.marks[index] = ReadMark(mark.uuid, seq_nos[-1]) if seq_nos[0] == mark.seq_no + 1 else None
            meta, forced = self.indices[index], self.refresh is Refresh.IMMEDIATE
            for row, seq_no in zip(rows, seq_nos, strict=True):
                write = row.write
                self.outcomes[row.pos] = Written(
                    meta, write.id, row.result, seq_no, write.version, forced_refresh=forced, source=row.shown
                )
                if not last:
                    done = None if write.source is None else StoredDoc(write.id, write.source, seq_no, write.version)
                    self.state[(index, write.id)] = done
            if index in refresh_after:
                await self.service.documents.refresh(index)

    async def _write(
        self,
        index: str,
        rows: list[_Planned],
        expected: dict[str, StoredDoc | None],
        mapped: list[Source],
    ) -> list[int]:
        meta = self.indices[index]
        if mapped:
            # Every new field of the group in one update, added to the mappings as they are by then
            # (another writer may have mapped fields meanwhile; fields are only ever added).
            try:
                meta = await self.service.map_dynamic_all(meta, mapped)
            except StrictDynamicMapping:  # made strict meanwhile: the items must be decided again
                raise _Raced from None
            self.indices[index] = meta
            self.targets = {name: meta if m.name == index else m for name, m in self.targets.items()}
        if not rows:
            return []
        visible = visible_at_once(meta, self.refresh)
        writes = [row.write for row in rows]
        read_at = self.marks.get(index)
        seq_nos = await self.service.documents.write_many(index, writes, expected, refresh=visible, read_at=read_at)
        if seq_nos is None:
            raise _Raced
        return seq_nos

    def _forget(self, index: str) -> None:
        for key in [key for key in self.state if key[0] == index]:
            del self.state[key]
        self.marks.pop(index, None)
        self.indices.pop(index, None)
        self.targets = {name: m for name, m in self.targets.items() if m.name != index}


async def mget(
    service: IndexService,
    items: list[GetItem],
    guard: Callable[[str], None],
    *,
    realtime: bool = True,
    refresh: bool = False,
) -> list[Fetched | KeyplaneError]:
    """Read every item (as a get with ``realtime`` and ``refresh`` would); a missing index or a denied one
    is that item's error."""
    outcomes: list[Fetched | KeyplaneError] = []
    for item in items:
        try:
            name = item.index or ""
            guard(name)
            meta, doc = await service.get_doc(name, item.id, realtime=realtime, refresh=refresh)
            outcomes.append(Fetched(meta, doc))
        except KeyplaneError as exc:
            outcomes.append(exc)
    return outcomes
