"""Connector, sync-job and secret use cases: one operation per API.

Each operation loads the document, applies a rule from ``core``, ``configuration``, ``filtering``
or ``sync_jobs`` to a copy, and writes it back with compare-and-set, retrying when another writer
got there first. An update that changes nothing answers ``noop`` and writes nothing, as
Elasticsearch's partial updates do.

Elasticsearch updates connectors in two ways, and each operation keeps the one it uses there:
partial-document updates (``_merge``) also reach soft-deleted connectors and answer
``document_missing`` for an unknown id; script updates treat a soft-deleted connector as missing,
and some always answer ``updated``, even when nothing changed.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import random
from collections.abc import Callable
from typing import Any, Literal

import orjson

from keyplane import jsontext
from keyplane.connectors import configuration, core, filtering, sync_jobs, system_index
from keyplane.connectors.backends.base import ConnectorRepository, SecretRepository, Stored, SyncJobRepository
from keyplane.connectors.clock import now_iso, now_ns
from keyplane.connectors.listed import listed_page
from keyplane.connectors.model import ConnectorFilter, Doc
from keyplane.connectors.secrets import SecretBox
from keyplane.connectors.system_index import (
    DocumentRead,
    DocumentWrite,
    Kind,
    Precondition,
    SearchRequest,
    SearchResult,
)
from keyplane.documents import deep_copy, deep_merge
from keyplane.errors import Conflict, DocumentMissing, KeyplaneError, NotFound
from keyplane.ids import new_id
from keyplane.limits import check_id

Change = Callable[[Doc], None]
Outcome = Literal["updated", "noop"]
_MAX_ATTEMPTS = 30  # compare-and-set rounds before a concurrent update gives up
_MAX_WRITTEN = 1_024  # connectors whose last written form this node keeps (ConnectorService._written)


async def _back_off(attempt: int) -> None:
    """Another writer won the compare-and-set; wait a little so the writers spread out."""
    await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))


def connector_missing(connector_id: str) -> NotFound:
    return NotFound(f"connector [{connector_id}] not found")


def _copy(stored: Stored) -> Doc:
    """A copy of the stored document to change: parsed from its text when known (``deep_copy`` writes
    the document out first)."""
    doc: Doc = orjson.loads(stored.text) if stored.text is not None else deep_copy(stored.doc)
    return doc


def _with_id(stored: Stored) -> Doc:
    return {"id": stored.id, **stored.doc}


class ConnectorService:
    def __init__(
        self,
        connectors: ConnectorRepository,
        jobs: SyncJobRepository,
        secrets: SecretRepository,
        box: SecretBox,
    ) -> None:
        self.connectors = connectors
        self.jobs = jobs
        self.secrets = secrets
        self.box = box
        # Each connector's document as this node last wrote it, with the seq_no it has since: the
        # next update of the connector starts from it instead of reading it again (``_update_written``).
        # The connectors service updates the same connectors again and again (check-ins, sync stats).
        self._written: dict[str, Stored] = {}
        # Connectors being updated on this node, each with the updates waiting for their turn
        # (``_update``): concurrent updates of one connector take turns here instead of racing each
        # other's compare-and-set, which cost failed writes, reads and back-offs, and under steady
        # contention ran out of attempts (409) on PostgreSQL.
        self._updating: dict[str, collections.deque[asyncio.Future[None]]] = {}

    # -- connectors ---------------------------------------------------------------------------------

    async def put(self, connector_id: str | None, fields: Doc) -> tuple[str, bool]:
        """Create or replace a connector; its id (new if none was given) and whether it was created."""
        core.check_new_connector(fields)
        if connector_id:
            check_id(connector_id)  # a connector id is a document id in Elasticsearch
        connector_id = connector_id or new_id()
        self._written.pop(connector_id, None)  # replaced whole: that form is no longer stored
        created = await self.connectors.put(connector_id, core.new_connector(fields, now_iso()))
        return connector_id, created

    async def get(self, connector_id: str, include_deleted: bool = False) -> Doc:
        stored = await self.connectors.get(connector_id)
        if stored is None or (stored.doc.get("deleted") and not include_deleted):
            raise connector_missing(connector_id)
        return _with_id(stored)

    async def list(self, selector: ConnectorFilter, start: int, size: int) -> tuple[int, builtins.list[Doc]]:
        """The total of matching connectors and one page of them."""
        if selector.index_names:
            core.check_index_names(selector.index_names)
        total, rows = await self.connectors.list(selector, start, size)
        return total, [_with_id(r) for r in rows]

    async def list_rendered(self, selector: ConnectorFilter, start: int, size: int) -> tuple[int, builtins.list[Any]]:
        """``list``, each connector as a JSON fragment of the same object where it can be (``listed``):
        for answers orjson writes as they are, not indented or filtered."""
        if selector.index_names:
            core.check_index_names(selector.index_names)
        total, texts = await self.connectors.list_texts(selector, start, size)
        named = selector.index_names or selector.names or selector.service_types
        key = None if named else (selector.include_deleted, selector.query, start, size)
        return total, listed_page(key, texts)

    async def delete(self, connector_id: str, hard: bool, delete_sync_jobs: bool) -> None:
        if hard:
            self._written.pop(connector_id, None)
            if not await self.connectors.delete(connector_id):
                raise connector_missing(connector_id)
        else:
            await self._update(connector_id, core.mark_deleted)
        if delete_sync_jobs:
            await self.jobs.delete_for_connector(connector_id)

    async def check_in(self, connector_id: str) -> Outcome:
        return await self._merge(connector_id, core.checked_in(now_iso()))

    async def update_last_sync_stats(self, connector_id: str, stats: Doc) -> Outcome:
        return await self._merge(connector_id, core.given(stats))

    async def update_api_key_id(self, connector_id: str, api_key_id: str | None, secret_id: str | None) -> Outcome:
        return await self._merge(connector_id, core.given({"api_key_id": api_key_id, "api_key_secret_id": secret_id}))

    async def update_configuration(self, connector_id: str, schema: Doc) -> Outcome:
        """Register a new configuration schema (``schema`` as ``configuration.parse_schema`` gives it)."""
        return await self._update(connector_id, lambda doc: configuration.replace_schema(doc, schema), always=True)

    async def update_configuration_values(self, connector_id: str, values: Doc) -> Outcome:
        return await self._update(connector_id, lambda doc: configuration.set_values(doc, values))

    async def update_error(self, connector_id: str, message: str | None) -> Outcome:
        return await self._merge(connector_id, core.error_fields(message))

    async def update_features(self, connector_id: str, features: Doc) -> Outcome:
        return await self._merge(connector_id, {"features": features})

    async def update_filtering(self, connector_id: str, elements: builtins.list[Doc]) -> Outcome:
        """Replace the whole filtering (active and draft) as parsed, dated now where it gives no date."""
        return await self._merge(connector_id, {"filtering": filtering.stamped(elements, now_iso())})

    async def update_filtering_draft(
        self, connector_id: str, snippet: Doc | None, rules: builtins.list[Doc] | None
    ) -> Outcome:
        """New draft rules and/or advanced snippet as parsed, dated now where they give no date."""
        stamp = now_iso()
        return await self._update(connector_id, lambda doc: filtering.edit_draft(doc, snippet, rules, stamp))

    async def update_filtering_validation(self, connector_id: str, validation: Doc) -> Outcome:
        stamp = now_iso()
        return await self._update(connector_id, lambda doc: filtering.set_draft_validation(doc, validation, stamp))

    async def activate_draft_filtering(self, connector_id: str) -> Outcome:
        stamp = now_iso()
        return await self._update(connector_id, lambda doc: filtering.activate_draft(doc, stamp), always=True)

    async def update_index_name(self, connector_id: str, index_name: str | None) -> Outcome:
        if index_name is not None:
            core.check_index_names([index_name])
            if await self.connectors.index_in_use(index_name, connector_id):
                raise core.index_taken(index_name)
        return await self._update(connector_id, lambda doc: core.set_index_name(doc, index_name))

    async def update_name(self, connector_id: str, name: str | None, description: str | None) -> Outcome:
        return await self._merge(connector_id, core.given({"name": name, "description": description}))

    async def update_native(self, connector_id: str, is_native: bool) -> Outcome:
        return await self._update(connector_id, lambda doc: core.set_native(doc, connector_id, is_native))

    async def update_pipeline(self, connector_id: str, pipeline: Doc) -> Outcome:
        return await self._update(connector_id, lambda doc: core.set_pipeline(doc, pipeline), reaches_deleted=True)

    async def update_scheduling(self, connector_id: str, scheduling: Doc) -> Outcome:
        return await self._merge(connector_id, {"scheduling": scheduling})

    async def update_service_type(self, connector_id: str, service_type: str) -> Outcome:
        return await self._update(connector_id, lambda doc: core.set_service_type(doc, service_type))

    async def update_status(self, connector_id: str, status: str) -> Outcome:
        return await self._update(connector_id, lambda doc: core.set_status(doc, status), always=True)

    async def _merge(self, connector_id: str, partial: Doc) -> Outcome:
        """A partial-document update: ``partial`` merged into the stored document."""
        return await self._update(connector_id, lambda doc: deep_merge(doc, partial), reaches_deleted=True)

    async def _update(
        self, connector_id: str, change: Change, *, reaches_deleted: bool = False, always: bool = False
    ) -> Outcome:
        """Apply ``change`` to the stored document with compare-and-set.

        ``reaches_deleted``: a partial-document update, which also changes a soft-deleted connector
        and answers ``document_missing`` for an unknown one. ``always``: answer ``updated`` even when
        the document ends up the same, as Elasticsearch's script updates do.
        """
        waiting = self._updating.get(connector_id)
        if waiting is None:
            self._updating[connector_id] = collections.deque()
        else:
            turn = asyncio.get_running_loop().create_future()
            waiting.append(turn)
            try:
                await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():
                    self._next_turn(connector_id)  # given the turn, then cancelled: pass it on
                raise
        try:
            return await self._update_in_turn(connector_id, change, reaches_deleted, always)
        finally:
            self._next_turn(connector_id)

    def _next_turn(self, connector_id: str) -> None:
        """The update of ``connector_id`` in turn is done: the next one waiting (a cancelled one gives
        up its place) goes on, or the connector is no longer being updated."""
        waiting = self._updating[connector_id]
        while waiting:
            turn = waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        del self._updating[connector_id]

    async def _update_in_turn(self, connector_id: str, change: Change, reaches_deleted: bool, always: bool) -> Outcome:
        """``_update``, with no other update of the connector under way on this node."""
        if await self._update_written(connector_id, change, reaches_deleted, always):
            return "updated"
        for attempt in range(_MAX_ATTEMPTS):
            stored = await self.connectors.get(connector_id)
            if stored is None:
                if reaches_deleted:
                    raise DocumentMissing(f"[{connector_id}]: document missing")
                raise connector_missing(connector_id)
            if not reaches_deleted and stored.doc.get("deleted"):
                raise connector_missing(connector_id)
            doc = _copy(stored)
            change(doc)
            if doc == stored.doc and not always:
                return "noop"
            text = jsontext.dumps(doc).decode()
            if await self.connectors.replace(Stored(stored.id, doc, stored.seq_no, text), stored.doc):
                self._remember(Stored(stored.id, doc, stored.seq_no + 1, text))
                return "updated"
            await _back_off(attempt)
        raise Conflict(f"[{connector_id}]: version conflict, too many concurrent updates")

    async def _update_written(self, connector_id: str, change: Change, reaches_deleted: bool, always: bool) -> bool:
        """Update a connector from the form this node last wrote of it, without reading it first: True
        when written so. The write is a compare-and-set on that form's ``seq_no`` and on the document
        itself (an id deleted and created again numbers its versions anew), so it succeeds only when
        the stored connector is still that form, the one a read would have found. Anything else (a
        missing or deleted connector, a noop, an error, a connector changed since) is decided by
        ``_update`` on a fresh read.
        """
        written = self._written.pop(connector_id, None)
        if written is None or (not reaches_deleted and written.doc.get("deleted")):
            return False
        doc = _copy(written)
        try:
            change(doc)
        except KeyplaneError:
            return False
        if doc == written.doc and not always:
            return False
        text = jsontext.dumps(doc).decode()
        if not await self.connectors.replace(
            Stored(connector_id, doc, written.seq_no, text), written.doc, unchanged=True, previous_text=written.text
        ):
            return False
        self._remember(Stored(connector_id, doc, written.seq_no + 1, text))
        return True

    def _remember(self, stored: Stored) -> None:
        """Keep ``stored`` as just written; its document is not changed afterwards (updates copy it)."""
        if len(self._written) >= _MAX_WRITTEN:
            del self._written[next(iter(self._written))]  # the oldest
        self._written[stored.id] = stored

    # -- sync jobs ----------------------------------------------------------------------------------

    async def create_sync_job(self, connector_id: str | None, job_type: str | None, trigger_method: str | None) -> str:
        """A pending job for the connector as it is now; its id."""
        connector_id = sync_jobs.check_connector_id(connector_id)
        stored = await self.connectors.get(connector_id)
        if stored is None:
            raise NotFound(f"Connector with id '{connector_id}' does not exist.")
        created = now_ns()
        doc = sync_jobs.new_job(
            connector_id,
            stored.doc,
            job_type or sync_jobs.DEFAULT_JOB_TYPE,
            trigger_method or sync_jobs.DEFAULT_TRIGGER_METHOD,
            created,
        )
        job_id = new_id()
        await self.jobs.insert(job_id, connector_id, created, doc)
        return job_id

    async def get_sync_job(self, job_id: str) -> Doc:
        stored = await self.jobs.get(job_id)
        if stored is None:
            raise NotFound(job_id)
        return _with_id(stored)

    async def list_sync_jobs(
        self, connector_id: str | None, status: str | None, job_types: builtins.list[str], start: int, size: int
    ) -> tuple[int, builtins.list[Doc]]:
        """The total of matching jobs and one page of them, newest first."""
        total, rows = await self.jobs.list(connector_id, status, job_types, start, size)
        return total, [_with_id(r) for r in rows]

    async def delete_sync_job(self, job_id: str) -> None:
        if not await self.jobs.delete(job_id):
            raise NotFound(job_id)

    async def cancel_sync_job(self, job_id: str) -> Outcome:
        await self.get_sync_job(job_id)  # an unknown job answers with its bare id, as Elasticsearch does
        return await self._update_job(job_id, lambda job: sync_jobs.cancel(job, now_iso()))

    async def check_in_sync_job(self, job_id: str) -> Outcome:
        stamp = now_iso()
        return await self._update_job(job_id, lambda job: sync_jobs.check_in(job, stamp))

    async def claim_sync_job(self, job_id: str, worker_hostname: str, sync_cursor: Doc | None) -> Outcome:
        await self.get_sync_job(job_id)
        return await self._update_job(job_id, lambda job: sync_jobs.claim(job, worker_hostname, sync_cursor, now_iso()))

    async def set_sync_job_error(self, job_id: str, message: str | None) -> Outcome:
        reason = sync_jobs.check_error_message(message)
        await self.get_sync_job(job_id)
        return await self._update_job(job_id, lambda job: sync_jobs.fail(job, reason))

    async def update_sync_job_stats(
        self, job_id: str, counts: dict[str, int], last_seen: str | None, metadata: Doc | None
    ) -> Outcome:
        """New counts; ``last_seen`` defaults to now, as for a check-in."""
        seen = last_seen if last_seen is not None else now_iso()
        return await self._update_job(job_id, lambda job: sync_jobs.record_stats(job, counts, seen, metadata))

    async def _update_job(self, job_id: str, change: Change) -> Outcome:
        for attempt in range(_MAX_ATTEMPTS):
            stored = await self.jobs.get(job_id)
            if stored is None:
                raise NotFound(f"connector sync job [{job_id}] not found")
            doc = deep_copy(stored.doc)
            change(doc)
            if await self.jobs.replace(Stored(stored.id, doc, stored.seq_no)):
                return "updated"
            await _back_off(attempt)
        raise Conflict(f"connector sync job [{job_id}]: too many concurrent updates")

    # -- the system indices' documents ------------------------------------------------------------------
    # The connectors service reads and writes connectors and jobs as documents of
    # ``.elastic-connectors`` and ``.elastic-connectors-sync-jobs``. These operations store what they
    # are given, as Elasticsearch does, with no Connector-API validation, on the same records and the
    # same write counter as the operations above, so either path sees the other's writes.

    async def get_document(self, kind: Kind, doc_id: str) -> DocumentRead | None:
        stored = await self._document_store(kind).get(doc_id)
        return DocumentRead(stored.id, stored.doc, stored.seq_no) if stored else None

    async def index_document(
        self,
        kind: Kind,
        doc_id: str | None,
        source: Doc,
        *,
        create_only: bool = False,
        precondition: Precondition | None = None,
    ) -> DocumentWrite:
        """Create or replace a document whole (``create_only``: refuse an existing id); no id: a new one."""
        if doc_id is None:
            doc_id, create_only = new_id(), True
        self._check_document_id(kind, doc_id)
        store = self._document_store(kind)
        for attempt in range(_MAX_ATTEMPTS):
            stored = await store.get(doc_id)
            if precondition is not None:
                precondition.check(doc_id, stored.seq_no if stored else None)
            if stored is None:
                if await self._create_document(kind, doc_id, source):
                    return DocumentWrite(doc_id, "created", 1)
            elif create_only:
                raise system_index.already_exists(doc_id, stored.seq_no)
            elif await store.replace(Stored(doc_id, source, stored.seq_no)):
                return DocumentWrite(doc_id, "updated", stored.seq_no + 1)
            await _back_off(attempt)
        raise Conflict(f"[{doc_id}]: version conflict, too many concurrent updates")

    async def update_document(
        self,
        kind: Kind,
        doc_id: str,
        partial: Doc | None,
        *,
        upsert: Doc | None = None,
        doc_as_upsert: bool = False,
        detect_noop: bool = True,
        precondition: Precondition | None = None,
    ) -> DocumentWrite:
        """Elasticsearch's partial update: ``partial`` merged into the stored JSON (objects merge, a null
        overwrites); a missing document is created from ``upsert`` or, with ``doc_as_upsert``, ``partial``."""
        self._check_document_id(kind, doc_id)
        store = self._document_store(kind)
        for attempt in range(_MAX_ATTEMPTS):
            stored = await store.get(doc_id)
            if precondition is not None:
                precondition.check(doc_id, stored.seq_no if stored else None)
            if stored is None:
                first = partial if doc_as_upsert and partial is not None else upsert
                if first is None:
                    raise DocumentMissing(f"[{doc_id}]: document missing")
                if await self._create_document(kind, doc_id, first):
                    return DocumentWrite(doc_id, "created", 1)
            else:
                doc = deep_copy(stored.doc)
                deep_merge(doc, partial or {})
                if detect_noop and doc == stored.doc:
                    return DocumentWrite(doc_id, "noop", stored.seq_no)
                if await store.replace(Stored(doc_id, doc, stored.seq_no)):
                    return DocumentWrite(doc_id, "updated", stored.seq_no + 1)
            await _back_off(attempt)
        raise Conflict(f"[{doc_id}]: version conflict, too many concurrent updates")

    async def delete_document(self, kind: Kind, doc_id: str, precondition: Precondition | None = None) -> DocumentWrite:
        """Remove a document for good (a connector too: this is not the Connector API's soft delete)."""
        store = self._document_store(kind)
        for attempt in range(_MAX_ATTEMPTS):
            stored = await store.get(doc_id)
            if precondition is not None:
                precondition.check(doc_id, stored.seq_no if stored else None)
            if stored is None:
                return DocumentWrite(doc_id, "not_found", 1)
            if await store.delete(doc_id, stored.seq_no):
                return DocumentWrite(doc_id, "deleted", stored.seq_no + 1)
            await _back_off(attempt)
        raise Conflict(f"[{doc_id}]: version conflict, too many concurrent updates")

    async def search_documents(self, kind: Kind, request: SearchRequest) -> SearchResult:
        """A search over every document of the index (soft-deleted connectors too), evaluated in memory."""
        stored = await self._document_store(kind).all()
        documents = [DocumentRead(s.id, s.doc, s.seq_no) for s in stored]
        return system_index.search(kind, documents, request)

    def _document_store(self, kind: Kind) -> ConnectorRepository | SyncJobRepository:
        return self.connectors if kind is Kind.CONNECTORS else self.jobs

    async def _create_document(self, kind: Kind, doc_id: str, source: Doc) -> bool:
        """Create a document unless the id was taken meanwhile."""
        if kind is Kind.CONNECTORS:
            return await self.connectors.insert(doc_id, source)
        return bool(await self.jobs.put(doc_id, source, create_only=True))

    @staticmethod
    def _check_document_id(kind: Kind, doc_id: str) -> None:
        check_id(doc_id)
        if kind is Kind.SYNC_JOBS:
            system_index.check_job_id(doc_id)

    # -- secrets --------------------------------------------------------------------------------------

    async def post_secret(self, value: str) -> str:
        secret_id = new_id()
        await self.secrets.put(secret_id, self.box.seal(secret_id, value))
        return secret_id

    async def put_secret(self, secret_id: str, value: str) -> bool:
        """Store a value under ``secret_id``; True when the id was new."""
        check_id(secret_id)
        return await self.secrets.put(secret_id, self.box.seal(secret_id, value))

    async def get_secret(self, secret_id: str) -> str:
        sealed = await self.secrets.get(secret_id)
        if sealed is None:
            raise NotFound(f"No secret with id [{secret_id}]")
        return self.box.open(secret_id, sealed)

    async def delete_secret(self, secret_id: str) -> None:
        if not await self.secrets.delete(secret_id):
            raise NotFound(f"No secret with id [{secret_id}]")

    async def reset(self) -> None:
        await self.jobs.delete_all()
        await self.connectors.delete_all()
        await self.secrets.delete_all()
