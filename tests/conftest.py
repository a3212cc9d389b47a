"""Shared fixtures. KEYPLANE_TEST_STORE=sqlite (default) or postgres picks the store under test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pg

STORE = os.environ.get("KEYPLANE_TEST_STORE", "sqlite")


def pytest_report_header(config: pytest.Config) -> str:
    return f"keyplane store under test: {STORE}"


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A URL of an empty store of the kind under test."""
    if STORE == "postgres":
        reason = pg.available()
        if reason:
            pytest.skip(reason)
        url = pg.create_database()
        yield url
        pg.drop_database(url)
    else:
        yield f"sqlite:///{tmp_path / 'keyplane.db'}"
