"""Concurrent updates of one connector on one node take turns (ConnectorService._update): each starts
from the form the one before it wrote, so none reads the connector again, none loses a compare-and-set,
and none runs out of attempts, however many arrive at once. A cancelled update gives up its turn."""

from __future__ import annotations

import asyncio

from keyplane.connectors.backends.base import Stored
from keyplane.connectors.backends.sql import SqlConnectorRepository, SqlSecretRepository, SqlSyncJobRepository
from keyplane.connectors.model import Doc
from keyplane.connectors.secrets import SecretBox
from keyplane.connectors.service import ConnectorService
from keyplane.store.database import Database
from tests.integration.stores import open_migrated


class Counting(SqlConnectorRepository):
    """The SQL repository, counting reads of one connector and compare-and-set writes that failed."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.reads = 0
        self.lost = 0
        self.gate: asyncio.Event | None = None  # when set up, writes wait for it

    async def get(self, connector_id: str) -> Stored | None:
        self.reads += 1
        return await super().get(connector_id)

    async def replace(
        self, stored: Stored, previous: Doc | None = None, *, unchanged: bool = False, previous_text: str | None = None
    ) -> bool:
        if self.gate is not None:
            await self.gate.wait()
        done = await super().replace(stored, previous, unchanged=unchanged, previous_text=previous_text)
        self.lost += not done
        return done


async def _node(database_url: str) -> tuple[Database, ConnectorService, Counting]:
    db = await open_migrated(database_url)
    repo = Counting(db)
    svc = ConnectorService(repo, SqlSyncJobRepository(db), SqlSecretRepository(db), SecretBox(b"k" * 32))
    await svc.put("c1", {"index_name": "search-c1", "service_type": "dir"})
    await svc.update_configuration("c1", {"n": {"type": "int", "value": 0, "label": "N", "display": "numeric"}})
    return db, svc, repo


def test_concurrent_updates_take_turns(database_url: str) -> None:
    async def go() -> None:
        db, svc, repo = await _node(database_url)
        reads = repo.reads
        outcomes = await asyncio.gather(*(svc.update_configuration_values("c1", {"n": n}) for n in range(1, 41)))
        assert outcomes == ["updated"] * 40
        assert repo.reads == reads and repo.lost == 0
        doc = await svc.get("c1")
        assert doc["configuration"]["n"]["value"] == 40  # in the order they arrived
        assert not svc._updating  # noqa: SLF001 - nothing left waiting
        await db.close()

    asyncio.run(go())


def test_a_cancelled_update_gives_up_its_turn(database_url: str) -> None:
    async def go() -> None:
        db, svc, repo = await _node(database_url)
        repo.gate = asyncio.Event()
        first = asyncio.create_task(svc.update_configuration_values("c1", {"n": 1}))
        waiting = asyncio.create_task(svc.update_configuration_values("c1", {"n": 2}))
        last = asyncio.create_task(svc.update_configuration_values("c1", {"n": 3}))
        await asyncio.sleep(0.01)
        waiting.cancel()  # while waiting for its turn
        repo.gate.set()
        assert await first == "updated" and await last == "updated"
        assert waiting.cancelled()
        doc = await svc.get("c1")
        assert doc["configuration"]["n"]["value"] == 3
        # Cancelled once given the turn, before running: the turn goes on to the next one.
        repo.gate = asyncio.Event()
        first = asyncio.create_task(svc.update_configuration_values("c1", {"n": 4}))
        handed = asyncio.create_task(svc.update_configuration_values("c1", {"n": 5}))
        last = asyncio.create_task(svc.update_configuration_values("c1", {"n": 6}))
        await asyncio.sleep(0.01)
        repo.gate.set()
        await first
        handed.cancel()  # its turn is set, it has not run yet
        assert await last == "updated"
        assert handed.cancelled()
        doc = await svc.get("c1")
        assert doc["configuration"]["n"]["value"] == 6
        assert not svc._updating  # noqa: SLF001
        await db.close()

    asyncio.run(go())
