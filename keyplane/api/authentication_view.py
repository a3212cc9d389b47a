"""Who the caller is, as Elasticsearch shows it: the body of ``GET /_security/_authenticate``.

The OAuth2 token answer embeds the same shape as its ``authentication`` part.
"""

from __future__ import annotations

from typing import Any

from keyplane.security.identity import Authentication


def render_authentication(auth: Authentication) -> dict[str, Any]:
    """The caller's user, realms and authentication type; the credential when it is a key or a token.

    An API key's caller shows no roles of its own (the key's descriptors decide), unless it runs as
    another user, whose roles and realm are then shown instead of the key.
    """
    user = auth.user
    run_as = auth.is_run_as
    out: dict[str, Any] = {
        "username": user.username,
        "roles": [] if (auth.type == "api_key" and not run_as) else list(user.roles),
        "full_name": user.full_name,
        "email": user.email,
    }
    if auth.token is not None:
        out["token"] = _managed(auth.token)
    out["metadata"] = user.metadata
    out["enabled"] = user.enabled
    out["authentication_realm"] = auth.authentication_realm
    out["lookup_realm"] = auth.lookup_realm
    out["authentication_type"] = auth.type
    if auth.api_key is not None and not run_as:
        out["api_key"] = _managed(auth.api_key)
    return out


def _managed(credential: dict[str, Any]) -> dict[str, Any]:
    """Elasticsearch 9.4+ says who manages the credential (``cloud`` or ``elasticsearch``). Every
    credential Keyplane accepts is its own (no Elastic Cloud credentials): ``elasticsearch``."""
    return {**credential, "managed_by": credential.get("managed_by", "elasticsearch")}
