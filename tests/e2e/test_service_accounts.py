"""Service accounts and their bearer tokens."""

from __future__ import annotations

import httpx
import pytest
from elasticsearch import BadRequestError, ConflictError, Elasticsearch, NotFoundError

from tests.e2e.server import Server


def test_service_tokens(es: Elasticsearch, server: Server) -> None:
    accounts = es.security.get_service_accounts(namespace="elastic").body
    assert {"elastic/fleet-server", "elastic/kibana", "elastic/auto-ops", "elastic/fleet-server-remote"} <= set(
        accounts
    )
    assert "manage_own_api_key" in accounts["elastic/fleet-server"]["role_descriptor"]["cluster"]
    created = es.security.create_service_token(namespace="elastic", service="fleet-server", name="t1").body
    assert created["created"] is True and created["token"]["name"] == "t1"
    value = created["token"]["value"]
    assert value.startswith("AAEAAWVsYXN0aWMvZmxlZXQtc2VydmVyL3Qx")
    header = {"Authorization": f"Bearer {value}"}
    me = httpx.get(server.url + "/_security/_authenticate", headers=header).json()
    assert me["username"] == "elastic/fleet-server" and me["authentication_type"] == "token"
    assert me["token"] == {"name": "t1", "type": "_service_account_index", "managed_by": "elasticsearch"}
    assert me["authentication_realm"] == {"name": "_service_account", "type": "_service_account"}
    # Fleet Server creates API keys for agents with its own privileges.
    key = httpx.post(server.url + "/_security/api_key", headers=header, json={"name": "agent"})
    assert key.status_code == 200
    assert httpx.get(server.url + "/_security/user", headers=header).status_code == 403

    auto = es.security.create_service_token(namespace="elastic", service="kibana").body["token"]["name"]
    creds = es.security.get_service_credentials(namespace="elastic", service="fleet-server").body
    assert creds["service_account"] == "elastic/fleet-server" and creds["tokens"] == {"t1": {}}
    assert es.security.get_service_credentials(namespace="elastic", service="kibana")["tokens"] == {auto: {}}
    with pytest.raises(ConflictError):
        es.security.create_service_token(namespace="elastic", service="fleet-server", name="t1")
    with pytest.raises(BadRequestError):
        es.security.create_service_token(namespace="elastic", service="nope", name="t2")
    with pytest.raises(BadRequestError):
        es.security.create_service_token(namespace="elastic", service="fleet-server", name="_bad")
    assert (
        es.security.clear_cached_service_tokens(namespace="elastic", service="fleet-server", name="t1")["_nodes"][
            "failed"
        ]
        == 0
    )
    assert es.security.delete_service_token(namespace="elastic", service="fleet-server", name="t1").body == {
        "found": True
    }
    with pytest.raises(NotFoundError):
        es.security.delete_service_token(namespace="elastic", service="fleet-server", name="t1")
    assert httpx.get(server.url + "/_security/_authenticate", headers=header).status_code == 401
    wrong = value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB")
    assert (
        httpx.get(server.url + "/_security/_authenticate", headers={"Authorization": f"Bearer {wrong}"}).status_code
        == 401
    )
