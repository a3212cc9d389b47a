"""Connectors, sync jobs and secrets through the official Python client and raw HTTP."""

from __future__ import annotations

import concurrent.futures
import sqlite3

import httpx
import pytest
from elasticsearch import AuthorizationException, BadRequestError, Elasticsearch, NotFoundError

from tests.conftest import STORE
from tests.e2e.server import Server

SHAREPOINT_SCHEMA = {
    name: {
        "label": label,
        "order": i,
        "required": True,
        "sensitive": name == "secret_value",
        "type": "str",
        "display": "text",
        "value": "",
    }
    for i, (name, label) in enumerate(
        [
            ("tenant_id", "Tenant ID"),
            ("tenant_name", "Tenant name"),
            ("client_id", "Client ID"),
            ("secret_value", "Secret value"),
            ("site_collections", "Site collections"),
        ]
    )
}


def test_docs_examples(es: Elasticsearch) -> None:
    res = es.connector.put(
        connector_id="my-connector", index_name="search-google-drive", name="My Connector", service_type="google_drive"
    )
    assert res.body == {"id": "my-connector", "result": "created"}
    res = es.connector.update_api_key_id(
        connector_id="my-connector", api_key_id="my-api-key-id", api_key_secret_id="my-connector-secret-id"
    )
    assert res.body == {"result": "updated"}
    got = es.connector.get(connector_id="my-connector").body
    assert got["api_key_id"] == "my-api-key-id" and got["api_key_secret_id"] == "my-connector-secret-id"
    assert got["status"] == "created" and got["is_native"] is False and got["deleted"] is False
    assert got["scheduling"]["full"] == {"enabled": False, "interval": "0 0 0 * * ?"}
    assert got["filtering"][0]["active"]["rules"][0]["id"] == "DEFAULT"

    es.connector.put(connector_id="sp", index_name="search-sharepoint", service_type="sharepoint_online")
    assert es.connector.update_configuration(connector_id="sp", configuration=SHAREPOINT_SCHEMA)["result"] == "updated"
    values = {
        "tenant_id": "my-tenant-id",
        "tenant_name": "my-sharepoint-site",
        "client_id": "foo",
        "secret_value": "bar",
        "site_collections": "*",
    }
    assert es.connector.update_configuration(connector_id="sp", values=values).body == {"result": "updated"}
    assert es.connector.update_configuration(connector_id="sp", values={"secret_value": "foo-bar"}).body == {
        "result": "updated"
    }
    config = es.connector.get(connector_id="sp")["configuration"]
    assert {k: v["value"] for k, v in config.items()} == {**values, "secret_value": "foo-bar"}
    assert config["tenant_id"]["label"] == "Tenant ID"  # the schema is kept
    with pytest.raises(BadRequestError) as exc:
        es.connector.update_configuration(connector_id="sp", values={"not_registered": 1})
    assert exc.value.body["error"]["reason"] == (
        "Unknown [configuration] fields in the request payload: [not_registered]. "
        "Remove them from request or register their schema first."
    )


def test_lifecycle_list_and_delete(es: Elasticsearch) -> None:
    for i, service in enumerate(["jira", "confluence", "jira"]):
        es.connector.put(connector_id=f"c{i}", index_name=f"search-{3 - i}", service_type=service, name=f"C {i}")
    listed = es.connector.list(service_type="jira").body
    assert listed["count"] == 2 and [r["id"] for r in listed["results"]] == ["c2", "c0"]  # by index_name
    with pytest.raises(BadRequestError) as exc:
        es.connector.put(connector_id="dup", index_name="search-1")
    assert exc.value.body["error"]["reason"] == "Index name [search-1] is used by another connector."
    es.connector.delete(connector_id="c2")
    with pytest.raises(NotFoundError):
        es.connector.get(connector_id="c2")
    assert es.connector.get(connector_id="c2", include_deleted=True)["deleted"] is True
    es.connector.put(connector_id="dup", index_name="search-1")  # a deleted connector frees its index
    assert es.connector.list(include_deleted=True)["count"] == 4
    assert es.connector.list(query="C 1")["count"] == 1

    job = es.connector.sync_job_post(id="c0", job_type="full").body
    got = es.connector.sync_job_get(connector_sync_job_id=job["id"]).body
    assert got["status"] == "pending" and got["connector"]["index_name"] == "search-3"
    es.connector.sync_job_claim(connector_sync_job_id=job["id"], worker_hostname="worker-1")
    es.connector.sync_job_update_stats(
        connector_sync_job_id=job["id"], deleted_document_count=0, indexed_document_count=10, indexed_document_volume=42
    )
    es.connector.sync_job_cancel(connector_sync_job_id=job["id"])
    got = es.connector.sync_job_get(connector_sync_job_id=job["id"]).body
    assert got["status"] == "canceling" and got["worker_hostname"] == "worker-1"
    assert got["indexed_document_count"] == 10
    with pytest.raises(BadRequestError):
        es.connector.sync_job_cancel(connector_sync_job_id=job["id"])  # canceling cannot go to canceling
    es.connector.sync_job_post(id="c0", job_type="access_control")
    jobs = es.connector.sync_job_list(connector_id="c0").body
    assert jobs["count"] == 2 and jobs["results"][0]["job_type"] == "access_control"  # newest first
    assert jobs["results"][0]["connector"]["index_name"] == ".search-acl-filter-search-3"
    es.connector.delete(connector_id="c0", hard=True, delete_sync_jobs=True)
    assert es.connector.sync_job_list(connector_id="c0")["count"] == 0


