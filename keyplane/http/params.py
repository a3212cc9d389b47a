"""Query-string and path parameters, parsed strictly the way Elasticsearch parses them."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet

from keyplane.http.errors import bad_request

# Accepted on every route (Elasticsearch's RestRequest "response params").
COMMON_PARAMS = frozenset({"pretty", "human", "error_trace", "filter_path", "format", "source", "source_content_type"})


def parse_bool(name: str, value: str | None, default: bool) -> bool:
    """``?flag`` alone means true; anything but true/false is refused."""
    if value is None:
        return default
    if value == "" or value == "true":
        return True
    if value == "false":
        return False
    raise bad_request(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")


def parse_int(name: str, value: str | None, default: int | None) -> int | None:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise bad_request(f"Failed to parse int parameter [{name}] with value [{value}]") from None


def split_list(value: str | None) -> list[str]:
    """Comma lists, split after percent-decoding (JS clients encode the comma, Python does not)."""
    if value is None:
        return []
    return [item for item in value.split(",") if item != ""]


def accepted(params: Iterable[str]) -> frozenset[str]:
    """The query parameters a route accepts: its own and Elasticsearch's common ones."""
    return frozenset(params) | COMMON_PARAMS


def check_unrecognized(path: str, given: AbstractSet[str], allowed: frozenset[str]) -> None:
    """Refuse the parameters of ``given`` that are not in ``allowed`` (a route's :func:`accepted`)."""
    if given <= allowed:  # the usual case, decided by one set comparison
        return
    unknown = sorted(p for p in given if p not in allowed)
    if len(unknown) == 1:
        raise bad_request(f"request [{path}] contains unrecognized parameter: [{unknown[0]}]")
    names = ", ".join(f"[{u}]" for u in unknown)
    raise bad_request(f"request [{path}] contains unrecognized parameters: {names}")
