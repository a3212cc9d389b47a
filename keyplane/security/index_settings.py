"""Security index settings: the two replica settings Elasticsearch lets users tune on its security indices.

Keyplane has no shards or replicas, but clients and operators read and write these settings through
``/_security/settings``, so they are validated and kept exactly as Elasticsearch keeps them.
"""

from __future__ import annotations

import re
from typing import Any

from keyplane.errors import InvalidArgument, ValidationError
from keyplane.json_kinds import token_kind

INDICES = ("security", "security-tokens", "security-profile")
REPLICAS = "index.number_of_replicas"
AUTO_EXPAND = "index.auto_expand_replicas"
ALLOWED = (REPLICAS, AUTO_EXPAND)

# Elasticsearch creates every security index with this setting.
DEFAULTS: dict[str, str] = {AUTO_EXPAND: "0-1"}

_AUTO_EXPAND = re.compile(r"^\d+-(\d+|all)$")

Changes = dict[str, dict[str, str | None]]


def _value(key: str, value: Any) -> str | None:
    """The stored (string) form of a setting's value; ``None`` resets it."""
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise InvalidArgument(f"Failed to parse value [{token_kind(value)}] for setting [{key}]")
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if key == REPLICAS:
        try:
            number = int(text)
        except ValueError:
            raise InvalidArgument(f"Failed to parse value [{text}] for setting [{key}]") from None
        if number < 0:
            raise InvalidArgument(f"Failed to parse value [{text}] for setting [{key}] must be >= 0")
        return str(number)
    if text != "false" and not _AUTO_EXPAND.match(text):
        raise InvalidArgument(f"failed to parse [{key}] from value: [{text}] at index {text.find('-')}")
    return text


def parse_update(body: dict[str, dict[str, Any]]) -> Changes:
    """The settings an update request changes, per index; refuses what Elasticsearch refuses."""
    messages = []
    for name, settings in body.items():
        forbidden = [key for key in settings if key not in ALLOWED]
        if forbidden:
            messages.append(
                f"illegal settings for index [{name}]: [{', '.join(forbidden)}], these settings may not be "
                f"configured. Only the following settings may be configured for that index: [{', '.join(ALLOWED)}]"
            )
    if messages:
        raise ValidationError(*messages)
    return {name: {key: _value(key, value) for key, value in settings.items()} for name, settings in body.items()}


def effective(stored: dict[str, str | None]) -> dict[str, str]:
    """One index's settings: the defaults, overridden or reset (``None``) by what was stored."""
    out = dict(DEFAULTS)
    for key, value in stored.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return dict(sorted(out.items()))


def nested(flat: dict[str, str]) -> dict[str, Any]:
    """``{"index.a": v}`` as ``{"index": {"a": v}}``, the default form of Elasticsearch's settings."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out
