"""Stores for the integration tests: a migrated database, and a module's key store filled once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from keyplane.store import schema
from keyplane.store.database import Database
from keyplane.store.migrations import migrate
from tests import pg
from tests.conftest import STORE


async def open_migrated(url: str) -> Database:
    """An open Database on ``url`` with every migration applied."""
    db = Database(url)
    await db.open()
    await migrate(db)
    return db


def filled_key_store(
    tmp_path_factory: pytest.TempPathFactory, name: str, rows: list[dict[str, Any]]
) -> Iterator[tuple[asyncio.AbstractEventLoop, Database]]:
    """A store of the kind under test holding ``rows`` of api_keys, with the loop it runs on; for a
    module-scoped fixture to ``yield from``. A PostgreSQL database is made for it and dropped after."""
    if STORE == "postgres":
        reason = pg.available()
        if reason:
            pytest.skip(reason)
        url = pg.create_database()
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp(name) / 'keyplane.db'}"
    loop = asyncio.new_event_loop()

    async def fill() -> Database:
        db = await open_migrated(url)
        async with db.transaction() as conn:
            await conn.execute(schema.api_keys.insert(), rows)
        return db

    db = loop.run_until_complete(fill())
    yield loop, db
    loop.run_until_complete(db.close())
    loop.close()
    if STORE == "postgres":
        pg.drop_database(url)
