"""Acknowledged writes survive the process being killed, and the data dir is the owner's alone.

(That a commit also survives power loss rests on synchronous=FULL, checked on the writer connection
in tests/integration/test_sqlite_threads.py.)
"""

from __future__ import annotations

import signal
import stat
from pathlib import Path

import httpx

from keyplane.store.database import prepare_data_dir
from tests.conftest import STORE
from tests.e2e.server import PASSWORD, Server

ELASTIC = ("elastic", PASSWORD)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_acknowledged_writes_survive_kill_9(tmp_path: Path, database_url: str) -> None:
    srv = Server(tmp_path, database_url).start()
    try:
        with httpx.Client(base_url=srv.url, auth=ELASTIC, timeout=30) as http:
            kept = http.post("/_security/api_key", json={"name": "kept"}).json()
            gone = http.post("/_security/api_key", json={"name": "gone"}).json()
            assert http.put("/_security/user/ann", json={"password": "old-password", "roles": []}).status_code == 200
            res = http.request("DELETE", "/_security/api_key", json={"ids": [gone["id"]]})
            assert res.status_code == 200 and res.json()["invalidated_api_keys"] == [gone["id"]]
            res = http.post("/_security/user/ann/_password", json={"password": "new-password"})
            assert res.status_code == 200
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGKILL)  # right after the acknowledgements
        srv.proc.wait(10)
    finally:
        srv.stop()
    again = Server(tmp_path, database_url).start()
    try:
        with httpx.Client(base_url=again.url, timeout=30) as http:
            ok = http.get("/_security/_authenticate", headers={"Authorization": f"ApiKey {kept['encoded']}"})
            assert ok.status_code == 200
            refused = http.get("/_security/_authenticate", headers={"Authorization": f"ApiKey {gone['encoded']}"})
            assert refused.status_code == 401
            assert http.get("/_security/_authenticate", auth=("ann", "new-password")).status_code == 200
            assert http.get("/_security/_authenticate", auth=("ann", "old-password")).status_code == 401
    finally:
        again.stop()


def test_a_new_data_dir_is_created_owner_only(tmp_path: Path) -> None:
    prepare_data_dir(tmp_path / "a" / "data")
    assert _mode(tmp_path / "a" / "data") == 0o700


def _start_and_check_private(data: Path, database_url: str, names: list[str]) -> Server:
    """Start and stop a server on ``data``; meanwhile the dir is 0700 and each named file 0600."""
    srv = Server(data, database_url).start()
    try:
        assert _mode(data) == 0o700
        for name in names:
            assert _mode(data / name) == 0o600, name
    finally:
        srv.stop()
    return srv


def test_the_data_dir_and_its_files_are_owner_only(tmp_path: Path, database_url: str) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # as an older Keyplane left it
    names = ["secrets.key"]
    if STORE == "sqlite":
        names += ["keyplane.db", "keyplane.db-wal", "keyplane.db-shm", "keyplane.db.lock"]
    srv = _start_and_check_private(data, database_url, names)
    # Files another version left readable by others are made private at the next start.
    data.chmod(0o755)
    for name in names:
        if (data / name).exists():
            (data / name).chmod(0o644)
    srv = _start_and_check_private(data, database_url, names)
    assert "was readable by other users" in srv.output()
