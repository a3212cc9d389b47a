"""Elasticsearch 9.4/9.5 role, privilege and authenticate additions, through the official client
(9.5) against a real server (run on both stores)."""

from __future__ import annotations

import httpx
import pytest
from elasticsearch import AuthorizationException, BadRequestError, Elasticsearch

from tests.e2e.server import Server

NEW_CLUSTER = ["clone_api_key", "manage_reindex", "monitor_reindex"]
NEW_INDEX = ["create_view", "delete_view", "manage_view", "read_view_metadata"]
DATA_SOURCE = [
    {"names": ["s3-*"], "privileges": ["read", "read_metadata"]},
    {"names": ["gcs"], "privileges": ["manage"]},
]


def _user(es: Elasticsearch, server: Server, name: str, role: str) -> Elasticsearch:
    es.security.put_user(username=name, password=f"{name}-password", roles=[role])
    return Elasticsearch(server.url, basic_auth=(name, f"{name}-password"))


def test_builtin_lists_the_new_privileges(es: Elasticsearch) -> None:
    builtin = es.security.get_builtin_privileges().body
    assert set(NEW_CLUSTER) <= set(builtin["cluster"])
    assert set(NEW_INDEX) <= set(builtin["index"])
    assert builtin["cluster"] == sorted(builtin["cluster"]) and builtin["index"] == sorted(builtin["index"])


def test_roles_take_the_new_privileges_and_has_privileges_answers(es: Elasticsearch, server: Server) -> None:
    es.security.put_role(
        name="new95",
        cluster=NEW_CLUSTER,
        indices=[
            {"names": ["views-*"], "privileges": ["manage_view"]},
            {"names": ["ro-*"], "privileges": ["create_view"]},
        ],
    )
    role = es.security.get_role(name="new95")["new95"]
    assert role["cluster"] == NEW_CLUSTER
    assert role["indices"][0]["privileges"] == ["manage_view"]
    user = _user(es, server, "vera", "new95")
    result = user.security.has_privileges(
        cluster=[*NEW_CLUSTER, "manage_api_key", "cluster:admin/xpack/security/api_key/clone"],
        index=[
            {"names": ["views-1"], "privileges": NEW_INDEX + ["read"]},
            {"names": ["ro-1"], "privileges": ["create_view", "delete_view"]},
        ],
    ).body
    assert result["cluster"] == {
        "clone_api_key": True,
        "manage_reindex": True,
        "monitor_reindex": True,
        "manage_api_key": False,
        "cluster:admin/xpack/security/api_key/clone": True,
    }
    assert result["index"]["views-1"] == {
        "create_view": True,
        "delete_view": True,
        "manage_view": True,
        "read_view_metadata": True,
        "read": False,
    }
    assert result["index"]["ro-1"] == {"create_view": True, "delete_view": False}
    # manage and all hold every view privilege; monitor holds monitor_reindex.
    es.security.put_role(name="mgr", cluster=["monitor"], indices=[{"names": ["*"], "privileges": ["manage"]}])
    mgr = _user(es, server, "max", "mgr").security.has_privileges(
        cluster=["monitor_reindex", "manage_reindex", "clone_api_key"],
        index=[{"names": ["x"], "privileges": NEW_INDEX}],
    )
    assert mgr["cluster"] == {"monitor_reindex": True, "manage_reindex": False, "clone_api_key": False}
    assert all(mgr["index"]["x"].values())


def test_clone_api_key_privilege_allows_cloning_and_its_absence_is_named(es: Elasticsearch, server: Server) -> None:
    source = es.security.create_api_key(name="source").body
    es.security.put_role(name="cloner", cluster=["clone_api_key"])
    cloner = _user(es, server, "cleo", "cloner")
    cloned = cloner.perform_request(
        "POST",
        "/_security/api_key/clone",
        headers={"content-type": "application/json", "accept": "application/json"},
        body={"api_key": source["encoded"], "name": "copy"},
    ).body
    assert cloned["name"] == "copy" and cloned["id"] != source["id"]
    es.security.put_role(name="own_keys", cluster=["manage_own_api_key"])
    owner = _user(es, server, "otto", "own_keys")
    with pytest.raises(AuthorizationException) as exc:
        owner.perform_request(
            "POST",
            "/_security/api_key/clone",
            headers={"content-type": "application/json", "accept": "application/json"},
            body={"api_key": source["encoded"], "name": "copy2"},
        )
    reason = exc.value.body["error"]["reason"]
    assert "cluster:admin/xpack/security/api_key/clone" in reason
    assert "[clone_api_key,manage_api_key,manage_security,all]" in reason


