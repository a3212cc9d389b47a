"""The REST layer: one module per API family, each registering its routes."""

from __future__ import annotations

from keyplane.api import (
    apikeys,
    bulk_documents,
    by_query,
    connectors,
    documents,
    expiring_keys,
    index_stats,
    indices,
    metrics,
    privileges,
    profiles,
    role_mappings,
    roles,
    root,
    search,
    secrets,
    security_settings,
    security_stats,
    service_accounts,
    ssl,
    sync_jobs,
    system_indices,
    testing,
    tokens,
    users,
)
from keyplane.http.routing import Router


def build_router(test_mode: bool) -> Router:
    router = Router()
    for module in (
        root,
        users,
        roles,
        role_mappings,
        privileges,
        profiles,
        service_accounts,
        apikeys,
        expiring_keys,
        tokens,
        connectors,
        sync_jobs,
        secrets,
        security_settings,
        security_stats,
        indices,
        documents,
        bulk_documents,
        system_indices,
        search,
        by_query,
        index_stats,
        metrics,
        ssl,
    ):
        module.register(router)
    if test_mode:
        testing.register(router)
    return router
