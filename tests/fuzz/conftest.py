"""A real server for the fuzz suite (one per session, on the store under test), its callers and its seed."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import pg
from tests.conftest import STORE
from tests.e2e.server import Server
from tests.fuzz import spec
from tests.fuzz.accounts import Keeper, provision
from tests.fuzz.requests import Accounts

SEED_VARIABLE = "KEYPLANE_FUZZ_SEED"


_SEEDS: list[int] = []


@pytest.fixture(scope="session")
def fuzz_seed() -> int:
    """The seed of every Hypothesis run here: KEYPLANE_FUZZ_SEED, else a fresh one, printed to replay."""
    value = os.environ.get(SEED_VARIABLE)
    seed = int(value) if value else random.SystemRandom().randrange(2**32)
    _SEEDS.append(seed)
    return seed


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for seed in _SEEDS:
        terminalreporter.write_line(f"fuzz seed {seed} (store {STORE}); replay with {SEED_VARIABLE}={seed}")


@pytest.fixture(scope="session")
def fuzz_spec() -> tuple[spec.Api, ...]:
    reason = spec.missing_reason()
    if reason:
        pytest.skip(reason)
    return spec.load()


@contextmanager
def own_server(data_dir: Path) -> Iterator[Server]:
    """A server of its own on the store under test (a fresh PostgreSQL database when that is the store)."""
    url = None
    if STORE == "postgres":
        reason = pg.available()
        if reason:
            pytest.skip(reason)
        url = pg.create_database()
    srv = Server(data_dir, url).start()
    try:
        yield srv
    finally:
        srv.stop()
        if url:
            pg.drop_database(url)


@pytest.fixture(scope="session")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with own_server(tmp_path_factory.mktemp("fuzz-server")) as srv:
        yield srv


@pytest.fixture(scope="session")
def accounts(fuzz_server: Server) -> Iterator[Accounts]:
    """The callers and seeded objects; a keeper thread re-creates callers the fuzzer revokes."""
    acc = provision(fuzz_server.url)
    keeper = Keeper(fuzz_server.url, acc)
    keeper.start()
    yield acc
    keeper.stop()
