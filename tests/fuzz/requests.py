"""From a plan to the bytes of an HTTP request, with the run's real ids and credentials."""

from __future__ import annotations

import base64
import re
import threading
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from tests.fuzz.strategies import Plan
from tests.fuzz.values import dumps

# A header value h11 (httpx's HTTP/1.1 layer) lets through; any other goes over a raw socket.
_H11_VALUE = re.compile(rb"([\x21-\x7e\x80-\xff]([\x20\x09\x21-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?")
_RAW_ONLY_HEADERS = ("transfer-encoding", "content-length")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class Accounts:
    """The callers' credentials and the ids that exist only once the server made them."""

    elastic: str
    admin: str
    user: str
    apikey: str
    ids: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def auth(self, caller: str) -> str | None:
        if caller == "elastic":
            return self.elastic
        if caller == "admin":
            return self.admin
        if caller == "user":
            return self.user
        if caller == "apikey":
            return self.apikey
        if caller.startswith("bad:"):
            return caller[4:]
        return None

    def resolve(self, text: str) -> str:
        """A placeholder ("@key", or a stash name of the YAML tests such as "@user_key_id") as a real id."""
        if not text.startswith("@"):
            return text
        if "," in text:
            return ",".join(self.resolve(t) for t in text.split(","))
        name = text[1:].lower()
        for kind in ("ccskey", "job", "profile", "secret", "refresh", "token", "key"):
            if kind in name or (kind == "profile" and "uid" in name) or (kind == "key" and name.endswith("id")):
                ids = self.ids.get(kind)
                if ids:
                    return ids[zlib.crc32(name.encode()) % len(ids)]  # stable across processes
        return text[1:]

    def resolve_body(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.resolve(value)
        if isinstance(value, dict):
            return {self.resolve(k): self.resolve_body(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve_body(v) for v in value]
        return value


@dataclass
class Request:
    method: str
    target: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    raw_socket: bool
    api: str
    caller: str

    def describe(self, limit: int = 300) -> str:
        headers = ", ".join(f"{k.decode()}: {v[:80]!r}" for k, v in self.headers if k != b"authorization")
        body = self.body[:limit]
        more = f" ... ({len(self.body)} bytes)" if len(self.body) > limit else ""
        via = " [raw socket]" if self.raw_socket else ""
        return (
            f"{self.method} {self.target[:300]!r}{via} as {self.caller} ({self.api})\n"
            f"    headers: {headers}\n    body: {body!r}{more}"
        )


# Changes that would lock the run out: the superuser's own password and account (see strategies.KNOWN).
_PROTECTED_USER_APIS = (
    "security.change_password",
    "security.disable_user",
    "security.delete_user",
    "security.put_user",
)


def _protect(plan: Plan, parts: dict[str, str]) -> str:
    template = plan.template
    if plan.api in _PROTECTED_USER_APIS:
        if "username" not in parts and plan.caller not in ("user", "admin"):
            template = "/_security/user/{username}/_password"
            parts["username"] = "fz_u1"
        elif parts.get("username") in ("elastic", "fz_caller", "fz_admin"):
            parts["username"] = "fz_u1"
    return template


def _segment(value: str, raw: bool) -> str:
    if raw:
        # Bytes as they are (non-ASCII, NUL), bar what would end the path or the request line.
        return "".join(c if c not in "/?# \r\n" else quote(c, safe="") for c in value)
    return quote(value.encode("utf-8", "surrogatepass"), safe=",*")


def _query(params: tuple[tuple[str, str], ...], accounts: Accounts) -> str:
    items = []
    for name, value in params:
        value = accounts.resolve(value)
        items.append(
            quote(name.encode("utf-8", "surrogatepass"), safe="") + "=" + quote(value.encode("utf-8", "surrogatepass"))
        )
    return "&".join(items)


def _encode(body: bytes, encoding: str | None) -> tuple[bytes, str | None]:
    if encoding in ("gzip", "x-gzip", "GZIP"):
        deflater = zlib.compressobj(6, zlib.DEFLATED, 31)
        return deflater.compress(body) + deflater.flush(), encoding
    if encoding == "deflate":
        return zlib.compress(body), encoding
    if encoding == "bad-gzip":
        return body, "gzip"  # says gzip, is not
    return body, encoding


def build(plan: Plan, accounts: Accounts) -> Request:
    parts = {name: accounts.resolve(value) for name, value in plan.parts}
    template = _protect(plan, parts)
    raw = plan.raw_socket
    path = template
    for name, value in parts.items():
        path = path.replace("{" + name + "}", _segment(value, raw))
    query = _query(plan.params, accounts)
    target = (path + ("?" + query if query else "")).encode("utf-8", "surrogatepass")

    headers: list[tuple[bytes, bytes]] = []

    def add(name: str, value: str) -> None:
        headers.append((name.encode(), value.encode("utf-8", "surrogatepass")))

    auth = accounts.auth(plan.caller)
    if auth is not None:
        add("authorization", auth)
    if plan.run_as is not None:
        add("es-security-runas-user", plan.run_as)
    body = b""
    if plan.body is not None:
        body = plan.body if isinstance(plan.body, bytes) else dumps(accounts.resolve_body(plan.body))
        body, encoding = _encode(body, plan.encoding)
        if encoding:
            add("content-encoding", encoding)
        if plan.content_type is not None:
            add("content-type", plan.content_type)
    if plan.accept is not None:
        add("accept", plan.accept)
    for name, value in plan.headers:
        add(name, value)
    if not raw:
        raw = any(not _H11_VALUE.fullmatch(v) for _, v in headers) or any(
            k.decode() in _RAW_ONLY_HEADERS for k, _ in headers
        )
    return Request(plan.method, target, headers, body, raw, plan.api, plan.caller)
