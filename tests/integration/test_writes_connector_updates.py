"""Updates of one connector starting from the form this node last wrote (ConnectorService._update_written):
no read before the write when nothing changed the connector since, and the same outcomes as from a
fresh read whatever changed it meanwhile (another node, the document APIs, a delete and a new
connector under the same id)."""

from __future__ import annotations

import asyncio

import pytest

from keyplane.connectors.backends.base import Stored
from keyplane.connectors.backends.sql import SqlConnectorRepository, SqlSecretRepository, SqlSyncJobRepository
from keyplane.connectors.secrets import SecretBox
from keyplane.connectors.service import ConnectorService
from keyplane.connectors.system_index import Kind
from keyplane.errors import NotFound
from keyplane.store.database import Database
from tests.integration.stores import open_migrated


class CountingReads(SqlConnectorRepository):
    """The SQL repository, counting the connectors it reads one by one."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.reads = 0

    async def get(self, connector_id: str) -> Stored | None:
        self.reads += 1
        return await super().get(connector_id)


def _node(db: Database) -> tuple[ConnectorService, CountingReads]:
    repo = CountingReads(db)
    box = SecretBox(b"k" * 32)
    return ConnectorService(repo, SqlSyncJobRepository(db), SqlSecretRepository(db), box), repo


async def _values(svc: ConnectorService, connector_id: str) -> dict[str, object]:
    doc = await svc.get(connector_id)
    return {name: field.get("value") for name, field in doc["configuration"].items()}


async def _with_field(svc: ConnectorService, connector_id: str) -> None:
    await svc.put(connector_id, {"index_name": f"search-{connector_id}", "service_type": "dir"})
    schema = {"n": {"type": "int", "value": 0, "label": "N", "display": "numeric"}}
    await svc.update_configuration(connector_id, schema)


def test_repeated_updates_write_without_reading(database_url: str) -> None:
    async def go() -> None:
        db = await open_migrated(database_url)
        svc, repo = _node(db)
        await _with_field(svc, "c1")
        assert await svc.update_configuration_values("c1", {"n": 1}) == "updated"
        reads = repo.reads
        for n in range(2, 6):
            assert await svc.update_configuration_values("c1", {"n": n}) == "updated"
        await svc.check_in("c1")
        assert repo.reads == reads  # each write started from the one before it
        assert await _values(svc, "c1") == {"n": 5}
        stored = await repo.get("c1")
        assert stored is not None and stored.doc["last_seen"] is not None
        # A noop is never decided from the remembered form: it reads, and writes nothing.
        reads = repo.reads
        assert await svc.update_configuration_values("c1", {"n": 5}) == "noop"
        assert repo.reads == reads + 1
        await db.close()

    asyncio.run(go())


def test_changes_made_elsewhere_are_kept(database_url: str) -> None:
    """A second service on the same store (another node) and the document APIs change the connector
    between two updates here: nothing they wrote is lost."""

    async def go() -> None:
        db = await open_migrated(database_url)
        here, _ = _node(db)
        there, _ = _node(db)
        await _with_field(here, "c1")
        assert await here.update_configuration_values("c1", {"n": 1}) == "updated"
        assert await there.update_name("c1", "renamed", None) == "updated"
        assert await here.update_configuration_values("c1", {"n": 2}) == "updated"
        doc = await here.get("c1")
        assert doc["name"] == "renamed" and doc["configuration"]["n"]["value"] == 2

        await here.update_document(Kind.CONNECTORS, "c1", {"description": "by document"})
        assert await here.update_configuration_values("c1", {"n": 3}) == "updated"
        doc = await here.get("c1")
        assert doc["description"] == "by document" and doc["configuration"]["n"]["value"] == 3

        # Set elsewhere to what this node last wrote: setting it again here is then a noop.
        assert await there.update_configuration_values("c1", {"n": 4}) == "updated"
        assert await here.update_configuration_values("c1", {"n": 4}) == "noop"

        # Soft-deleted elsewhere: an update here finds it missing, as after a read.
        await there.delete("c1", hard=False, delete_sync_jobs=False)
        with pytest.raises(NotFound):
            await here.update_configuration_values("c1", {"n": 5})
        await db.close()

    asyncio.run(go())


def test_an_id_deleted_and_created_again_at_the_same_seq_no(database_url: str) -> None:
    """Another node deletes the connector and creates a new one under its id, then updates it until its
    seq_no is the one this node remembers: the remembered form is not written over the new connector."""

    async def go() -> None:
        db = await open_migrated(database_url)
        here, repo = _node(db)
        there, _ = _node(db)
        await _with_field(here, "c1")
        assert await here.update_configuration_values("c1", {"n": 1}) == "updated"
        remembered = await repo.get("c1")
        assert remembered is not None

        await there.delete("c1", hard=True, delete_sync_jobs=False)
        await there.put("c1", {"index_name": "search-other", "service_type": "dir", "name": "new"})
        schema = {"n": {"type": "int", "value": 0, "label": "N", "display": "numeric"}}
        await there.update_configuration(
            "c1", schema | {"m": {"type": "int", "value": 7, "label": "M", "display": "numeric"}}
        )
        while (current := await repo.get("c1")) is not None and current.seq_no < remembered.seq_no:
            await there.update_name("c1", f"new {current.seq_no}", None)
        assert current is not None and current.seq_no == remembered.seq_no

        assert await here.update_configuration_values("c1", {"n": 2}) == "updated"
        doc = await here.get("c1")
        assert doc["index_name"] == "search-other" and doc["name"].startswith("new")
        assert {name: field["value"] for name, field in doc["configuration"].items()} == {"n": 2, "m": 7}
        await db.close()

    asyncio.run(go())
