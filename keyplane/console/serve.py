"""Serve the console's files, read once at import (start-up) so that no request touches the disk.

Only the files found under ``static/`` are served, by exact name, so no path can reach outside it.
Every answer carries headers that keep the console out of frames, stop content sniffing and forbid
inline scripts; HTML is never cached (it is the page that holds secrets once shown).
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

from starlette.types import Receive, Scope, Send

PREFIX = "/_keyplane/console"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
}

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_COMMON = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def _load(root: Traversable, prefix: str = "") -> dict[str, tuple[bytes, str]]:
    files: dict[str, tuple[bytes, str]] = {}
    for entry in root.iterdir():
        name = prefix + entry.name
        if entry.is_dir():
            files.update(_load(entry, name + "/"))
            continue
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if suffix in _TYPES:
            files[name] = (entry.read_bytes(), _TYPES[suffix])
    return files


FILES = _load(resources.files("keyplane.console") / "static")


def is_console_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


async def serve(scope: Scope, receive: Receive, send: Send) -> None:
    method: str = scope["method"]
    path: str = scope["path"]
    if path == PREFIX:  # relative asset links need the trailing slash
        await _send(send, method, 308, [(b"location", (PREFIX + "/").encode())], b"", "text/plain; charset=utf-8")
        return
    name = path[len(PREFIX) + 1 :] or "index.html"
    if method not in ("GET", "HEAD"):
        await _send(send, method, 405, [(b"allow", b"GET, HEAD")], b"method not allowed\n", "text/plain; charset=utf-8")
        return
    found = FILES.get(name)
    if found is None:
        await _send(send, method, 404, [], b"not found\n", "text/plain; charset=utf-8")
        return
    body, content_type = found
    await _send(send, method, 200, [], body, content_type)


async def _send(
    send: Send, method: str, status: int, extra: list[tuple[bytes, bytes]], body: bytes, ctype: str
) -> None:
    # The HTML is never stored; scripts and styles are revalidated, so an upgrade takes effect at once.
    cache = b"no-store" if ctype.startswith("text/html") or status != 200 else b"no-cache"
    headers = [
        *_COMMON,
        *extra,
        (b"content-type", ctype.encode()),
        (b"cache-control", cache),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
