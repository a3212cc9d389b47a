"""Index-level APIs: Elasticsearch's answers for missing indices, wildcards, and privileges checked first."""

from __future__ import annotations

import httpx
import pytest
from elasticsearch import AuthorizationException, Elasticsearch, NotFoundError

from tests.e2e.server import Server


def test_a_missing_index_is_404_index_not_found(es: Elasticsearch, http: httpx.Client) -> None:
    with pytest.raises(NotFoundError) as missing:
        es.indices.delete(index="connectors-test")
    cause = {
        "type": "index_not_found_exception",
        "reason": "no such index [connectors-test]",
        "resource.type": "index_or_alias",
        "resource.id": "connectors-test",
        "index_uuid": "_na_",
        "index": "connectors-test",
    }
    assert missing.value.body == {"error": {"root_cause": [cause], **cause}, "status": 404}
    assert es.options(ignore_status=404).indices.delete(index="connectors-test").meta.status == 404
    assert es.indices.delete(index="gone", ignore_unavailable=True).body == {"acknowledged": True}
    assert http.get("/connectors-test").status_code == 404
    assert es.indices.exists(index="connectors-test").body is False
    assert es.indices.get(index="logs-*").body == {}  # wildcards may match nothing
    wildcard = http.delete("/logs-*")
    assert wildcard.status_code == 400 and "Wildcard expressions" in wildcard.json()["error"]["reason"]


def test_index_privileges_are_checked_first(es: Elasticsearch, server: Server) -> None:
    es.security.put_role(name="logs_admin", indices=[{"names": ["logs-*"], "privileges": ["manage"]}])
    es.security.put_user(username="lena", password="lena-secret", roles=["logs_admin"])
    lena = Elasticsearch(server.url, basic_auth=("lena", "lena-secret"))
    with pytest.raises(NotFoundError):
        lena.indices.delete(index="logs-1")
    with pytest.raises(AuthorizationException) as denied:
        lena.indices.delete(index="metrics-1")
    assert denied.value.body["error"]["reason"] == (
        "action [indices:admin/delete] is unauthorized for user [lena] with effective roles [logs_admin] on "
        "indices [metrics-1], this action is granted by the index privileges [delete_index,manage,all]"
    )


def test_endpoint_paths_are_not_index_names(http: httpx.Client) -> None:
    assert http.delete("/_connector").status_code == 405
    unknown = http.get("/_nothing_here")
    assert unknown.status_code == 400 and unknown.json()["error"].startswith("no handler found for uri")
