"""The request a route handler sees, and the reply it gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keyplane.http import body as body_mod
from keyplane.http import params as p
from keyplane.security.identity import Authentication
from keyplane.services import Services


@dataclass
class Reply:
    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class RestRequest:
    method: str
    path: str
    uri: str
    path_params: dict[str, str]
    query: dict[str, str]
    # As the server gave them (lower-case names): few handlers read headers, so they are decoded on demand.
    raw_headers: dict[bytes, bytes]
    raw_body: bytes
    services: Services
    # Set by the dispatcher once the caller is authenticated, before any handler runs.
    authentication: Authentication | None = None

    @property
    def headers(self) -> dict[str, str]:
        """The request's headers as text (names in lower case)."""
        return decoded(self.raw_headers)

    @property
    def auth(self) -> Authentication:
        """The caller; handlers run only for authenticated requests."""
        assert self.authentication is not None, "the dispatcher authenticates before routing"
        return self.authentication

    def param(self, name: str, default: str | None = None) -> str | None:
        return self.query.get(name, default)

    def flag(self, name: str, default: bool = False) -> bool:
        return p.parse_bool(name, self.query.get(name), default)

    def int_param(self, name: str, default: int | None = None) -> int | None:
        return p.parse_int(name, self.query.get(name), default)

    def list_param(self, name: str) -> list[str]:
        return p.split_list(self.query.get(name))

    def path_list(self, name: str) -> list[str]:
        return p.split_list(self.path_params.get(name))

    def json(self, *, required: bool = False) -> Any:
        return body_mod.decode(self.raw_body, required=required)

    def body(self, parser: str, *, required: bool = False) -> body_mod.Body | None:
        data = self.json(required=required)
        if data is None and not self.raw_body.strip():
            return None
        return body_mod.Body(data, parser, self.raw_body)  # refuses anything but an object


def decoded(headers: dict[bytes, bytes]) -> dict[str, str]:
    """Headers as text, decoded as HTTP/1.1 sends them (latin-1)."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in headers.items()}
