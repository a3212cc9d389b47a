"""Connector, sync-job and secret use cases.

Updates read the document, change a copy, and write it back with compare-and-set, retrying when
another writer got there first. An update that changes nothing answers ``noop`` and writes
nothing, as Elasticsearch's partial updates do.
"""

from __future__ import annotations

import asyncio
import builtins
import random
from collections.abc import Callable
from typing import Any

from keyplane.connectors import core, sync_jobs
from keyplane.connectors.backends.base import (
    ConnectorFilter,
    ConnectorRepository,
    SecretRepository,
    Stored,
    SyncJobRepository,
)
from keyplane.connectors.core import Doc
from keyplane.connectors.secrets import SecretBox
from keyplane.documents import deep_copy, deep_merge
from keyplane.errors import Conflict, DocumentMissing, NotFound
from keyplane.ids import new_id
from keyplane.limits import check_id

Change = Callable[[Doc], None]
_MAX_ATTEMPTS = 30  # compare-and-set rounds before a concurrent update gives up


async def _back_off(attempt: int) -> None:
    """Another writer won the compare-and-set; wait a little so the writers spread out."""
    await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))


def connector_missing(connector_id: str) -> NotFound:
    return NotFound(f"connector [{connector_id}] not found")


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

    # -- connectors ---------------------------------------------------------------------------------

    async def put(self, connector_id: str | None, fields: Doc) -> tuple[str, bool]:
        core.check_new_connector(fields)
        if connector_id:
            check_id(connector_id)  # a connector id is a document id in Elasticsearch
        connector_id = connector_id or new_id()
        created = await self.connectors.put(connector_id, core.new_connector(fields))
        return connector_id, created

    async def get(self, connector_id: str, include_deleted: bool = False) -> Doc:
        stored = await self.connectors.get(connector_id)
        if stored is None or (stored.doc.get("deleted") and not include_deleted):
            raise connector_missing(connector_id)
        return _with_id(stored)

    async def list(self, selector: ConnectorFilter, start: int, size: int) -> Doc:
        if selector.index_names:
            core.check_index_names(selector.index_names)
        total, rows = await self.connectors.list(selector, start, size)
        return {"count": total, "results": [_with_id(r) for r in rows]}

    async def delete(self, connector_id: str, hard: bool, delete_sync_jobs: bool) -> None:
        if hard:
            if not await self.connectors.delete(connector_id):
                raise connector_missing(connector_id)
        else:
            await self.update(connector_id, lambda doc: doc.__setitem__("deleted", True), blind=False)
        if delete_sync_jobs:
            await self.jobs.delete_for_connector(connector_id)

    async def update(self, connector_id: str, change: Change, *, blind: bool, always: bool = False) -> str:
        """Apply ``change`` to the stored document; ``blind`` updates also reach soft-deleted ones.

        ``always`` mirrors Elasticsearch's script updates, which report ``updated`` even when the
        document ends up the same.
        """
        for attempt in range(_MAX_ATTEMPTS):
            stored = await self.connectors.get(connector_id)
            if stored is None:
                if blind:
                    raise DocumentMissing(f"[{connector_id}]: document missing")
                raise connector_missing(connector_id)
            if not blind and stored.doc.get("deleted"):
                raise connector_missing(connector_id)
            doc = deep_copy(stored.doc)
            change(doc)
            if doc == stored.doc and not always:
                return "noop"
            if await self.connectors.replace(Stored(stored.id, doc, stored.seq_no)):
                return "updated"
            await _back_off(attempt)
        raise Conflict(f"[{connector_id}]: version conflict, too many concurrent updates")

    async def index_in_use(self, index_name: str, connector_id: str) -> bool:
        return await self.connectors.index_in_use(index_name, connector_id)

    # -- sync jobs ----------------------------------------------------------------------------------

    async def create_job(self, connector_id: str, job_type: str, trigger_method: str) -> str:
        stored = await self.connectors.get(connector_id)
        if stored is None:
            raise NotFound(f"Connector with id '{connector_id}' does not exist.")
        created = core.now_ns()
        doc = sync_jobs.new_job(connector_id, stored.doc, job_type, trigger_method, created)
        job_id = new_id()
        await self.jobs.insert(job_id, connector_id, created, doc)
        return job_id

    async def get_job(self, job_id: str) -> Doc:
        stored = await self.jobs.get(job_id)
        if stored is None:
            raise NotFound(job_id)
        return _with_id(stored)

    async def list_jobs(
        self, connector_id: str | None, status: str | None, job_types: builtins.list[str], start: int, size: int
    ) -> Doc:
        total, rows = await self.jobs.list(connector_id, status, job_types, start, size)
        return {"count": total, "results": [_with_id(r) for r in rows]}

    async def delete_job(self, job_id: str) -> None:
        if not await self.jobs.delete(job_id):
            raise NotFound(job_id)

    async def update_job(self, job_id: str, change: Change) -> str:
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

    # -- secrets --------------------------------------------------------------------------------------

    async def post_secret(self, value: str) -> str:
        secret_id = new_id()
        await self.secrets.put(secret_id, self.box.seal(secret_id, value))
        return secret_id

    async def put_secret(self, secret_id: str, value: str) -> bool:
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


def set_fields(values: dict[str, Any]) -> Change:
    """A partial-document update of the given fields (deep merge)."""
    return lambda doc: deep_merge(doc, values)
