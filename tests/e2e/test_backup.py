"""``keyplane backup`` and ``keyplane restore`` against real servers (issue 13: "backup taken under
write load and restored with nothing lost").

A server on the store under test holds users, a role, API keys, a connector and its secret, and
documents. A backup is taken by the command while clients keep creating API keys, restored by the
command into a fresh store, and a second server started on it: every key acknowledged before the
backup began authenticates there, the counts are the header's, and nothing is there half-written.
Restores of damaged files, into stores with rows, and beside a running server are refused with the
store unchanged; a backup moves from SQLite to PostgreSQL and back with every row the same.
PostgreSQL databases are scratch ones (``scratch_h4b_*``), dropped afterwards.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from elasticsearch import Elasticsearch, helpers

from keyplane.backup.dump import backup
from keyplane.backup.fileformat import read_header
from keyplane.backup.load import restore
from keyplane.backup.tables import store_url
from tests import pg
from tests.conftest import STORE
from tests.e2e.server import PASSWORD, Server

DOCS = 3000
ELASTIC = ("elastic", PASSWORD)


def _admin(sql: str) -> None:
    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(pg.ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


@dataclass
class Store:
    """A data dir (SQLite file or key file) and, for PostgreSQL, a scratch database."""

    data_dir: Path
    url: str | None = None

    def flags(self) -> list[str]:
        return ["--data-dir", str(self.data_dir), *(["--database-url", self.url] if self.url else [])]


@dataclass
class Stores:
    root: Path
    made: list[str] = field(default_factory=list)

    def new(self, kind: str = STORE, key_from: Store | None = None) -> Store:
        data_dir = self.root / secrets.token_hex(4)
        data_dir.mkdir(mode=0o700)
        if key_from is not None:  # the same key, so connector secrets can be read
            shutil.copy(key_from.data_dir / "secrets.key", data_dir / "secrets.key")
        if kind != "postgres":
            return Store(data_dir)
        reason = pg.available()
        if reason:
            pytest.skip(reason)
        name = "scratch_h4b_" + secrets.token_hex(6)
        _admin(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return Store(data_dir, urlunsplit(urlsplit(pg.ADMIN_URL)._replace(path="/" + name)))

    def drop(self) -> None:
        for name in self.made:
            _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    made = Stores(tmp_path_factory.mktemp("stores"))
    yield made
    made.drop()


def keyplane(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a keyplane command as an operator would, with none of the test's KEYPLANE_ environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYPLANE_")}
    return subprocess.run(
        [sys.executable, "-m", "keyplane.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def serve(store: Store) -> Server:
    return Server(store.data_dir, store.url).start(timeout=30)


@dataclass
class Source:
    store: Store
    server: Server
    keys: dict[str, str]  # id -> encoded
    secret_id: str
    cluster_uuid: str


def _client(server: Server, **auth: object) -> Elasticsearch:
    if not auth:
        auth = {"basic_auth": ("elastic", PASSWORD)}
    return Elasticsearch(server.url, request_timeout=30, **auth)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def source(stores: Stores) -> Iterator[Source]:
    """A running server holding one of everything, and documents."""
    store = stores.new()
    server = serve(store)
    try:
        es = _client(server)
        es.security.put_role(name="logs_reader", indices=[{"names": ["logs"], "privileges": ["read"]}])
        es.security.put_user(username="ann", password="ann-password", roles=["logs_reader"])
        keys = {}
        for i in range(20):
            key = es.security.create_api_key(name=f"initial-{i}", metadata={"n": i, "nul": "a\x00b"})
            keys[key["id"]] = key["encoded"]
        es.connector.put(connector_id="c1", index_name="search-c1", name="c1", service_type="google_drive")
        secret = httpx.post(f"{server.url}/_connector/_secret", json={"value": "s3cret"}, auth=ELASTIC).json()
        helpers.bulk(es, ({"_index": "logs", "_id": str(i), "n": i, "tag": f"t{i % 7}"} for i in range(DOCS)))
        es.indices.refresh(index="logs")
        yield Source(store, server, keys, secret["id"], es.info()["cluster_uuid"])
        es.close()
    finally:
        server.stop()


class Writer:
    """Clients creating API keys in a loop; each key with the time its creation was acknowledged."""

    def __init__(self, server: Server, threads: int = 2) -> None:
        self.server = server
        self.acknowledged: list[tuple[float, str, str]] = []  # (monotonic time, id, encoded)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]

    def _run(self, n: int) -> None:
        es = _client(self.server)
        i = 0
        while not self._stop.is_set():
            key = es.security.create_api_key(name=f"load-{n}-{i}")
            acked = time.monotonic()
            with self._lock:
                self.acknowledged.append((acked, key["id"], key["encoded"]))
            i += 1
        es.close()

    def __enter__(self) -> Writer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)


def _secret(server: Server, secret_id: str) -> str:
    answer = httpx.get(f"{server.url}/_connector/_secret/{secret_id}", auth=ELASTIC)
    answer.raise_for_status()
    return str(answer.json()["value"])


def _key_ids(es: Elasticsearch) -> tuple[set[str], int]:
    found = es.security.query_api_keys(size=10000, query={"match_all": {}})
    return {k["id"] for k in found["api_keys"]}, found["total"]


def _authenticates(server: Server, key_id: str, encoded: str) -> bool:
    es = _client(server, api_key=encoded)
    try:
        return bool(es.security.authenticate()["api_key"]["id"] == key_id)
    finally:
        es.close()


# In-process where the command itself is not what a test looks at: each command process costs
# seconds of imports on a loaded machine.
def _backup(store: Store, file: Path) -> None:
    backup(store_url(store.data_dir, store.url), file, secrets_key=None, progress=False)


def _restore_here(store: Store, file: Path, *, force: bool = False) -> None:
    restore(store_url(store.data_dir, store.url), file, force=force, progress=False)


def _restore(store: Store, file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return keyplane("restore", str(file), *store.flags(), *extra)


def _rows(file: Path) -> list[bytes]:
    """A backup's lines after its header, each table's rows sorted (the stores return them in any order)."""
    lines = gzip.decompress(file.read_bytes()).split(b"\n")[1:-2]
    out: list[bytes] = []
    section: list[bytes] = []
    for line in lines:
        if line.startswith(b"{"):
            out += sorted(section)
            section = []
            out.append(line)
        else:
            section.append(line)
    return out + sorted(section)


def test_backup_under_write_load_restores_every_acknowledged_key(
    source: Source, stores: Stores, tmp_path: Path
) -> None:
    file = tmp_path / "load.ndjson.gz"
    with Writer(source.server) as writer:
        deadline = time.monotonic() + 20
        while writer.count() < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        began = time.monotonic()
        done = keyplane("backup", str(file), "--progress", *source.store.flags())
        ended = time.monotonic()
        time.sleep(0.3)  # still writing after the backup
    assert done.returncode == 0, done.stderr
    assert "backup: done" in done.stderr and "rows/s" in done.stderr
    before = [(key_id, encoded) for acked, key_id, encoded in writer.acknowledged if acked < began]
    during = [(key_id, encoded) for acked, key_id, encoded in writer.acknowledged if began <= acked]
    assert len(before) >= 30 and any(acked > ended for acked, _, _ in writer.acknowledged)
    header = read_header(file)
    rows = {t.name: t.rows for t in header.tables}
    assert header.store == ("postgresql" if source.store.url else "sqlite")
    assert rows["api_keys"] >= len(source.keys) + len(before)
    assert rows["documents"] == DOCS and rows["connector_secrets"] == 1
    assert oct(file.stat().st_mode & 0o777) == "0o600"
    assert not list(tmp_path.glob(".*partial*"))

    target = stores.new(key_from=source.store)
    restored = _restore(target, file, "--progress")
    assert restored.returncode == 0, restored.stderr
    assert "restore: done" in restored.stderr
    server = serve(target)
    try:
        es = _client(server)
        ids, total = _key_ids(es)
        # Every key the backup holds is there, and the count tables agree with the header.
        assert len(ids) == total == rows["api_keys"]
        created = set(source.keys) | {key_id for _, key_id, _ in writer.acknowledged}
        assert ids <= created  # nothing else appeared
        for key_id, encoded in [*source.keys.items(), *before]:
            assert key_id in ids and _authenticates(server, key_id, encoded), key_id
        # Keys acknowledged while the backup ran are there whole, or not at all (a sample of them
        # on each side of the snapshot: one request each).
        inside = [k for k in during if k[0] in ids]
        for key_id, encoded in inside[:50] + inside[-50:]:
            assert _authenticates(server, key_id, encoded), key_id
        assert es.count(index="logs")["count"] == DOCS
        hit = es.search(index="logs", query={"term": {"n": 1234}})["hits"]["hits"]
        assert [h["_source"]["tag"] for h in hit] == [f"t{1234 % 7}"]
        assert es.info()["cluster_uuid"] == source.cluster_uuid
        assert _secret(server, source.secret_id) == "s3cret"
        assert es.connector.get(connector_id="c1")["index_name"] == "search-c1"
        ann = _client(server, basic_auth=("ann", "ann-password"))
        assert ann.security.authenticate()["roles"] == ["logs_reader"]
        assert ann.count(index="logs")["count"] == DOCS
        ann.close()
        es.close()
    finally:
        server.stop()


def test_restore_refuses_damaged_files_stores_with_rows_and_running_servers(
    source: Source, stores: Stores, tmp_path: Path
) -> None:
    file = tmp_path / "b.ndjson.gz"
    _backup(source.store, file)

    running = _restore(source.store, file, "--force")
    assert running.returncode == 65
    assert "running" in running.stderr or "connected" in running.stderr

    target = stores.new(key_from=source.store)
    _restore_here(target, file)
    kept = tmp_path / "kept.ndjson.gz"
    _backup(target, kept)

    again = _restore(target, file)
    assert again.returncode == 65 and "not empty" in again.stderr and "--force" in again.stderr
    raw = bytearray(gzip.decompress(file.read_bytes()))
    at = raw.index(b"initial-7")
    raw[at + len("initial-")] = ord("8")  # one byte of one row
    damaged = tmp_path / "damaged.ndjson.gz"
    damaged.write_bytes(gzip.compress(bytes(raw)))
    refused = _restore(target, damaged, "--force")
    assert refused.returncode == 65 and "checksum" in refused.stderr and "nothing was restored" in refused.stderr

    after = tmp_path / "after.ndjson.gz"
    _backup(target, after)
    assert _rows(after) == _rows(kept)  # unchanged by the refused restores
    _restore_here(target, file, force=True)


def test_a_backup_moves_between_sqlite_and_postgresql(source: Source, stores: Stores, tmp_path: Path) -> None:
    other = "sqlite" if STORE == "postgres" else "postgres"
    first = tmp_path / "first.ndjson.gz"
    _backup(source.store, first)
    moved = stores.new(other, key_from=source.store)
    _restore_here(moved, first)
    second = tmp_path / "second.ndjson.gz"
    _backup(moved, second)
    back = stores.new(STORE, key_from=source.store)
    _restore_here(back, second)
    third = tmp_path / "third.ndjson.gz"
    _backup(back, third)
    assert read_header(second).store != read_header(third).store
    assert _rows(first) == _rows(second) == _rows(third)

    server = serve(moved)
    try:
        for key_id, encoded in list(source.keys.items())[:5]:
            assert _authenticates(server, key_id, encoded)
        es = _client(server)
        key = es.security.get_api_key(name="initial-3")["api_keys"][0]
        assert key["metadata"] == {"n": 3, "nul": "a\x00b"}
        assert _secret(server, source.secret_id) == "s3cret"
        assert es.count(index="logs", query={"term": {"tag": "t3"}})["count"] == len(range(3, DOCS, 7))
        es.close()
    finally:
        server.stop()


def test_include_key_file_carries_the_secrets_key_to_a_data_dir_without_one(
    source: Source, stores: Stores, tmp_path: Path
) -> None:
    file = tmp_path / "with-key.ndjson.gz"
    done = keyplane("backup", str(file), "--include-key-file", *source.store.flags())
    assert done.returncode == 0, done.stderr
    assert "can decrypt them" in done.stderr
    target = stores.new()  # no secrets.key in its data dir
    restored = _restore(target, file)
    assert restored.returncode == 0, restored.stderr
    key_file = target.data_dir / "secrets.key"
    assert key_file.read_bytes() == (source.store.data_dir / "secrets.key").read_bytes()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert "WARNING" not in restored.stderr
