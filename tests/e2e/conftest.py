"""A real server process per test session, wiped between tests through the test-mode reset."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from elasticsearch import Elasticsearch

from tests.e2e.server import PASSWORD, Server, on_store


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with on_store(tmp_path_factory.mktemp("server")) as srv:
        yield srv


# A cluster of two: ``upstream`` plays the cluster that holds content indices, ``front`` forwards to it.
@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with on_store(tmp_path_factory.mktemp("upstream")) as srv:
        yield srv


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory, upstream: Server) -> Iterator[Server]:
    env = {
        "KEYPLANE_UPSTREAM_URL": upstream.url,
        "KEYPLANE_UPSTREAM_USERNAME": "elastic",
        "KEYPLANE_UPSTREAM_PASSWORD": PASSWORD,
    }
    with on_store(tmp_path_factory.mktemp("front"), extra_env=env) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean(request: pytest.FixtureRequest) -> None:
    if "server" in request.fixturenames:
        srv: Server = request.getfixturevalue("server")
        httpx.post(srv.url + "/_keyplane/_reset", auth=("elastic", PASSWORD)).raise_for_status()


@pytest.fixture
def es(server: Server) -> Iterator[Elasticsearch]:
    client = Elasticsearch(server.url, basic_auth=("elastic", PASSWORD))
    yield client
    client.close()


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, auth=("elastic", PASSWORD), timeout=10) as client:
        yield client
