"""Bulk writes and multi-gets, item by item, over the single-document operations of ``IndexService``.

Each item goes through the same write as its single-document API, so versions, sequence numbers and
conflicts are the same; an item that fails fails alone and the rest go on, as in Elasticsearch.
Authorization is the caller's (``ItemGuard``): it raises for an item the caller may not write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from keyplane.errors import KeyplaneError
from keyplane.indices import core
from keyplane.indices.bulk import BulkItem, GetItem, ItemFailure, document_problem
from keyplane.indices.core import IndexMeta, StoredDoc
from keyplane.indices.pipeline import check_pipeline
from keyplane.indices.refresh import Refresh
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


async def _target(service: IndexService, item: BulkItem, auto_create: AutoCreateGuard) -> str:
    """The item's index (an alias's write index), created first when missing and the item may create it
    (deletes never do)."""
    name = item.index or ""
    meta = await service.write_index(name)
    if meta is not None:
        if item.require_alias and meta.name == name:
            raise AliasRequired(name)
        return meta.name
    if item.require_alias:
        raise AliasRequired(name)
    if item.action == "delete":
        raise core.IndexMissing(name)
    auto_create(name)
    try:
        await service.create(name)
    except core.IndexExists:
        pass  # created meanwhile by another request
    return name


async def _one(
    service: IndexService, item: BulkItem, guard: ItemGuard, auto_create: AutoCreateGuard, refresh: Refresh
) -> Written:
    if item.action in ("index", "create"):
        # Ingest runs before a missing index is created: an unknown pipeline creates nothing.
        check_pipeline(item.pipeline)
        if item.id == "":
            raise ItemFailure("if _id is specified it must not be empty")
    name = await _target(service, item, auto_create)
    guard(item, name)
    if item.action == "delete":
        assert item.id is not None  # checked when parsed
        return await service.delete_doc(name, item.id, item.cond, refresh=refresh)
    if item.action == "update":
        assert item.id is not None and item.update is not None
        return await service.update(name, item.id, item.update, item.cond, auto_create, refresh=refresh)
    problem = document_problem(item.source)
    if problem is not None:
        raise DocumentUnparsable(problem)
    return await service.index(
        name, item.id, item.source, item.action, item.cond, auto_create, refresh=refresh, pipeline=item.pipeline
    )


async def bulk(
    service: IndexService,
    items: list[BulkItem],
    guard: ItemGuard,
    auto_create: AutoCreateGuard,
    *,
    refresh: Refresh = Refresh.NONE,
) -> list[Written | KeyplaneError]:
    """Run every item in order; each answer is what it wrote or the error it failed with. ``refresh``
    applies to each item's write, so the items are visible when the answer is."""
    outcomes: list[Written | KeyplaneError] = []
    for item in items:
        try:
            outcomes.append(await _one(service, item, guard, auto_create, refresh))
        except KeyplaneError as exc:
            outcomes.append(exc)
    return outcomes


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
