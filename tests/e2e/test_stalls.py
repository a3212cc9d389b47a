"""No request stalls the others: a SQLite write lock held by another process, and compressed bodies.

A real server on its own data dir; latencies are asserted with wide margins, CPU from /proc.
"""

from __future__ import annotations

import concurrent.futures
import gzip
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import STORE
from tests.e2e.server import PASSWORD, Server

ELASTIC = ("elastic", PASSWORD)


@pytest.fixture
def own_server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    srv = Server(tmp_path, database_url).start()
    yield srv
    srv.stop()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed(client: httpx.Client, method: str, path: str, **kwargs: object) -> tuple[httpx.Response, float]:
    t0 = time.perf_counter()
    res = client.request(method, path, **kwargs)  # type: ignore[arg-type]
    return res, time.perf_counter() - t0


@pytest.mark.skipif(STORE != "sqlite", reason="SQLite's file lock")
def test_a_held_sqlite_write_lock_stalls_no_read_and_no_cached_authentication(own_server: Server) -> None:
    with httpx.Client(base_url=own_server.url, auth=ELASTIC, timeout=30) as http:
        key = http.post("/_security/api_key", json={"name": "k"}).json()
        assert http.put("/_security/user/ann", json={"password": "ann-secret", "roles": []}).status_code == 200
        api_key = {"Authorization": f"ApiKey {key['encoded']}"}
        assert http.get("/_security/_authenticate", headers=api_key).status_code == 200  # now cached

        other = sqlite3.connect(own_server.data_dir / "keyplane.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # as the sqlite3 shell or a backup would
        try:
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                t0 = time.perf_counter()
                writers = [httpx.Client(base_url=own_server.url, auth=ELASTIC, timeout=30) for _ in range(2)]
                writes = [
                    pool.submit(_timed, client, "POST", "/_security/api_key", json={"name": f"w{i}"})
                    for i, client in enumerate(writers)
                ]
                time.sleep(0.3)
                # While the writes wait for the lock: cached authentication, and requests that only read.
                slowest = 0.0
                while not all(w.done() for w in writes) and time.perf_counter() - t0 < 20:
                    for method, path, headers in (
                        ("GET", "/_security/_authenticate", api_key),
                        ("GET", "/_security/_authenticate", {}),
                        ("GET", "/_security/user/ann", {}),
                        ("GET", f"/_security/api_key?id={key['id']}", {}),
                    ):
                        res, took = _timed(http, method, path, headers=headers)
                        assert res.status_code == 200, res.text
                        slowest = max(slowest, took)
                assert slowest < 0.5, slowest
                # A write that cannot get the lock gives up after a bounded wait with a retryable 503.
                for write in writes:
                    res, took = write.result()
                    assert res.status_code == 503, res.text
                    assert res.json()["error"]["type"] == "unavailable_shards_exception"
                    assert took < 15
                for client in writers:
                    client.close()
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert http.post("/_security/api_key", json={"name": "after"}).status_code == 200
        names = {k["name"] for k in http.get("/_security/api_key").json()["api_keys"]}
        assert names == {"k", "after"}  # the refused writes left nothing


def test_unauthenticated_compressed_bodies_are_never_inflated(own_server: Server) -> None:
    bomb = gzip.compress(b" " * (100 * 1024 * 1024))  # ~100 KB that inflates to 100 MB
    assert own_server.proc is not None
    pid = own_server.proc.pid
    with httpx.Client(base_url=own_server.url, timeout=30) as anon:
        headers = {"content-type": "application/json", "content-encoding": "gzip"}
        res = anon.post("/_security/api_key", content=bomb, headers=headers)
        assert res.status_code == 401 and res.json()["error"]["type"] == "security_exception"
        before = _cpu_seconds(pid)
        for _ in range(24):
            assert anon.post("/_security/api_key", content=bomb, headers=headers).status_code == 401
        # Inflating one of them costs ~0.3 s of CPU; refusing all 24 unread costs a few ms each.
        assert _cpu_seconds(pid) - before < 1.5
        # The connection stays usable after a refused body.
        assert anon.get("/", auth=ELASTIC).status_code == 200


def test_an_authenticated_compressed_body_is_inflated_off_the_event_loop(own_server: Server) -> None:
    bomb = gzip.compress(b" " * (101 * 1024 * 1024))
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    with (
        httpx.Client(base_url=own_server.url, auth=ELASTIC, timeout=30) as http,
        httpx.Client(base_url=own_server.url, auth=ELASTIC, timeout=30) as sender,
    ):
        assert http.get("/_security/_authenticate").status_code == 200
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            big = pool.submit(_timed, sender, "POST", "/_security/api_key", content=bomb, headers=headers)
            small: list[float] = []
            while not big.done():
                res, took = _timed(http, "GET", "/_security/_authenticate")
                assert res.status_code == 200
                small.append(took)
            res, took = big.result()
        assert res.status_code == 413  # still bounded at 100 MB inflated
        # Requests went on while the body was inflated (each far quicker than the inflation itself).
        # Blocking the loop for the inflation would let one or two through, the slowest waiting it out.
        assert len(small) >= 5 and max(small) < took * 0.75, (small, took)
    # Small compressed bodies (the clients' http_compress) still work.
    with httpx.Client(base_url=own_server.url, auth=ELASTIC) as http:
        res = http.post("/_security/api_key", content=gzip.compress(b'{"name":"gz"}'), headers=headers)
        assert res.status_code == 200 and res.json()["name"] == "gz"