def test_api_key_role_descriptors_take_the_new_names(es: Elasticsearch, server: Server) -> None:
    key = es.security.create_api_key(
        name="k95",
        role_descriptors={
            "r": {
                "cluster": NEW_CLUSTER,
                "indices": [{"names": ["v"], "privileges": NEW_INDEX}],
                "global": {"data_source": DATA_SOURCE},
            }
        },
    ).body
    shown = es.security.get_api_key(id=key["id"])["api_keys"][0]["role_descriptors"]["r"]
    assert shown["cluster"] == NEW_CLUSTER
    assert shown["global"]["data_source"] == DATA_SOURCE
    with pytest.raises(BadRequestError):
        es.security.create_api_key(name="bad", role_descriptors={"r": {"cluster": ["manage_reindexes"]}})


def test_global_data_source_is_stored_shown_and_checked(es: Elasticsearch, server: Server, http: httpx.Client) -> None:
    es.security.put_role(name="sources", global_={"data_source": DATA_SOURCE})
    role = es.security.get_role(name="sources")["sources"]
    assert role["global"] == {"application": {}, "profile": {}, "role": {}, "data_source": DATA_SOURCE}
    user = _user(es, server, "sam", "sources")
    assert user.security.get_user_privileges()["global"] == [{"data_source": DATA_SOURCE}]
    refusals = {
        "write": "unknown data source privilege [write]",
        "": "unknown data source privilege []",
    }
    for privilege, message in refusals.items():
        r = http.put(
            "/_security/role/bad", json={"global": {"data_source": [{"names": ["a"], "privileges": [privilege]}]}}
        )
        assert r.status_code == 400 and message in r.json()["error"]["reason"]
    for body in (
        {"global": {"data_source": {"names": ["a"], "privileges": ["read"]}}},
        {"global": {"data_source": [{"names": ["a"], "privileges": ["read"], "clusters": ["x"]}]}},
        {"global": {"data_source": [{"names": [], "privileges": ["read"]}]}},
    ):
        r = http.put("/_security/role/bad", json=body)
        assert r.status_code == 400, body
        assert r.json()["error"]["type"] in ("parse_exception", "illegal_argument_exception")
    # A refused write changes nothing.
    assert http.get("/_security/role/bad").status_code == 404


def test_get_role_include_implicit(es: Elasticsearch, http: httpx.Client) -> None:
    es.security.put_role(name="plain", indices=[{"names": ["a"], "privileges": ["read"]}])
    with_flag = es.security.get_role(name="plain", include_implicit=True).body
    assert with_flag == es.security.get_role(name="plain").body  # no provider grants anything here
    assert http.get("/_security/role", params={"include_implicit": "false"}).status_code == 200
    bad = http.get("/_security/role/plain", params={"include_implicit": "maybe"})
    assert bad.status_code == 400
    # A GET-then-PUT round trip must not echo the marker: put role refuses it.
    r = http.put(
        "/_security/role/echo",
        json={"indices": [{"names": ["a"], "privileges": ["read"], "implicitly_granted": True}]},
    )
    assert r.status_code == 400 and "unexpected field [implicitly_granted]" in r.json()["error"]["reason"]
    assert http.get("/_security/role/echo").status_code == 404


def test_authenticate_managed_by(es: Elasticsearch, server: Server) -> None:
    assert "api_key" not in es.security.authenticate().body
    key = es.security.create_api_key(name="who").body
    me = Elasticsearch(server.url, api_key=key["encoded"]).security.authenticate().body
    assert me["api_key"] == {"id": key["id"], "name": "who", "managed_by": "elasticsearch"}
    token = es.security.create_service_token(namespace="elastic", service="fleet-server", name="t95").body
    headers = {"Authorization": f"Bearer {token['token']['value']}"}
    service = httpx.get(server.url + "/_security/_authenticate", headers=headers).json()
    assert service["token"] == {"name": "t95", "type": "_service_account_index", "managed_by": "elasticsearch"}


def test_privilege_lists_in_paths(es: Elasticsearch) -> None:
    es.security.put_privileges(
        privileges={
            "app-one": {"read": {"actions": ["data:read/*"]}, "write": {"actions": ["data:write/*"]}},
            "app-two": {"read": {"actions": ["data:read/*"]}},
        }
    )
    cleared = es.security.clear_cached_privileges(application="app-one,app-two").body
    assert "_nodes" in cleared and "cluster_name" in cleared
    got = es.security.get_privileges(application="app-one", name="read,write").body
    assert set(got["app-one"]) == {"read", "write"}
    deleted = es.security.delete_privileges(application="app-one", name="read,write,nope").body
    assert deleted == {"app-one": {"read": {"found": True}, "write": {"found": True}, "nope": {"found": False}}}
