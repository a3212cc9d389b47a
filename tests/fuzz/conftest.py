"""A real server for the fuzz suite (one per session, on the store under test), its callers and its seed."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest

from tests.conftest import STORE
from tests.e2e.server import Server, on_store
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


@pytest.fixture(scope="session")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with on_store(tmp_path_factory.mktemp("fuzz-server")) as srv:
        yield srv


@pytest.fixture(scope="session")
def accounts(fuzz_server: Server) -> Iterator[Accounts]:
    """The callers and seeded objects; a keeper thread re-creates callers the fuzzer revokes."""
    acc = provision(fuzz_server.url)
    keeper = Keeper(fuzz_server.url, acc)
    keeper.start()
    yield acc
    keeper.stop()
