"""The audit log, read back from a real server's file after real requests (issue 13 item 2)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from elasticsearch import AuthenticationException, AuthorizationException, Elasticsearch

from tests.e2e.server import PASSWORD, Server, on_store

USER_PASSWORD = "audit-user-pw-7Qx"
NEW_PASSWORD = "audit-changed-pw-9Zk"
SECRET_VALUE = "connector-secret-value-4Hd"
WRONG_PASSWORD = "wrong-password-3Jv"


def _events(path: Path, until: int = 0, predicate: Any = None, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The file's events, once the writer has written at least ``until`` of them matching ``predicate``."""
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        events = [json.loads(line) for line in lines]
        if len([e for e in events if predicate is None or predicate(e)]) >= until or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


def _of(events: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event.action"] == action]


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"KEYPLANE_AUDIT_ENABLED": "true", "KEYPLANE_AUDIT_EVENTS_INCLUDE": "_all"}
    with on_store(tmp_path_factory.mktemp("audit"), extra_env=env) as srv:
        yield srv


@pytest.fixture(scope="module")
def trail(audited: Server) -> dict[str, Any]:
    """Drive every kind of event once; what was sent (secrets included) and the events written."""
    url = audited.url
    es = Elasticsearch(url, basic_auth=("elastic", PASSWORD), headers={"x-opaque-id": "audit-op-1"})
    es.security.put_role(name="nothing", cluster=[])
    es.security.put_user(username="ann", password=USER_PASSWORD, roles=["nothing"], full_name="Ann A")
    es.security.change_password(username="ann", password=NEW_PASSWORD)
    key = es.security.create_api_key(name="audit-key", expiration="1d", metadata={"team": "a"})
    es.security.update_api_key(id=key["id"], metadata={"team": "b"})
    # The client has no secret API (the connectors service calls it over plain HTTP).
    put = httpx.post(f"{url}/_connector/_secret", json={"value": SECRET_VALUE}, auth=("elastic", PASSWORD))
    secret = put.raise_for_status().json()
    httpx.get(f"{url}/_connector/_secret/{secret['id']}", auth=("elastic", PASSWORD)).raise_for_status()
    es.security.invalidate_api_key(ids=[key["id"]])
    # Failures: a wrong password, an API key that does not exist, no credentials, a user without the privilege.
    with pytest.raises(AuthenticationException):
        Elasticsearch(url, basic_auth=("elastic", WRONG_PASSWORD)).security.authenticate()
    forged = base64.b64encode(b"no-such-key-id:forged-secret-5Tr").decode()
    assert httpx.get(f"{url}/_security/_authenticate", headers={"authorization": f"ApiKey {forged}"}).status_code == 401
    assert httpx.get(f"{url}/_security/_authenticate").status_code == 401
    with pytest.raises(AuthorizationException):
        Elasticsearch(url, basic_auth=("ann", NEW_PASSWORD)).security.get_user()
    # Run as: granted for elastic, and (with a key) tried by a caller that may not.
    ran = httpx.get(
        f"{url}/_security/_authenticate", auth=("elastic", PASSWORD), headers={"es-security-runas-user": "ann"}
    )
    assert ran.json()["username"] == "ann"
    path = audited.data_dir / "audit.json"
    events = _events(path, 1, lambda e: e["event.action"] == "run_as_granted")
    return {"events": events, "text": path.read_text(), "key": key, "secret_id": secret["id"], "path": path}


def test_every_line_is_an_audit_event_with_its_origin(trail: dict[str, Any]) -> None:
    events = trail["events"]
    assert len(events) > 20
    for event in events:
        assert event["type"] == "audit"
        assert event["@timestamp"].endswith("Z") and "T" in event["@timestamp"]
        assert event["origin.type"] == "rest"
        assert event["origin.address"].startswith("127.0.0.1:")
        assert event["request.id"]
        assert "?" not in event["url.path"]
    # One request's events share its id; the caller's X-Opaque-Id is carried.
    put_user = _of(events, "put_user")[0]
    same = [e for e in events if e["request.id"] == put_user["request.id"]]
    assert {e["event.action"] for e in same} == {"authentication_success", "access_granted", "put_user"}
    assert put_user["opaque_id"] == "audit-op-1"
    assert len({e["request.id"] for e in events}) > 10


