"""The ``errors`` part of Elasticsearch's bulk answers, rendered in one place.

Bulk operations (bulk role writes, bulk API key grants and updates, profile reads and privilege
checks over many uids) succeed or fail per id. The domain reports each failure as the
``KeyplaneError`` it raised; this module turns them into ``{"errors": {"count", "details"}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keyplane.errors import KeyplaneError
from keyplane.http.errors import from_domain


def error_detail(exc: KeyplaneError) -> dict[str, str]:
    """One failure as Elasticsearch lists it in a bulk answer: its type and reason, no envelope."""
    err = from_domain(exc)
    return {"type": err.type, "reason": err.reason}


def errors_body(failures: Mapping[str, KeyplaneError]) -> dict[str, Any]:
    """``{"errors": {"count": N, "details": {id: {type, reason}}}}``, or nothing when every id succeeded.

    Spread it last into an answer: Elasticsearch puts ``errors`` after the ids that succeeded.
    """
    if not failures:
        return {}
    details = {key: error_detail(exc) for key, exc in failures.items()}
    return {"errors": {"count": len(details), "details": details}}
