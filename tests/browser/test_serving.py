"""How the console's files are served: no credentials needed, security headers, no caching of HTML,
only the shipped files (no browser involved)."""

from __future__ import annotations

import re

import httpx

from keyplane.console.serve import FILES

PREFIX = "/_keyplane/console"


def test_pages_need_no_credentials_and_carry_security_headers(server_url: str) -> None:
    page = httpx.get(server_url + PREFIX + "/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "<script>" not in page.text and not re.search(r"\son[a-z]+=", page.text)  # no inline script
    script = httpx.get(server_url + PREFIX + "/js/main.js")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.headers["x-frame-options"] == "DENY"


def test_only_shipped_files_are_served(server_url: str) -> None:
    assert httpx.get(server_url + PREFIX).status_code == 308
    assert httpx.get(server_url + PREFIX).headers["location"] == PREFIX + "/"
    assert httpx.get(server_url + PREFIX + "/nope.js").status_code == 404
    assert httpx.get(server_url + PREFIX + "/%2e%2e/%2e%2e/pyproject.toml").status_code == 404
    assert httpx.post(server_url + PREFIX + "/").status_code == 405
    head = httpx.head(server_url + PREFIX + "/app.css")
    assert head.status_code == 200 and head.content == b""
    # The API beside it still wants credentials.
    assert httpx.get(server_url + "/_security/_authenticate").status_code == 401


def test_every_module_the_pages_import_is_shipped() -> None:
    assert "index.html" in FILES and "app.css" in FILES
    for name, (body, _) in FILES.items():
        if name.endswith(".js"):
            for target in re.findall(rb'from "\./([a-z_]+\.js)"', body):
                assert f"js/{target.decode()}" in FILES, (name, target)
