"""One pooled HTTP connection to the upstream cluster, with Keyplane's credentials and timeouts."""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import orjson

from keyplane.errors import KeyplaneError

# httpx (with what it loads: its command line's pygments, http.cookiejar, idna) is imported by the
# client that uses it: about 2 MiB of resident memory a node without an upstream cluster never needs.
if TYPE_CHECKING:
    import httpx

# Headers of the caller passed on: how the body is written and what the caller accepts. Never the
# caller's credentials (Keyplane's replace them), nor a content-encoding (the body is already inflated).
_REQUEST_HEADERS = ("content-type", "accept", "x-opaque-id", "traceparent")
# Headers of the upstream's answer passed back; length and encoding are the dispatcher's.
RESPONSE_HEADERS = ("content-type", "location", "warning", "retry-after")


class UpstreamUnavailable(KeyplaneError):
    """The upstream cluster could not be reached or did not answer in time."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class UpstreamClient:
    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        ca_certs: Path | None = None,
        verify: bool = True,
        timeout_ms: int = 60_000,
    ) -> None:
        import httpx

        self.url = url
        headers = {"x-elastic-client-meta": "keyplane"}
        if api_key:
            headers["authorization"] = f"ApiKey {api_key}"
        elif username is not None and password is not None:
            pair = base64.b64encode(f"{username}:{password}".encode()).decode()
            headers["authorization"] = f"Basic {pair}"
        tls: ssl.SSLContext | bool = verify
        if verify and ca_certs is not None:
            tls = ssl.create_default_context(cafile=str(ca_certs))
        seconds = timeout_ms / 1000
        # One pool for every request; connecting gets a short bound of its own so that a cluster that is
        # down answers quickly, while a slow search may use the whole timeout.
        self._http: httpx.AsyncClient = httpx.AsyncClient(
            base_url=url,
            headers=headers,
            verify=tls,
            timeout=httpx.Timeout(seconds, connect=min(seconds, 10.0)),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            follow_redirects=False,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def send(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes | None) -> Answer:
        """Send a request (``path`` already percent-encoded, ``query`` the raw query string)."""
        import httpx  # loaded already, by __init__

        sent = {k: v for k, v in headers.items() if k in _REQUEST_HEADERS}
        # Absolute: a path relative to the base URL that starts with "//" would be read as a host name.
        url = f"{self.url}{path}?{query}" if query else f"{self.url}{path}"
        try:
            reply = await self._http.request(method, url, headers=sent, content=body or None)
        except httpx.TimeoutException:
            raise UpstreamUnavailable(
                f"the upstream cluster [{self.url}] did not answer in time", timed_out=True
            ) from None
        except httpx.HTTPError as exc:
            reason = type(exc).__name__
            raise UpstreamUnavailable(f"the upstream cluster [{self.url}] is unavailable ({reason})") from None
        if reply.status_code == 401:
            # The caller was authenticated by Keyplane: a 401 here is about Keyplane's own credentials, which
            # the caller can do nothing about (the upstream's challenge would also mislead its client).
            raise UpstreamUnavailable(
                f"the upstream cluster [{self.url}] refused Keyplane's credentials "
                "(KEYPLANE_UPSTREAM_API_KEY or KEYPLANE_UPSTREAM_USERNAME and KEYPLANE_UPSTREAM_PASSWORD)"
            )
        kept = [(k, v) for k, v in reply.headers.multi_items() if k.lower() in RESPONSE_HEADERS]
        return Answer(reply.status_code, kept, reply.content)

    async def index_names(self, expression: str, expand_wildcards: str | None) -> list[str]:
        """The concrete indices an expression names on the upstream, as the upstream resolves it.

        ``GET /{expression}`` is served by Elasticsearch, OpenSearch and Keyplane alike (``_resolve/index``
        is not served by Keyplane); with ``filter_path`` it answers little more than the names.
        """
        params = "ignore_unavailable=true&allow_no_indices=true&filter_path=*.settings.index.provided_name"
        if expand_wildcards:
            params += f"&expand_wildcards={quote(expand_wildcards, safe=',')}"
        answer = await self.send("GET", "/" + quote(expression, safe=",*"), params, {}, None)
        if answer.status == 404:
            return []
        if answer.status != 200:
            raise UpstreamUnavailable(
                f"the upstream cluster [{self.url}] refused to list indices (status {answer.status})"
            )
        found = orjson.loads(answer.body or b"{}")
        return sorted(found) if isinstance(found, dict) else []

    async def exists(self, name: str) -> bool:
        answer = await self.send("HEAD", "/" + quote(name, safe=""), "", {}, None)
        if answer.status >= 500:
            raise UpstreamUnavailable(f"the upstream cluster [{self.url}] failed (status {answer.status})")
        return answer.status == 200
