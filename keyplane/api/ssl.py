"""``GET /_ssl/certificates``: the X.509 certificates of the node's TLS settings (Elasticsearch's SSL
certificates API). A ``cluster:monitor/*`` action, so ``monitor`` (and ``manage``, ``all``) grants it.

The files are read at each call, as Elasticsearch does, so the answer shows a reloaded certificate.
Without TLS settings the list is empty.
"""

from __future__ import annotations

import asyncio
from typing import Any

from keyplane import tls
from keyplane.http.request import Reply, RestRequest
from keyplane.http.routing import Router
from keyplane.query.dates import format_date

ACTION = "cluster:monitor/xpack/ssl/certificates/get"


def _shown(info: tls.CertificateInfo) -> dict[str, Any]:
    return {
        "path": info.path,
        "format": info.format,
        "alias": info.alias,
        "subject_dn": info.subject_dn,
        "serial_number": info.serial_number,
        "has_private_key": info.has_private_key,
        "expiry": format_date(int(info.expiry.timestamp() * 1000)),
        "issuer": info.issuer,
    }


async def get_certificates(request: RestRequest) -> Reply:
    certificates = await asyncio.to_thread(tls.configured_certificates, request.services.settings)
    return Reply([_shown(info) for info in certificates])


def register(router: Router) -> None:
    router.add("GET", "/_ssl/certificates", get_certificates, action=ACTION)
