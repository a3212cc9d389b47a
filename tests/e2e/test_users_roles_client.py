"""Users, roles, authentication and privileges through the official Python client, unchanged."""

from __future__ import annotations

import pytest
from elasticsearch import AuthenticationException, AuthorizationException, BadRequestError, Elasticsearch, NotFoundError

from tests.e2e.server import Server


def test_role_user_authenticate_and_privileges(es: Elasticsearch, server: Server) -> None:
    created = es.security.put_role(
        name="logs_reader",
        cluster=["monitor"],
        indices=[{"names": ["logs-*"], "privileges": ["read", "view_index_metadata"]}],
        metadata={"team": "ops"},
    )
    assert created.body == {"role": {"created": True}}
    assert es.security.put_user(
        username="ann", password="ann-secret", roles=["logs_reader"], full_name="Ann A", email="ann@example.com"
    ).body == {"created": True}

    role = es.security.get_role(name="logs_reader").body["logs_reader"]
    assert role == {
        "cluster": ["monitor"],
        "indices": [
            {"names": ["logs-*"], "privileges": ["read", "view_index_metadata"], "allow_restricted_indices": False}
        ],
        "applications": [],
        "run_as": [],
        "metadata": {"team": "ops"},
        "transient_metadata": {"enabled": True},
    }

    ann = Elasticsearch(server.url, basic_auth=("ann", "ann-secret"))
    me = ann.security.authenticate().body
    assert me["username"] == "ann"
    assert me["roles"] == ["logs_reader"]
    assert me["full_name"] == "Ann A"
    assert me["authentication_realm"] == {"name": "default_native", "type": "native"}
    assert me["authentication_type"] == "realm"
    assert "api_key" not in me

    result = ann.security.has_privileges(
        cluster=["monitor", "manage_security"],
        index=[{"names": ["logs-2026", "metrics-1"], "privileges": ["read", "write"]}],
    ).body
    assert result["username"] == "ann"
    assert result["has_all_requested"] is False
    assert result["cluster"] == {"monitor": True, "manage_security": False}
    assert result["index"] == {
        "logs-2026": {"read": True, "write": False},
        "metrics-1": {"read": False, "write": False},
    }
    assert ann.security.has_privileges(cluster=["monitor"]).body["has_all_requested"] is True

    with pytest.raises(AuthorizationException) as denied:
        ann.security.put_role(name="x", cluster=["all"])
    assert denied.value.body["error"]["reason"] == (
        "action [cluster:admin/xpack/security/role/put] is unauthorized for user [ann] with effective roles "
        "[logs_reader], this action is granted by the cluster privileges [manage_security,all]"
    )
    ann.close()


def test_wrong_password_and_disabled_user(es: Elasticsearch, server: Server) -> None:
    es.security.put_user(username="bob", password="bob-secret", roles=["viewer"])
    with pytest.raises(AuthenticationException) as exc:
        Elasticsearch(server.url, basic_auth=("bob", "nope-nope")).security.authenticate()
    body = exc.value.body
    assert body["status"] == 401
    assert body["error"]["reason"] == "unable to authenticate user [bob] for REST request [/_security/_authenticate]"
    assert body["error"]["header"]["WWW-Authenticate"][0] == 'Basic realm="security", charset="UTF-8"'

    bob = Elasticsearch(server.url, basic_auth=("bob", "bob-secret"))
    assert bob.security.authenticate()["username"] == "bob"
    es.security.disable_user(username="bob")
    with pytest.raises(AuthenticationException):
        bob.security.authenticate()
    es.security.enable_user(username="bob")
    assert bob.security.authenticate()["username"] == "bob"


def test_change_password_own_and_others(es: Elasticsearch, server: Server) -> None:
    es.security.put_user(username="carol", password="carol-secret", roles=["viewer"])
    carol = Elasticsearch(server.url, basic_auth=("carol", "carol-secret"))
    carol.security.change_password(password="carol-secret-2")  # her own, no privilege needed
    with pytest.raises(AuthenticationException):
        carol.security.authenticate()
    carol2 = Elasticsearch(server.url, basic_auth=("carol", "carol-secret-2"))
    assert carol2.security.authenticate()["username"] == "carol"
    with pytest.raises(AuthorizationException):
        carol2.security.change_password(username="elastic", password="hijacked!")
    es.security.change_password(username="carol", password="carol-secret-3")
    assert Elasticsearch(server.url, basic_auth=("carol", "carol-secret-3")).security.authenticate()