def test_status_machine_and_noop(es: Elasticsearch) -> None:
    es.connector.put(connector_id="s", index_name="search-s", service_type="x")
    with pytest.raises(BadRequestError) as exc:
        es.connector.update_status(connector_id="s", status="connected")
    assert exc.value.body["error"]["reason"] == (
        "Invalid transition attempt from [created] to [connected]. "
        "Such a status transition is not supported by the Connector Protocol."
    )
    assert es.connector.update_status(connector_id="s", status="needs_configuration")["result"] == "updated"
    assert es.connector.update_index_name(connector_id="s", index_name="search-s")["result"] == "noop"
    assert es.connector.update_error(connector_id="s", error="boom")["result"] == "updated"
    assert es.connector.get(connector_id="s")["status"] == "error"
    with pytest.raises(BadRequestError):
        es.connector.update_scheduling(
            connector_id="s", scheduling={"full": {"enabled": True, "interval": "61 0 0 * * ?"}}
        )
    every_five = {"full": {"enabled": True, "interval": "0 */5 * * * ?"}}
    es.connector.update_scheduling(connector_id="s", scheduling=every_five)
    assert es.connector.get(connector_id="s")["scheduling"]["incremental"]["interval"] == "0 0 0 * * ?"


def test_secrets_are_encrypted_at_rest(es: Elasticsearch, http: httpx.Client, server: Server) -> None:
    plaintext = "super-secret-value-1234567890"
    created = http.post("/_connector/_secret", json={"value": plaintext}).json()
    assert http.get(f"/_connector/_secret/{created['id']}").json() == {"id": created["id"], "value": plaintext}
    assert http.put("/_connector/_secret/mine", json={"value": plaintext}).status_code == 201
    assert http.put("/_connector/_secret/mine", json={"value": "v2-" + plaintext}).json() == {"result": "updated"}
    if STORE == "sqlite":
        raw = (server.data_dir / "keyplane.db").read_bytes()
        for name in ("keyplane.db-wal",):
            if (server.data_dir / name).exists():
                raw += (server.data_dir / name).read_bytes()
        assert plaintext.encode() not in raw
        rows = (
            sqlite3.connect(server.data_dir / "keyplane.db").execute("select sealed from connector_secrets").fetchall()
        )
        assert rows and all(r[0].startswith("v2:") for r in rows)  # sealed, naming the key by fingerprint
        assert oct((server.data_dir / "secrets.key").stat().st_mode & 0o777) == "0o600"
    assert http.delete("/_connector/_secret/mine").json() == {"deleted": True}
    missing = http.get("/_connector/_secret/mine")
    assert missing.status_code == 404 and missing.json()["error"]["reason"] == "No secret with id [mine]"


def test_connector_privileges(es: Elasticsearch, server: Server) -> None:
    es.security.put_role(name="conn_reader", cluster=["monitor_connector"])
    es.security.put_role(name="conn_admin", cluster=["manage_connector"])
    es.security.put_role(name="secret_reader", cluster=["read_connector_secrets"])
    for user, role in [("rita", "conn_reader"), ("adam", "conn_admin"), ("sid", "secret_reader")]:
        es.security.put_user(username=user, password=f"{user}-secret", roles=[role])
    es.connector.put(connector_id="p", index_name="search-p", service_type="x")
    json_headers = {"accept": "application/json", "content-type": "application/json"}
    secret = es.perform_request("POST", "/_connector/_secret", headers=json_headers, body={"value": "s3cr3t"})["id"]
    rita = Elasticsearch(server.url, basic_auth=("rita", "rita-secret"))
    adam = Elasticsearch(server.url, basic_auth=("adam", "adam-secret"))
    sid = Elasticsearch(server.url, basic_auth=("sid", "sid-secret"))
    assert rita.connector.get(connector_id="p")["id"] == "p"
    with pytest.raises(AuthorizationException) as exc:
        rita.connector.update_name(connector_id="p", name="nope")
    assert exc.value.body["error"]["reason"] == (
        "action [cluster:admin/xpack/connector/update_name] is unauthorized for user [rita] with effective roles "
        "[conn_reader], this action is granted by the cluster privileges [manage_connector,manage,all]"
    )
    assert adam.connector.update_name(connector_id="p", name="yes")["result"] == "updated"
    with pytest.raises(AuthorizationException):
        adam.perform_request("GET", f"/_connector/_secret/{secret}")
    assert sid.perform_request("GET", f"/_connector/_secret/{secret}")["value"] == "s3cr3t"
    with pytest.raises(AuthorizationException):
        sid.perform_request("DELETE", f"/_connector/_secret/{secret}")


