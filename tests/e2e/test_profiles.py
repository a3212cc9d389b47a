"""User profiles, and profile uids on users and API keys."""

from __future__ import annotations

import pytest
from elasticsearch import AuthorizationException, Elasticsearch, NotFoundError

from tests.e2e.server import Server


def test_profile_lifecycle(es: Elasticsearch, server: Server) -> None:
    es.security.put_user(
        username="juan",
        password="s3krit-password",
        roles=["superuser"],
        full_name="Juan Pérez",
        email="juan@bazooka.gum",
    )
    es.security.put_user(username="ana", password="ana-password", roles=["viewer"], full_name="Ana North")
    juan = es.security.activate_user_profile(grant_type="password", username="juan", password="s3krit-password")
    uid = juan["uid"]
    assert uid.startswith("u_") and juan["enabled"] is True
    assert juan["user"]["username"] == "juan" and juan["user"]["realm_name"] == "default_native"
    again = es.security.activate_user_profile(grant_type="password", username="juan", password="s3krit-password")
    assert again["uid"] == uid  # one profile per user and realm
    ana = es.security.activate_user_profile(grant_type="password", username="ana", password="ana-password")["uid"]

    es.security.disable_user_profile(uid=uid)
    assert es.security.get_user_profile(uid=uid)["profiles"][0]["enabled"] is False
    es.security.enable_user_profile(uid=uid)
    assert es.security.get_user_profile(uid=uid)["profiles"][0]["enabled"] is True

    es.security.update_user_profile_data(uid=uid, labels={"direction": "east"}, data={"app": {"theme": "dark"}})
    es.security.update_user_profile_data(uid=uid, data={"app": {"size": 2}})
    got = es.security.get_user_profile(uid=uid, data="app")["profiles"][0]
    assert got["labels"] == {"direction": "east"} and got["data"] == {"app": {"theme": "dark", "size": 2}}
    assert es.security.get_user_profile(uid=uid)["profiles"][0]["data"] == {}  # data only when asked

    suggested = es.security.suggest_user_profiles(name="ju", size=5, hint={"labels": {"direction": ["north"]}})
    assert [p["uid"] for p in suggested["profiles"]] == [uid]
    everyone = es.security.suggest_user_profiles(hint={"labels": {"direction": "east"}}).body
    assert [p["uid"] for p in everyone["profiles"]] == [uid, ana]  # the hint ranks juan first

    holders = es.security.has_privileges_user_profile(
        uids=[uid, ana, "u_missing_0"], privileges={"cluster": ["manage_security"]}
    ).body
    assert holders["has_privilege_uids"] == [uid]
    assert list(holders["errors"]["details"]) == ["u_missing_0"]

    assert es.security.get_user(username="juan", with_profile_uid=True)["juan"]["profile_uid"] == uid
    assert "profile_uid" not in es.security.get_user(username="juan")["juan"]
    key = Elasticsearch(server.url, basic_auth=("juan", "s3krit-password")).security.create_api_key(name="jk")
    got_key = es.security.get_api_key(id=key["id"], with_profile_uid=True)["api_keys"][0]
    assert got_key["profile_uid"] == uid
    queried = es.security.query_api_keys(query={"ids": {"values": [key["id"]]}}, with_profile_uid=True)
    assert queried["api_keys"][0]["profile_uid"] == uid

    missing = es.security.get_user_profile(uid="u_nope_0").body
    assert missing["profiles"] == [] and missing["errors"]["count"] == 1
    with pytest.raises(NotFoundError):
        es.security.enable_user_profile(uid="u_nope_0")
    with pytest.raises(AuthorizationException):
        Elasticsearch(server.url, basic_auth=("ana", "ana-password")).security.activate_user_profile(
            grant_type="password", username="ana", password="ana-password"
        )


def test_global_profile_write_allows_its_applications_only(es: Elasticsearch, server: Server) -> None:
    es.security.put_user(username="ana", password="ana-password", roles=["viewer"])
    uid = es.security.activate_user_profile(grant_type="password", username="ana", password="ana-password")["uid"]
    es.security.put_role(name="app_profiles", global_={"profile": {"write": {"applications": ["app-*"]}}})
    es.security.put_user(username="kibana_like", password="kibana-password", roles=["app_profiles"])
    writer = Elasticsearch(server.url, basic_auth=("kibana_like", "kibana-password"))
    writer.security.update_user_profile_data(uid=uid, labels={"app-1": "x"}, data={"app-2": {"theme": "dark"}})
    assert es.security.get_user_profile(uid=uid, data="app-2")["profiles"][0]["data"] == {"app-2": {"theme": "dark"}}
    with pytest.raises(AuthorizationException) as denied:
        writer.security.update_user_profile_data(uid=uid, data={"app-2": {}, "other": {"a": 1}})
    assert denied.value.body["error"]["reason"].startswith(
        "action [cluster:admin/xpack/security/profile/put/data] is unauthorized for user [kibana_like]"
    )
    assert "other" not in es.security.get_user_profile(uid=uid, data="*")["profiles"][0]["data"]


def test_has_privileges_takes_many_uids_as_a_set(es: Elasticsearch) -> None:
    """Tens of thousands of uids, mostly repeated, are read in a few statements, not one per uid."""
    es.security.put_user(username="many", password="many-password", roles=["superuser"])
    uid = es.security.activate_user_profile(grant_type="password", username="many", password="many-password")["uid"]
    missing = [f"u_gone_{i}" for i in range(2_000)]
    uids = ["v"] * 40_000 + missing + [uid, uid]
    holders = es.options(request_timeout=20).security.has_privileges_user_profile(
        uids=uids, privileges={"cluster": ["manage_security"]}
    )
    assert holders["has_privilege_uids"] == [uid]
    assert set(holders["errors"]["details"]) == {"v", *missing}
    assert holders["errors"]["count"] == 2_001
