"""The server contract: first start, ELASTIC_PASSWORD, test mode, data dir."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.e2e.server import Server


def test_first_start_generates_and_prints_a_password(tmp_path: Path) -> None:
    srv = Server(tmp_path, password=None, test_mode=False).start()
    try:
        match = re.search(r"password for the 'elastic' superuser: (\S+)", srv.output())
        assert match, srv.output()
        password = match.group(1)
        assert len(password) >= 20
        me = httpx.get(srv.url + "/_security/_authenticate", auth=("elastic", password)).json()
        assert me["username"] == "elastic"
        # Without test mode the reset path does not exist.
        res = httpx.post(srv.url + "/_keyplane/_reset", auth=("elastic", password))
        assert res.status_code == 400
        assert res.json() == {"error": "no handler found for uri [/_keyplane/_reset] and method [POST]"}
    finally:
        srv.stop()
    # A second start keeps the password and prints nothing new.
    again = Server(tmp_path, password=None, test_mode=False).start()
    try:
        assert httpx.get(again.url + "/", auth=("elastic", password)).status_code == 200
        assert again.output().count("superuser:") == 0
    finally:
        again.stop()


def test_elastic_password_sets_the_password_and_test_mode_warns(tmp_path: Path) -> None:
    srv = Server(tmp_path, password="first-pass").start()
    srv.stop()
    srv = Server(tmp_path, password="second-pass").start()
    try:
        assert httpx.get(srv.url + "/", auth=("elastic", "second-pass")).status_code == 200
        assert httpx.get(srv.url + "/", auth=("elastic", "first-pass")).status_code == 401
        assert "KEYPLANE_TEST_MODE is on" in srv.output()
        assert (tmp_path / "keyplane.db").exists()
    finally:
        srv.stop()


def test_reset_is_superuser_only(http: httpx.Client, server: Server) -> None:
    http.put("/_security/user/mallory", json={"password": "mallory-pw", "roles": ["viewer"]})
    http.put("/_security/role/keep_me_not", json={"cluster": ["monitor"]})
    res = httpx.post(server.url + "/_keyplane/_reset", auth=("mallory", "mallory-pw"))
    assert res.status_code == 403
    assert http.post("/_keyplane/_reset").status_code == 200
    assert http.get("/_security/user/mallory").status_code == 404
    assert http.get("/_security/role/keep_me_not").status_code == 404
    assert http.get("/_security/user/elastic").status_code == 200
