"""Browser tests of the console: Debian's chromium, driven by Selenium through chromedriver, against a
real ``keyplane serve`` on the store under test. Screenshots go to ``tests/browser/screenshots/``."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import STORE
from tests.e2e.server import PASSWORD, Server, on_store

try:
    from selenium import webdriver

    from tests.browser.console import Console
except ImportError:  # Selenium comes with the test extra; without it these tests are not collected
    collect_ignore_glob = ["test_*.py"]

CHROMIUM = os.environ.get("KEYPLANE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("KEYPLANE_CHROMEDRIVER", "/usr/bin/chromedriver")
SHOTS = Path(__file__).parent / "screenshots"
# Headless and offline: nothing but the server under test is reached.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with on_store(tmp_path_factory.mktemp("console")) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean(server: Server) -> None:
    httpx.post(server.url + "/_keyplane/_reset", auth=("elastic", PASSWORD)).raise_for_status()


@pytest.fixture
def server_url(server: Server) -> str:
    return server.url


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, auth=("elastic", PASSWORD), timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def driver() -> Iterator[webdriver.Chrome]:
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip(
            f"no chromium at {CHROMIUM} or chromedriver at {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
        )
    profile = tempfile.mkdtemp(prefix="keyplane-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    chrome = webdriver.Chrome(service=service, options=options)
    try:
        yield chrome
    finally:
        chrome.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def console(driver: webdriver.Chrome, server: Server, request: pytest.FixtureRequest) -> Iterator[Console]:
    SHOTS.mkdir(exist_ok=True)
    page = Console(driver, server.url, SHOTS, f"{STORE}-{request.node.name}")
    page.open()
    page.clear_session()
    yield page
    page.shot("end")
    errors = page.console_errors()
    page.clear_session()
    assert not errors, errors
