"""``GET /_keyplane/metrics``: the node's metrics in the Prometheus text format.

Guarded like Elasticsearch's monitoring APIs: the action is a ``cluster:monitor/*`` one, which the
``monitor`` cluster privilege grants (and ``manage``, ``all``).
"""

from __future__ import annotations

from keyplane.http.errors import EsError
from keyplane.http.request import Reply, RestRequest
from keyplane.http.routing import Router
from keyplane.metrics.exposition import CONTENT_TYPE

ACTION = "cluster:monitor/keyplane/metrics"


async def get_metrics(request: RestRequest) -> Reply:
    metrics = request.services.metrics
    if metrics is None:
        raise EsError(
            404, "resource_not_found_exception", "metrics are disabled on this node (KEYPLANE_METRICS_ENABLED=false)"
        )
    return Reply(await metrics.render(), headers={"content-type": CONTENT_TYPE})


def register(router: Router) -> None:
    router.add("GET", "/_keyplane/metrics", get_metrics, action=ACTION)