def test_authentication_success_and_failures(trail: dict[str, Any]) -> None:
    events = trail["events"]
    success = _of(events, "authentication_success")[0]
    assert success["user.name"] == "elastic" and success["user.realm"] == "reserved"
    assert success["authentication.type"] == "REALM"
    failed = _of(events, "authentication_failed")
    basic = [e for e in failed if e["authentication.scheme"] == "basic"]
    assert basic and basic[0]["user.name"] == "elastic"
    realm = _of(events, "realm_authentication_failed")
    assert realm and realm[0]["realm"] == "reserved" and realm[0]["user.name"] == "elastic"
    api_key = [e for e in failed if e["authentication.scheme"] == "apikey"]
    assert api_key and api_key[0]["authentication.api_key.id"] == "no-such-key-id"
    assert _of(events, "anonymous_access_denied")


def test_access_granted_and_denied(trail: dict[str, Any]) -> None:
    events = trail["events"]
    denied = _of(events, "access_denied")
    assert len(denied) == 1
    assert denied[0]["user.name"] == "ann" and denied[0]["action"] == "cluster:admin/xpack/security/user/get"
    assert denied[0]["user.realm"] == "default_native" and denied[0]["user.roles"] == ["nothing"]
    granted = {e["action"] for e in _of(events, "access_granted")}
    assert "cluster:admin/xpack/security/user/put" in granted
    assert "cluster:admin/xpack/security/api_key/create" in granted  # a route its service checks itself


def test_run_as(trail: dict[str, Any]) -> None:
    granted = _of(trail["events"], "run_as_granted")[0]
    assert granted["user.name"] == "elastic" and granted["user.run_as.name"] == "ann"
    assert granted["action"] == "cluster:admin/xpack/security/user/authenticate"
    access = [
        e
        for e in _of(trail["events"], "access_granted")
        if e["request.id"] == granted["request.id"] and e.get("user.run_by.name") == "elastic"
    ]
    assert access and access[0]["user.name"] == "ann"


def test_security_changes_say_what_changed(trail: dict[str, Any]) -> None:
    events = trail["events"]
    changes = [e for e in events if e["event.type"] == "security_config_change"]
    assert all(e["event.outcome"] == "success" and e["user.name"] == "elastic" for e in changes)
    put_user = _of(events, "put_user")[0]["put"]["user"]
    assert put_user == {"name": "ann", "roles": ["nothing"], "full_name": "Ann A", "has_password": True}
    assert _of(events, "change_password")[0]["change"]["password"]["user"]["name"] == "ann"
    role = _of(events, "put_role")[0]["put"]["role"]
    assert role["name"] == "nothing" and role["role_descriptor"]["cluster"] == []
    key_id = trail["key"]["id"]
    created = _of(events, "create_apikey")[0]["create"]["apikey"]
    assert created == {"id": key_id, "type": "rest", "name": "audit-key", "expiration": "1d", "metadata": {"team": "a"}}
    assert _of(events, "change_apikey")[0]["change"]["apikey"] == {"id": key_id, "metadata": {"team": "b"}}
    invalidated = _of(events, "invalidate_apikeys")[0]["invalidate"]["apikeys"]
    assert invalidated["ids"] == [key_id] and invalidated["invalidated"] == [key_id]
    secret_id = trail["secret_id"]
    assert _of(events, "create_connector_secret")[0]["create"]["connector_secret"]["id"] == secret_id
    assert _of(events, "get_connector_secret")[0]["get"]["connector_secret"]["id"] == secret_id


def test_no_secret_reaches_the_file(trail: dict[str, Any]) -> None:
    text = trail["text"]
    key = trail["key"]
    for secret in (PASSWORD, USER_PASSWORD, NEW_PASSWORD, WRONG_PASSWORD, SECRET_VALUE, "forged-secret-5Tr"):
        assert secret not in text
    assert key["api_key"] not in text and key["encoded"] not in text
    for marker in ("$2a$", "$2b$", "$2y$", "{PBKDF2", "{SSHA256}", "password_hash", '"value"', '"encoded"'):
        assert marker not in text
    assert oct(trail["path"].stat().st_mode & 0o777) == "0o600"


def test_include_and_exclude(tmp_path: Path) -> None:
    env = {
        "KEYPLANE_AUDIT_ENABLED": "true",
        "KEYPLANE_AUDIT_FILE": str(tmp_path / "logs" / "security-audit.json"),
        "KEYPLANE_AUDIT_EVENTS_INCLUDE": "security_config_change,access_denied,authentication_failed",
        "KEYPLANE_AUDIT_EVENTS_EXCLUDE": "access_denied",
    }
    (tmp_path / "data").mkdir()
    with on_store(tmp_path / "data", extra_env=env) as srv:
        es = Elasticsearch(srv.url, basic_auth=("elastic", PASSWORD))
        es.security.put_role(name="nothing", cluster=[])
        es.security.put_user(username="bo", password=USER_PASSWORD, roles=["nothing"])
        with pytest.raises(AuthorizationException):
            Elasticsearch(srv.url, basic_auth=("bo", USER_PASSWORD)).security.get_user()
        with pytest.raises(AuthenticationException):
            Elasticsearch(srv.url, basic_auth=("bo", WRONG_PASSWORD)).security.authenticate()
        events = _events(tmp_path / "logs" / "security-audit.json", 3)
    assert [e["event.action"] for e in events] == ["put_role", "put_user", "authentication_failed"]