def test_concurrent_updates_of_different_fields_lose_nothing(http: httpx.Client, server: Server) -> None:
    http.put("/_connector/busy", json={"index_name": "search-busy", "service_type": "x"})
    updates = [
        ("/_connector/busy/_name", {"name": "Busy", "description": "desc"}),
        ("/_connector/busy/_api_key_id", {"api_key_id": "k1"}),
        (
            "/_connector/busy/_pipeline",
            {
                "pipeline": {
                    "extract_binary_content": True,
                    "name": "p",
                    "reduce_whitespace": True,
                    "run_ml_inference": False,
                }
            },
        ),
        ("/_connector/busy/_features", {"features": {"incremental_sync": {"enabled": True}}}),
        ("/_connector/busy/_check_in", None),
        ("/_connector/busy/_error", {"error": "e"}),
    ] * 3

    def send(item):  # type: ignore[no-untyped-def]
        path, body = item
        with httpx.Client(base_url=server.url, auth=http.auth) as client:
            return client.put(path, json=body).status_code

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        assert set(pool.map(send, updates)) == {200}
    doc = http.get("/_connector/busy").json()
    assert doc["name"] == "Busy" and doc["description"] == "desc" and doc["api_key_id"] == "k1"
    assert doc["pipeline"]["name"] == "p" and doc["features"]["incremental_sync"] == {"enabled": True}
    assert "last_seen" in doc and doc["error"] == "e" and doc["status"] == "error"


def test_connector_bad_input(http: httpx.Client) -> None:
    http.put("/_connector/b", json={"index_name": "search-b"})
    cases = [
        ("PUT", "/_connector/b", b'{"index_name": '),
        ("PUT", "/_connector/b", b'{"unknown": 1}'),
        ("PUT", "/_connector/b", b'{"index_name": "_bad"}'),
        ("PUT", "/_connector/b", b'{"is_native": true, "index_name": "search-b"}'),
        ("PUT", "/_connector/b/_status", b'{"status": "nope"}'),
        ("PUT", "/_connector/b/_status", b'{"status": {"a": 1}}'),
        ("PUT", "/_connector/b/_name", b"{}"),
        ("PUT", "/_connector/b/_configuration", b"{}"),
        ("PUT", "/_connector/b/_configuration", b'{"configuration": {"f": {"display": "x", "label": "l"}}}'),
        ("PUT", "/_connector/b/_filtering", b"{}"),
        ("PUT", "/_connector//_status", b'{"status": "error"}'),
        ("PUT", "/_connector/b/_last_sync", b'{"last_synced": "not a date"}'),
        ("PUT", "/_connector/b/_pipeline", b'{"pipeline": {"name": "x"}}'),
        ("POST", "/_connector/_sync_job", b'{"id": "b"}'),  # no service type
        ("POST", "/_connector/_sync_job", b'{"id": "b", "job_type": "weird"}'),
        (
            "PUT",
            "/_connector/_sync_job/x/_stats",
            b'{"deleted_document_count": -1, "indexed_document_count": 0, "indexed_document_volume": 0}',
        ),
        ("POST", "/_connector/_secret", b'{"value": null}'),
        ("GET", "/_connector?size=-1", b""),
        ("GET", "/_connector?index_name=_bad", b""),
        ("GET", "/_connector/_sync_job?status=weird", b""),
    ]
    for method, path, body in cases:
        res = http.request(method, path, content=body, headers={"Content-Type": "application/json"})
        assert res.status_code == 400, (method, path, res.status_code, res.text)
        assert res.json()["error"]["type"], res.text
    http.put("/_connector/b/_filtering", json={"rules": []})
    edited = http.put("/_connector/b/_filtering/_activate")
    assert edited.status_code == 400 and edited.json()["error"]["reason"] == (
        "Filtering draft needs to be validated by the connector service before activation. "
        "Current filtering draft validation state [edited] is not equal to [valid]."
    )
    assert http.put("/_connector/ghost/_name", json={"name": "x"}).json()["error"]["type"] == (
        "document_missing_exception"
    )
    assert http.put("/_connector/ghost/_status", json={"status": "error"}).json()["error"]["reason"] == (
        "connector [ghost] not found"
    )
    assert http.get("/_connector/_sync_job/ghost").status_code == 404
