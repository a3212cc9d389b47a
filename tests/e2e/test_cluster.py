"""Two nodes on one PostgreSQL database behave as one service."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import pg
from tests.e2e.server import PASSWORD, Server


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    reason = pg.available()
    if reason:
        pytest.skip(f"two-node tests need PostgreSQL: {reason}")
    url = pg.create_database()
    a = Server(tmp_path / "a", url)
    b = Server(tmp_path / "b", url)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a.start()
    b.start()
    yield a, b
    a.stop()
    b.stop()
    pg.drop_database(url)


def _eventually(check, timeout: float = 1.0) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError("not within the deadline")
        time.sleep(0.02)


def test_password_change_and_disable_reach_the_other_node_within_a_second(two_nodes: tuple[Server, Server]) -> None:
    a, b = two_nodes
    admin = ("elastic", PASSWORD)
    httpx.put(
        a.url + "/_security/user/gina", json={"password": "gina-pass-1", "roles": ["viewer"]}, auth=admin
    ).raise_for_status()
    # Node b caches gina's credentials.
    assert httpx.get(b.url + "/_security/_authenticate", auth=("gina", "gina-pass-1")).status_code == 200
    httpx.post(a.url + "/_security/user/gina/_password", json={"password": "gina-pass-2"}, auth=admin)
    _eventually(lambda: httpx.get(b.url + "/_security/_authenticate", auth=("gina", "gina-pass-1")).status_code == 401)
    assert httpx.get(b.url + "/_security/_authenticate", auth=("gina", "gina-pass-2")).status_code == 200
    httpx.post(a.url + "/_security/user/gina/_disable", auth=admin)
    _eventually(lambda: httpx.get(b.url + "/_security/_authenticate", auth=("gina", "gina-pass-2")).status_code == 401)


def test_role_change_reaches_the_other_node_within_a_second(two_nodes: tuple[Server, Server]) -> None:
    a, b = two_nodes
    admin = ("elastic", PASSWORD)
    httpx.put(a.url + "/_security/role/ops", json={"cluster": ["monitor"]}, auth=admin).raise_for_status()
    httpx.put(a.url + "/_security/user/hank", json={"password": "hank-pass", "roles": ["ops"]}, auth=admin)
    assert httpx.get(b.url + "/_cluster/health", auth=("hank", "hank-pass")).status_code == 200
    httpx.put(a.url + "/_security/role/ops", json={"cluster": []}, auth=admin).raise_for_status()
    _eventually(lambda: httpx.get(b.url + "/_cluster/health", auth=("hank", "hank-pass")).status_code == 403)


def test_api_key_invalidation_and_update_reach_the_other_node_within_a_second(
    two_nodes: tuple[Server, Server],
) -> None:
    a, b = two_nodes
    admin = ("elastic", PASSWORD)
    key = httpx.post(a.url + "/_security/api_key", json={"name": "shared"}, auth=admin).json()
    header = {"Authorization": "ApiKey " + key["encoded"]}
    # b verifies and caches the key; it may manage users (it inherits the superuser).
    assert httpx.get(b.url + "/_security/user", headers=header).status_code == 200
    # Re-scope the key on a: b must stop allowing user management.
    httpx.put(
        a.url + f"/_security/api_key/{key['id']}",
        auth=admin,
        json={"role_descriptors": {"mon": {"cluster": ["monitor"]}}},
    ).raise_for_status()
    elapsed = _eventually(lambda: httpx.get(b.url + "/_security/user", headers=header).status_code == 403)
    assert elapsed < 1.0
    assert httpx.get(b.url + "/_cluster/health", headers=header).status_code == 200
    # Invalidate on a: b refuses the key.
    httpx.request("DELETE", a.url + "/_security/api_key", json={"ids": [key["id"]]}, auth=admin).raise_for_status()
    elapsed = _eventually(lambda: httpx.get(b.url + "/_cluster/health", headers=header).status_code == 401)
    assert elapsed < 1.0


def test_a_database_outage_answers_503_and_the_node_recovers(tmp_path: Path) -> None:
    reason = pg.available()
    if reason:
        pytest.skip(f"outage tests need PostgreSQL: {reason}")
    url = pg.create_database()
    node = Server(tmp_path, url).start()
    admin = ("elastic", PASSWORD)
    try:
        assert httpx.get(node.url + "/_security/_authenticate", auth=admin).status_code == 200
        pg.set_accepting(url, False)
        # Anything that needs the database: a retryable 503 in Elasticsearch's envelope, never a 500.
        for res in (
            httpx.post(node.url + "/_security/api_key", json={"name": "k"}, auth=admin),
            httpx.get(node.url + "/_security/_authenticate", auth=("someone", "unknown-pw")),
            httpx.get(node.url + "/_connector", auth=admin),
        ):
            assert res.status_code == 503, res.text
            assert res.json()["error"]["type"] == "unavailable_shards_exception"
        # Credentials already verified keep working from the cache.
        assert httpx.get(node.url + "/_security/_authenticate", auth=admin).status_code == 200
        pg.set_accepting(url, True)
        _eventually(
            lambda: httpx.post(node.url + "/_security/api_key", json={"name": "k"}, auth=admin).status_code == 200,
            timeout=5.0,
        )
        assert "Traceback" not in node.output()
    finally:
        pg.set_accepting(url, True)
        node.stop()
        pg.drop_database(url)


def test_a_node_with_another_secrets_key_says_so(two_nodes: tuple[Server, Server]) -> None:
    a, b = two_nodes  # each generated a key file of its own in its data dir
    auth = ("elastic", PASSWORD)
    httpx.put(a.url + "/_connector/_secret/s1", json={"value": "hunter2"}, auth=auth).raise_for_status()
    assert httpx.get(a.url + "/_connector/_secret/s1", auth=auth).json()["value"] == "hunter2"
    answer = httpx.get(b.url + "/_connector/_secret/s1", auth=auth)
    assert answer.status_code == 500
    error = answer.json()["error"]
    assert error["type"] == "illegal_state_exception"
    assert "[s1] was encrypted with key" in error["reason"] and "every node sharing a database" in error["reason"]
    assert "hunter2" not in answer.text and "Traceback" not in b.output()