def test_an_unknown_event_type_refuses_to_start(tmp_path: Path) -> None:
    env = {"KEYPLANE_AUDIT_EVENTS_EXCLUDE": "access_granted,acces_denied"}
    srv = Server(tmp_path, extra_env=env)
    with pytest.raises(RuntimeError) as failed:
        srv.start()
    srv.stop()
    assert "unknown audit event type(s) acces_denied" in str(failed.value)
    assert "Traceback" not in str(failed.value)


def test_a_connection_s_requests_each_keep_their_own_line_and_count(tmp_path: Path) -> None:
    """On one keep-alive connection the dispatcher reuses what its last request needed (the line's
    middle, the latency timings): a new caller, path, method or status must still show as such."""
    from tests.e2e.test_metrics import scrape, value  # noqa: PLC0415 - the metrics tests' reader

    with on_store(tmp_path, extra_env={"KEYPLANE_AUDIT_ENABLED": "true"}) as srv:
        es = Elasticsearch(srv.url, basic_auth=("elastic", PASSWORD))
        es.security.put_role(name="monitoring", cluster=["monitor"])
        es.security.put_user(username="mon", password=USER_PASSWORD, roles=["monitoring"])
        one, two = es.security.create_api_key(name="one"), es.security.create_api_key(name="two")
        before = scrape(srv, ("mon", USER_PASSWORD))
        ann = f"/_security/user/ann-{time.time_ns()}"
        steps = [
            ("GET", "/_security/_authenticate", one),
            ("GET", "/_security/_authenticate", one),
            ("GET", "/_security/_authenticate", two),
            ("GET", "/_security/_authenticate", one),
            ("HEAD", "/_security/_authenticate", one),
            ("GET", "/_cluster/health/audit-idx", None),  # an event naming indices, each time
            ("GET", "/_cluster/health/audit-idx", None),
            ("GET", ann, None),  # 404: no such user yet
            ("GET", ann, None),  # 200 once another connection made it
        ]
        statuses = []
        with httpx.Client(base_url=srv.url) as client:
            for n, (method, path, key) in enumerate(steps):
                if n == len(steps) - 1:
                    es.security.put_user(username=ann.rsplit("/", 1)[1], password=USER_PASSWORD, roles=[])
                auth = {"authorization": f"ApiKey {key['encoded']}"} if key else {}
                basic = None if key else ("elastic", PASSWORD)
                answer = client.request(method, path, headers={**auth, "x-opaque-id": f"step-{n}"}, auth=basic)
                statuses.append(answer.status_code)
        assert statuses[:5] + statuses[7:] == [200, 200, 200, 200, 200, 404, 200]
        assert statuses[5] == statuses[6]
        events = _events(srv.data_dir / "audit.json", len(steps), lambda e: e.get("opaque_id", "").startswith("step-"))
        after = scrape(srv, ("mon", USER_PASSWORD))

    mine = [e for e in _of(events, "access_granted") if e.get("opaque_id", "").startswith("step-")]
    assert [e["opaque_id"] for e in mine] == [f"step-{n}" for n in range(len(steps))]
    assert len({e["origin.address"] for e in mine}) == 1  # one connection
    assert len({e["request.id"] for e in mine}) == len(steps)
    for event, (method, path, key) in zip(mine, steps, strict=True):
        assert (event["request.method"], event["url.path"]) == (method, path)
        assert event.get("authentication.api_key.id") == (key["id"] if key else None)
        assert event["user.name"] == "elastic"
        assert event.get("indices") == (["audit-idx"] if "health" in path else None)

    def counted(route: str, method: str, status: str) -> float:
        name = "keyplane_http_requests_total"
        labels = {"route": route, "method": method, "status": status}
        return value(after, name, **labels) - value(before, name, **labels)

    assert counted("/_security/_authenticate", "GET", "200") == 4
    assert counted("/_security/_authenticate", "HEAD", "200") == 1
    assert counted("/_security/user/{username}", "GET", "404") == 1
    assert counted("/_cluster/health/{index}", "GET", str(statuses[5])) == 2
    assert counted("/_security/user/{username}", "GET", "200") == 1