def test_get_delete_and_query_users(es: Elasticsearch) -> None:
    for name in ("u1", "u2", "u3"):
        es.security.put_user(username=name, password="password1", roles=["viewer"], enabled=name != "u3")
    users = es.security.get_user(username=["u1", "u2"]).body
    assert set(users) == {"u1", "u2"}
    everyone = es.security.get_user().body
    assert {"u1", "u2", "u3", "elastic"} <= set(everyone)
    assert everyone["elastic"]["metadata"] == {"_reserved": True}
    with pytest.raises(NotFoundError):
        es.security.get_user(username="nobody")
    page = es.security.query_user(query={"term": {"enabled": False}}).body
    assert page["total"] == 1 and page["users"][0]["username"] == "u3"
    sorted_page = es.security.query_user(sort=[{"username": "desc"}], size=2).body
    assert [u["username"] for u in sorted_page["users"]] == ["u3", "u2"]
    assert sorted_page["total"] == 3
    assert es.security.delete_user(username="u1").body == {"found": True}
    with pytest.raises(NotFoundError) as gone:
        es.security.delete_user(username="u1")
    assert gone.value.body == {"found": False}


def test_reserved_users_and_roles_are_protected(es: Elasticsearch) -> None:
    with pytest.raises(BadRequestError) as exc:
        es.security.put_user(username="elastic", password="whatever1", roles=["superuser"])
    assert "user [elastic] is reserved and only the password can be changed" in exc.value.body["error"]["reason"]
    with pytest.raises(BadRequestError):
        es.security.delete_user(username="elastic")
    with pytest.raises(BadRequestError) as exc:
        es.security.put_role(name="superuser", cluster=["all"])
    reason = exc.value.body["error"]["reason"]
    assert reason == "Validation Failed: 1: Role [superuser] is reserved and may not be used.;"
    with pytest.raises(BadRequestError):
        es.security.delete_role(name="superuser")
    assert "superuser" in es.security.get_role(name="superuser")


def test_bulk_roles_and_query_roles(es: Elasticsearch) -> None:
    res = es.security.bulk_put_role(
        roles={
            "r1": {"cluster": ["monitor"], "description": "first"},
            "r2": {"cluster": ["bogus_privilege"]},
        }
    ).body
    assert res["created"] == ["r1"]
    assert res["errors"]["count"] == 1
    assert "unknown cluster privilege [bogus_privilege]" in res["errors"]["details"]["r2"]["reason"]
    es.security.put_role(name="r3", cluster=["manage_security"], metadata={"k": "v"})
    found = es.security.query_role(query={"prefix": {"name": "r"}}, sort=["name"]).body
    assert [r["name"] for r in found["roles"]] == ["r1", "r3"]
    assert found["roles"][0]["description"] == "first"
    deleted = es.security.bulk_delete_role(names=["r1", "missing"]).body
    assert deleted == {"deleted": ["r1"], "not_found": ["missing"]}


def test_run_as(es: Elasticsearch, server: Server) -> None:
    es.security.put_role(name="impersonator", run_as=["dave"], cluster=["monitor"])
    es.security.put_user(username="ivan", password="ivan-secret", roles=["impersonator"])
    es.security.put_user(username="dave", password="dave-secret", roles=["viewer"])
    es.security.put_user(username="erin", password="erin-secret", roles=["viewer"])
    ivan = Elasticsearch(server.url, basic_auth=("ivan", "ivan-secret"))
    me = ivan.options(headers={"es-security-runas-user": "dave"}).security.authenticate().body
    assert me["username"] == "dave"
    assert me["authentication_realm"]["name"] == "default_native"
    with pytest.raises(AuthorizationException) as exc:
        ivan.options(headers={"es-security-runas-user": "erin"}).security.authenticate()
    assert "is unauthorized to run as [erin]" in exc.value.body["error"]["reason"]


def test_application_privileges_and_has_privileges(es: Elasticsearch, server: Server) -> None:
    es.security.put_privileges(
        privileges={
            "myapp": {
                "read": {"actions": ["data:read/*"]},
                "write": {"actions": ["data:write/*", "data:read/*"]},
            }
        }
    )
    es.security.put_role(
        name="app_reader", applications=[{"application": "myapp", "privileges": ["read"], "resources": ["space/*"]}]
    )
    es.security.put_user(username="frank", password="frank-secret", roles=["app_reader"])
    frank = Elasticsearch(server.url, basic_auth=("frank", "frank-secret"))
    res = frank.security.has_privileges(
        application=[
            {
                "application": "myapp",
                "privileges": ["read", "write", "data:read/docs"],
                "resources": ["space/a", "other"],
            }
        ]
    ).body
    assert res["application"]["myapp"]["space/a"] == {"read": True, "write": False, "data:read/docs": True}
    assert res["application"]["myapp"]["other"] == {"read": False, "write": False, "data:read/docs": False}
    builtin = es.security.get_builtin_privileges().body
    assert "manage_api_key" in builtin["cluster"] and "read" in builtin["index"]


