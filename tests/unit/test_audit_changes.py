"""Security changes are described from an allow-list: no secret of a request or its answer gets in."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from keyplane.audit.changes import CHANGES, Request, describe

SECRETS = ("pw-Secret-1", "$2a$10$hashhashhash", "key-secret-2", "ZW5jb2RlZA==", "token-value-3", "secret-value-4")
# Every field a request or an answer of these APIs can carry a secret in, each holding one.
LOADED: dict[str, Any] = {
    "password": SECRETS[0],
    "password_hash": SECRETS[1],
    "api_key": SECRETS[2],
    "encoded": SECRETS[3],
    "access_token": SECRETS[4],
    "value": SECRETS[5],
    "secret": SECRETS[5],
    "client_authentication": {"scheme": "SharedSecret", "value": SECRETS[5]},
}


def _request(action: str) -> Request:
    body = {
        **LOADED,
        "name": "n",
        "ids": ["k1"],
        "roles": {"r": {"cluster": ["all"], **LOADED}},
        "names": ["r"],
        "api_key": {"name": "granted", **LOADED},
        "api_keys": [{"name": "granted", **LOADED}],
        "grant_type": "password",
        "username": "ann",
        "app": {"read": {"actions": ["a:*"], **LOADED}},
        "labels": {"x": SECRETS[0]},
        "data": {"y": SECRETS[0]},
    }
    answer = {
        "id": "k1",
        "uid": "u1",
        "token": {"name": "t1", "value": SECRETS[4]},
        "created": [{"id": "k2", **LOADED}],
    }
    answer.update(LOADED)
    params = {
        "username": "ann",
        "name": "n",
        "ids": "k1",
        "id": "s1",
        "namespace": "elastic",
        "service": "fleet-server",
    }
    return Request("PUT", "/_security/x/_enable", params, body, answer)


@pytest.mark.parametrize("action", sorted(CHANGES))
def test_no_secret_in_any_change(action: str) -> None:
    described = describe(action, _request(action))
    assert described, action
    text = orjson.dumps(described).decode()
    for secret in SECRETS:
        assert secret not in text, (action, text)


def test_put_user_says_a_password_was_set_without_it() -> None:
    body = {"password": SECRETS[0], "roles": ["viewer"], "full_name": "Ann", "metadata": {"team": "a"}}
    [(name, change)] = describe(
        "cluster:admin/xpack/security/user/put",
        Request("PUT", "/_security/user/{username}", {"username": "ann"}, body, {}),
    )
    assert name == "put_user"
    assert change == {
        "put": {
            "user": {
                "name": "ann",
                "roles": ["viewer"],
                "full_name": "Ann",
                "metadata": {"team": "a"},
                "has_password": True,
            }
        }
    }


def test_clone_never_copies_the_source_key_credential() -> None:
    body = {"api_key": SECRETS[3], "name": "copy", "expiration": "1d"}
    [(name, change)] = describe(
        "cluster:admin/xpack/security/api_key/clone",
        Request("POST", "/_security/api_key/clone", {}, body, {"id": "k9"}),
    )
    assert name == "create_apikey"
    assert change == {"create": {"apikey": {"id": "k9", "name": "copy", "expiration": "1d"}, "clone": True}}


def test_other_actions_are_no_changes() -> None:
    assert describe("cluster:admin/xpack/security/user/get", _request("x")) == []
