"""No secret or hash reaches the server's log, whichever way a statement carrying one fails.

Each test runs its own server (its log is read afterwards) and breaks the store under it: a
constraint that refuses the write (PostgreSQL quotes the whole failing row in its error), a
connection terminated in mid-statement, a SQLite write lock held by another process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import STORE
from tests.e2e.server import PASSWORD, Server

ELASTIC = ("elastic", PASSWORD)
NEW_PASSWORD = "leaky-password-7f3a9"
# bcrypt, PBKDF2 and salted SHA-256 hashes as Keyplane stores them.
HASHES = re.compile(r"\$2[aby]\$\d\d\$|\{PBKDF2(_STRETCH)?\}|\{SSHA256\}")


@pytest.fixture
def own_server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    srv = Server(tmp_path, database_url).start()
    yield srv
    srv.stop()


def _pg(server: Server, *statements: str) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(server.database_url)
        try:
            for sql in statements:
                await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


def _assert_clean(server: Server) -> str:
    log = server.output()
    assert NEW_PASSWORD not in log
    assert not HASHES.search(log), HASHES.search(log)
    return log


def test_a_refused_write_logs_neither_its_values_nor_the_database_text(own_server: Server) -> None:
    if STORE == "postgres":
        # PostgreSQL's error then says "Failing row contains (ann, $2a$10$...)".
        _pg(own_server, "ALTER TABLE users ADD CONSTRAINT refuse_ann CHECK (username <> 'ann') NOT VALID")
    else:
        db = sqlite3.connect(own_server.data_dir / "keyplane.db", isolation_level=None)
        db.execute(
            "CREATE TRIGGER refuse_ann BEFORE INSERT ON users WHEN NEW.username = 'ann' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
        db.close()
    with httpx.Client(base_url=own_server.url, auth=ELASTIC, timeout=30) as http:
        res = http.put("/_security/user/ann", json={"password": NEW_PASSWORD, "roles": []})
        assert res.status_code == 500
        assert NEW_PASSWORD not in res.text and not HASHES.search(res.text)
    time.sleep(0.2)
    log = _assert_clean(own_server)
    assert "unhandled error on PUT /_security/user/ann" in log  # the failure was logged, without values
    assert "IntegrityError" in log


def test_a_write_cut_off_in_mid_statement_logs_no_values(own_server: Server) -> None:
    with httpx.Client(base_url=own_server.url, auth=ELASTIC, timeout=60) as http:
        assert http.put("/_security/user/ann", json={"password": "first-password", "roles": []}).status_code == 200
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            if STORE == "postgres":
                result = _terminate_in_mid_statement(own_server, pool, http)
            else:
                other = sqlite3.connect(own_server.data_dir / "keyplane.db", isolation_level=None)
                other.execute("BEGIN IMMEDIATE")  # the write waits, then gives up
                try:
                    result = pool.submit(_change_password, http).result()
                finally:
                    other.execute("ROLLBACK")
                    other.close()
        assert result.status_code == 503, result.text
        assert result.json()["error"]["type"] == "unavailable_shards_exception"
    time.sleep(0.2)
    log = _assert_clean(own_server)
    assert "the store is unavailable" in log


def _change_password(http: httpx.Client) -> httpx.Response:
    return http.post("/_security/user/ann/_password", json={"password": NEW_PASSWORD})


def _terminate_in_mid_statement(
    server: Server, pool: concurrent.futures.ThreadPoolExecutor, http: httpx.Client
) -> httpx.Response:
    """Block the UPDATE carrying the new hash on a table lock, then kill its backend.

    The UPDATE waits while it is parsed (it needs a lock on the table), so the backend waiting on a
    lock is found by its wait, not by its query text.
    """

    async def go() -> httpx.Response:
        locker = await asyncpg.connect(server.database_url)
        try:
            tx = locker.transaction()
            await tx.start()
            await locker.execute("LOCK TABLE users IN SHARE MODE")  # reads pass, writes wait
            pending = asyncio.wrap_future(pool.submit(_change_password, http))
            for _ in range(200):
                pid = await locker.fetchval(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid() "
                    "AND datname = current_database()"  # never another database's backend on a shared server
                )
                if pid:
                    await locker.execute("SELECT pg_terminate_backend($1)", pid)
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the update never waited on the lock")
            await tx.rollback()
            return await pending
        finally:
            await locker.close()

    return asyncio.run(go())