def test_role_mappings(es: Elasticsearch, http) -> None:  # type: ignore[no-untyped-def]
    res = es.security.put_role_mapping(
        name="ldap-admins",
        roles=["superuser"],
        enabled=True,
        rules={"all": [{"field": {"realm.name": "ldap1"}}, {"except": {"field": {"username": "guest"}}}]},
    )
    assert res.body == {"role_mapping": {"created": True}}
    got = es.security.get_role_mapping(name="ldap-admins").body["ldap-admins"]
    assert got["roles"] == ["superuser"] and got["metadata"] == {} and got["enabled"] is True
    assert "ldap-admins" in es.security.get_role_mapping().body
    bad = http.put("/_security/role_mapping/x", json={"roles": ["a"]})
    assert bad.status_code == 400 and "rules are missing" in bad.json()["error"]["reason"]
    bad = http.put("/_security/role_mapping/x", json={"roles": ["a"], "rules": {"nope": {}}})
    assert bad.status_code == 400
    assert es.security.delete_role_mapping(name="ldap-admins").body == {"found": True}
    with pytest.raises(NotFoundError):
        es.security.get_role_mapping(name="ldap-admins")


def test_password_hash_is_accepted(es: Elasticsearch, server: Server) -> None:
    import bcrypt

    hashed = bcrypt.hashpw(b"hashed-secret", bcrypt.gensalt(4)).decode().replace("$2b$", "$2a$", 1)
    assert es.security.put_user(username="hal", password_hash=hashed, roles=["viewer"]).body == {"created": True}
    hal = Elasticsearch(server.url, basic_auth=("hal", "hashed-secret"))
    assert hal.security.authenticate()["username"] == "hal"
    rehashed = bcrypt.hashpw(b"hashed-secret-2", bcrypt.gensalt(4)).decode()
    es.security.change_password(username="hal", password_hash=rehashed)
    assert Elasticsearch(server.url, basic_auth=("hal", "hashed-secret-2")).security.authenticate()["username"] == "hal"


def test_user_privileges(es: Elasticsearch, server: Server) -> None:
    es.security.put_role(
        name="pr", cluster=["monitor"], indices=[{"names": ["a-*"], "privileges": ["read"]}], run_as=["someone"]
    )
    es.security.put_user(username="pia", password="pia-secret", roles=["pr"])
    pia = Elasticsearch(server.url, basic_auth=("pia", "pia-secret"))
    privileges = pia.security.get_user_privileges().body
    assert privileges["cluster"] == ["monitor"]
    assert privileges["indices"] == [{"names": ["a-*"], "privileges": ["read"], "allow_restricted_indices": False}]
    assert privileges["run_as"] == ["someone"]
    key = es.security.create_api_key(name="k", role_descriptors={"r": {"cluster": ["monitor"]}})
    with pytest.raises(BadRequestError) as exc:
        Elasticsearch(server.url, api_key=key["encoded"]).security.get_user_privileges()
    assert exc.value.body["error"]["reason"].startswith(
        "Cannot retrieve privileges for API keys with assigned role descriptors."
    )


def test_security_settings(es: Elasticsearch, server: Server) -> None:
    got = es.security.get_settings().body
    assert got == {
        name: {"index": {"auto_expand_replicas": "0-1"}} for name in ("security", "security-tokens", "security-profile")
    }
    assert es.security.update_settings(
        security={"index.auto_expand_replicas": None, "index.number_of_replicas": 1},
        security_tokens={"index.number_of_replicas": "2"},
    ).body == {"acknowledged": True}
    got = es.security.get_settings().body
    assert got["security"] == {"index": {"number_of_replicas": "1"}}
    assert got["security-tokens"] == {"index": {"auto_expand_replicas": "0-1", "number_of_replicas": "2"}}
    with pytest.raises(BadRequestError) as bad:
        es.security.update_settings(security={"index.refresh_interval": "1s", "index.number_of_replicas": 5})
    assert bad.value.body["error"]["type"] == "action_request_validation_exception"
    assert es.security.get_settings().body["security"] == {"index": {"number_of_replicas": "1"}}  # nothing changed

    es.security.put_role(name="sec-reader", cluster=["read_security"])
    es.security.put_user(username="rita", password="rita-secret", roles=["sec-reader"])
    rita = Elasticsearch(server.url, basic_auth=("rita", "rita-secret"))
    assert rita.security.get_settings().body == got
    with pytest.raises(AuthorizationException) as denied:
        rita.security.update_settings(security={"index.number_of_replicas": 0})
    assert "cluster:admin/xpack/security/settings/update" in denied.value.body["error"]["reason"]


def test_a_built_in_users_password_change_keeps_it_disabled(es: Elasticsearch) -> None:
    es.security.disable_user(username="kibana_system")
    try:
        es.security.change_password(username="kibana_system", password="kibana-new-password")
        assert es.security.get_user(username="kibana_system")["kibana_system"]["enabled"] is False
    finally:
        es.security.enable_user(username="kibana_system")
    assert es.security.get_user(username="kibana_system")["kibana_system"]["enabled"] is True
