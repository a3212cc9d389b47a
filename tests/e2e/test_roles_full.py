"""Long passwords, every password hash Elasticsearch accepts, and role descriptors in full,
through the official client against a real server (run on both stores)."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import httpx
import pytest
from elasticsearch import AuthorizationException, BadRequestError, Elasticsearch, NotFoundError

from tests.e2e.server import Server, on_store


def _client(server: Server, username: str, password: str) -> Elasticsearch:
    return Elasticsearch(server.url, basic_auth=(username, password))


def _pbkdf2(password: str, iterations: int, *, stretch: bool = False) -> str:
    secret = hashlib.sha512(password.encode()).hexdigest().encode() if stretch else password.encode()
    salt = os.urandom(32)
    key = hashlib.pbkdf2_hmac("sha512", secret, salt, iterations, 32)
    prefix = "{PBKDF2_STRETCH}" if stretch else "{PBKDF2}"
    return f"{prefix}{iterations}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


# -- passwords ---------------------------------------------------------------------------------------


def test_long_passwords_are_accepted_and_count_72_bytes(es: Elasticsearch, server: Server) -> None:
    long = "L" * 80
    assert es.security.put_user(username="lena", password=long, roles=["viewer"]).body == {"created": True}
    assert _client(server, "lena", long).security.authenticate()["username"] == "lena"
    # Elasticsearch's bcrypt reads 72 bytes: a password sharing them authenticates too.
    assert _client(server, "lena", "L" * 72 + "tail").security.authenticate()["username"] == "lena"
    with pytest.raises(Exception) as exc:
        _client(server, "lena", "L" * 71).security.authenticate()
    assert getattr(exc.value, "status_code", None) == 401
    longer = "€" * 60  # 180 bytes; the Python client only sends ASCII credentials, so httpx does
    es.security.change_password(username="lena", password=longer)
    token = base64.b64encode(f"lena:{longer}".encode()).decode()
    me = httpx.get(server.url + "/_security/_authenticate", headers={"Authorization": f"Basic {token}"})
    assert me.status_code == 200 and me.json()["username"] == "lena"


@pytest.fixture
def long_password_server(tmp_path: Path) -> Iterator[tuple[Server, str]]:
    password = "E" * 80
    with on_store(tmp_path, password=password) as srv:
        yield srv, password


def test_an_80_character_elastic_password_starts_the_server(long_password_server: tuple[Server, str]) -> None:
    srv, password = long_password_server
    me = httpx.get(srv.url + "/_security/_authenticate", auth=("elastic", password)).json()
    assert me["username"] == "elastic"


@pytest.mark.parametrize(
    "make_hash",
    [
        lambda pw: bcrypt.hashpw(pw.encode(), bcrypt.gensalt(4)).decode().replace("$2b$", "$2a$", 1),
        lambda pw: bcrypt.hashpw(pw.encode(), bcrypt.gensalt(11)).decode(),
        lambda pw: _pbkdf2(pw, 1000),
        lambda pw: _pbkdf2(pw, 10000),
        lambda pw: _pbkdf2(pw, 1000, stretch=True),
    ],
    ids=["bcrypt4", "bcrypt11", "pbkdf2_1000", "pbkdf2", "pbkdf2_stretch_1000"],
)
def test_password_hash_in_every_accepted_algorithm(es: Elasticsearch, server: Server, make_hash) -> None:  # type: ignore[no-untyped-def]
    es.security.put_user(username="hashed", password_hash=make_hash("first-secret"), roles=["viewer"])
    assert _client(server, "hashed", "first-secret").security.authenticate()["username"] == "hashed"
    es.security.change_password(username="hashed", password_hash=make_hash("second-secret"))
    assert _client(server, "hashed", "second-secret").security.authenticate()["username"] == "hashed"


def test_password_hash_refused_algorithms(es: Elasticsearch) -> None:
    for refused in ("{SSHA256}ZmFrZWZha2VmYWtl", "{SHA}abc", "plain-text-secret"):
        with pytest.raises(BadRequestError) as exc:
            es.security.put_user(username="nohash", password_hash=refused, roles=["viewer"])
        assert exc.value.body["error"]["type"] == "illegal_argument_exception"
        assert exc.value.body["error"]["reason"].startswith("The provided password hash is not a hash")
        assert "pbkdf2_stretch_1000000]" in exc.value.body["error"]["reason"]
    with pytest.raises(BadRequestError) as exc:
        es.security.put_user(username="nohash", password_hash="{PBKDF2}2000$abc$def", roles=["viewer"])
    assert exc.value.body["error"]["reason"] == "unknown hash function [pbkdf2_2000]"
    with pytest.raises(NotFoundError):
        es.security.get_user(username="nohash")


# -- role descriptors ---------------------------------------------------------------------------------

FULL_ROLE = {
    "cluster": ["monitor"],
    "global": {
        "application": {"manage": {"applications": ["app-*"]}},
        "profile": {"write": {"applications": ["kibana-*"]}},
    },
    "indices": [{"names": ["logs-*"], "privileges": ["read"], "query": {"term": {"owner": "me"}}}],
    "remote_indices": [{"clusters": ["eu-*"], "names": ["remote-*"], "privileges": ["read"]}],
    "remote_cluster": [{"privileges": ["monitor_enrich"], "clusters": ["eu-1"]}],
    "description": "every field",
}


def test_full_role_is_stored_and_shown(es: Elasticsearch, server: Server) -> None:
    assert es.security.put_role(name="full", **{k if k != "global" else "global_": v for k, v in FULL_ROLE.items()})[
        "role"
    ] == {"created": True}
    shown = es.security.get_role(name="full")["full"]
    assert shown == {
        "cluster": ["monitor"],
        "global": {
            "application": {"manage": {"applications": ["app-*"]}},
            "profile": {"write": {"applications": ["kibana-*"]}},
            "role": {},
        },
        "indices": [
            {
                "names": ["logs-*"],
                "privileges": ["read"],
                "query": '{"term":{"owner":"me"}}',
                "allow_restricted_indices": False,
            }
        ],
        "applications": [],
        "run_as": [],
        "metadata": {},
        "transient_metadata": {"enabled": True},
        "remote_indices": [
            {"names": ["remote-*"], "privileges": ["read"], "allow_restricted_indices": False, "clusters": ["eu-*"]}
        ],
        "remote_cluster": [{"privileges": ["monitor_enrich"], "clusters": ["eu-1"]}],
        "description": "every field",
    }
    es.security.put_user(username="fulla", password="fulla-secret", roles=["full"])
    privileges = _client(server, "fulla", "fulla-secret").security.get_user_privileges().body
    assert privileges["global"] == [
        {"application": {"manage": {"applications": ["app-*"]}}},
        {"profile": {"write": {"applications": ["kibana-*"]}}},
    ]
    assert privileges["indices"] == [
        {
            "names": ["logs-*"],
            "privileges": ["read"],
            "query": ['{"term":{"owner":"me"}}'],
            "allow_restricted_indices": False,
        }
    ]
    assert privileges["remote_indices"] == [
        {"names": ["remote-*"], "privileges": ["read"], "allow_restricted_indices": False, "clusters": ["eu-*"]}
    ]
    assert privileges["remote_cluster"] == [{"privileges": ["monitor_enrich"], "clusters": ["eu-1"]}]


@pytest.mark.parametrize(
    ("body", "status", "type_", "reason"),
    [
        (
            {"restriction": {"workflows": ["search_application_query"]}},
            400,
            "parse_exception",
            "failed to parse role [bad]. unexpected field [restriction]",
        ),
        (
            {"indices": [{"names": ["a"], "privileges": ["read"], "query": {"has_child": {"type": "c"}}}]},
            400,
            "parse_exception",
            "failed to parse field 'query' for indices [a] at index privilege [0] of role descriptor",
        ),
        (
            {"indices": [{"names": ["a"], "privileges": ["read"], "query": '{"terms": {"u": {"index": "i"}}}'}]},
            400,
            "parse_exception",
            "failed to parse field 'query' for indices [a] at index privilege [0] of role descriptor",
        ),
        (
            {"indices": [{"names": ["a"], "privileges": ["read"], "query": "{not json"}]},
            400,
            "parse_exception",
            "failed to parse field 'query' for indices [a] at index privilege [0] of role descriptor",
        ),
        (
            {"remote_cluster": [{"privileges": ["manage"], "clusters": ["*"]}]},
            400,
            "parse_exception",
            "failed to parse remote_cluster for role [bad]. [monitor_enrich, monitor_stats] are the only values "
            "allowed for [privileges] within [remote_cluster]. Found [manage]",
        ),
        (
            {"remote_cluster": [{}]},
            400,
            "illegal_argument_exception",
            "remote cluster groups must not be null or empty",
        ),
        (
            {"global": {"application": {"manage": {"applications": "app"}}}},
            400,
            "parse_exception",
            "failed to parse privilege. expected [START_ARRAY] but found [VALUE_STRING] instead",
        ),
    ],
)
def test_refused_role_fields_change_nothing(
    es: Elasticsearch, http: httpx.Client, body: dict, status: int, type_: str, reason: str
) -> None:
    res = http.put("/_security/role/bad", json=body)
    assert res.status_code == status
    assert res.json()["error"]["type"] == type_
    assert res.json()["error"]["reason"] == reason
    with pytest.raises(NotFoundError):
        es.security.get_role(name="bad")


def test_remote_indices_validation_messages(http: httpx.Client) -> None:
    res = http.put(
        "/_security/role/bad",
        json={"remote_indices": [{"clusters": [""], "names": ["a"], "privileges": ["manage_failure_store"]}]},
    )
    assert res.status_code == 400
    assert res.json()["error"]["reason"] == (
        "Validation Failed: 1: remote index cluster alias cannot be an empty string;"
        "2: remote index privileges cannot contain privileges that grant access to the failure store;"
    )


def test_global_application_manage_gates_application_privileges(es: Elasticsearch, server: Server) -> None:
    es.security.put_role(
        name="app_admin",
        cluster=["manage_own_api_key"],
        global_={"application": {"manage": {"applications": ["app-*"]}}},
    )
    es.security.put_user(username="appy", password="appy-secret", roles=["app_admin"])
    appy = _client(server, "appy", "appy-secret")
    put = appy.security.put_privileges(privileges={"app-one": {"read": {"actions": ["data:read/*"]}}})
    assert put.body == {"app-one": {"read": {"created": True}}}
    assert appy.security.get_privileges(application="app-one")["app-one"]["read"]["actions"] == ["data:read/*"]
    with pytest.raises(AuthorizationException) as exc:
        appy.security.put_privileges(privileges={"other": {"read": {"actions": ["data:read/*"]}}})
    assert exc.value.body["error"]["reason"].startswith(
        "action [cluster:admin/xpack/security/privilege/put] is unauthorized for user [appy]"
    )
    with pytest.raises(AuthorizationException):
        appy.security.get_privileges()  # every application: needs "*"
    with pytest.raises(AuthorizationException):
        appy.security.get_privileges(application="other")
    assert appy.security.delete_privileges(application="app-one", name="read").body == {
        "app-one": {"read": {"found": True}}
    }
    # Nothing beyond: no other security action.
    with pytest.raises(AuthorizationException):
        appy.security.get_role()
    # An API key of the user carries the global privilege, within its own descriptors.
    key = appy.security.create_api_key(
        name="k", role_descriptors={"r": {"global": {"application": {"manage": {"applications": ["app-two"]}}}}}
    )
    via_key = Elasticsearch(server.url, api_key=key["encoded"])
    via_key.security.put_privileges(privileges={"app-two": {"read": {"actions": ["data:read/*"]}}})
    with pytest.raises(AuthorizationException):
        via_key.security.put_privileges(privileges={"app-three": {"read": {"actions": ["data:read/*"]}}})


def test_global_role_manage_gates_role_writes(es: Elasticsearch, server: Server) -> None:
    scope = {"role": {"manage": {"indices": [{"names": ["team-*"], "privileges": ["read", "delete_index"]}]}}}
    es.security.put_role(name="role_admin", global_=scope)
    es.security.put_user(username="rada", password="rada-secret", roles=["role_admin"])
    rada = _client(server, "rada", "rada-secret")
    team = [{"names": ["team-a"], "privileges": ["read"]}]
    assert rada.security.put_role(name="team-a", indices=team)["role"] == {"created": True}
    with pytest.raises(AuthorizationException):
        rada.security.put_role(name="team-b", indices=team, cluster=["monitor"])
    with pytest.raises(AuthorizationException):
        rada.security.put_role(name="team-c", indices=[{"names": ["elsewhere"], "privileges": ["read"]}])
    with pytest.raises(NotFoundError):
        es.security.get_role(name="team-b")
    assert rada.security.delete_role(name="team-a").body == {"found": True}
    with pytest.raises(AuthorizationException):
        rada.security.delete_role(name="role_admin")


def test_api_key_restriction_and_remote_cluster(es: Elasticsearch) -> None:
    key = es.security.create_api_key(
        name="restricted",
        role_descriptors={
            "r": {
                "indices": [{"names": ["a"], "privileges": ["read"]}],
                "remote_cluster": [{"privileges": ["monitor_stats"], "clusters": ["c"]}],
                "restriction": {"workflows": ["search_application_query"]},
            }
        },
    )
    got = es.security.get_api_key(id=key["id"])["api_keys"][0]["role_descriptors"]["r"]
    assert got["restriction"] == {"workflows": ["search_application_query"]}
    assert got["remote_cluster"] == [{"privileges": ["monitor_stats"], "clusters": ["c"]}]
    with pytest.raises(BadRequestError) as exc:
        es.security.create_api_key(name="x", role_descriptors={"r": {"restriction": {"workflows": ["nope"]}}})
    assert "Unknown workflow [nope]" in exc.value.body["error"]["reason"]
