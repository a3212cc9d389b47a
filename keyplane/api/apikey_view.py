"""How API keys are shown: the create answer and the ApiKey object of get and query responses.

The domain hands over typed keys; the field names, their order and the optional ones follow
Elasticsearch's responses, so clients that compare bodies see the same bytes.
"""

from __future__ import annotations

from typing import Any

from keyplane.apikeys import core, hashing
from keyplane.apikeys.core import ApiKey, CreatedKey
from keyplane.apikeys.service import QueryHit


def render_created(key: CreatedKey) -> dict[str, Any]:
    """The answer to create, grant, clone and cross-cluster create (and each key of a bulk grant)."""
    out: dict[str, Any] = {"id": key.id, "name": key.name}
    if key.expiration is not None:
        out["expiration"] = key.expiration
    out["api_key"] = key.secret
    # The credential clients send back: base64 of id:secret, given ready-made.
    out["encoded"] = hashing.encoded(key.id, key.secret)
    return out


def render_key(key: ApiKey, *, with_limited_by: bool = False) -> dict[str, Any]:
    """The ApiKey object of get and query responses, in Elasticsearch's field order."""
    out: dict[str, Any] = {"id": key.id, "name": key.name, "type": key.type, "creation": key.creation}
    if key.expiration is not None:
        out["expiration"] = key.expiration
    out["invalidated"] = key.invalidated
    if key.invalidation is not None:
        out["invalidation"] = key.invalidation
    creator = key.creator
    out["username"] = creator.principal
    out["realm"] = creator.realm
    if creator.realm_type:
        out["realm_type"] = creator.realm_type
    out["metadata"] = key.metadata or {}
    out["role_descriptors"] = {rd.name: rd.to_dict() for rd in key.role_descriptors}
    if key.type == core.CROSS_CLUSTER:
        out["access"] = core.access_from_descriptors(key.role_descriptors)
        if key.certificate_identity is not None:
            out["certificate_identity"] = key.certificate_identity
    # A cross-cluster key has no owner's roles to show: its access is all it grants.
    if with_limited_by and key.type == core.REST:
        out["limited_by"] = [{rd.name: rd.to_dict() for rd in key.limited_by}]
    if key.last_used is not None:
        out["last_used"] = key.last_used
    return out


def render_hits(hits: list[QueryHit], *, with_limited_by: bool = False) -> list[dict[str, Any]]:
    """Keys found by a query, each with the values it sorted by when the query sorts; each key's
    object is rendered once while the key is kept.

    A query's keys are shared by the pages that read them unchanged (backends/sql.py ``_page_key``)
    and never changed, so the object of one is rendered once and kept by the key's identity (the entry
    holds the key, so its id is not reused meanwhile). Each hit gets a copy of it: a caller adds
    ``_sort`` or a profile uid to its own.
    """
    kept = _RENDERED[with_limited_by]
    out = []
    for hit in hits:
        key = hit.key
        found = kept.get(id(key))
        if found is None or found[0] is not key:
            if len(kept) >= MAX_RENDERED:
                kept.clear()
            found = kept[id(key)] = (key, render_key(key, with_limited_by=with_limited_by))
        out.append(found[1].copy() if hit.sort is None else {**found[1], "_sort": hit.sort})
    return out


# Rendered keys of query pages (``render_hits``), without and with ``limited_by``, by the key's id().
MAX_RENDERED = 2048
_RENDERED: tuple[dict[int, tuple[ApiKey, dict[str, Any]]], dict[int, tuple[ApiKey, dict[str, Any]]]] = ({}, {})
