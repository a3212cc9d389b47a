"""The file realm and file service tokens on a real server: users that exist only in the config dir's files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from elasticsearch import AuthenticationException, Elasticsearch

from keyplane import ids
from keyplane.security import realm_files
from keyplane.security.passwords import hash_password
from keyplane.service_accounts import core, file_tokens
from keyplane.service_accounts.core import TokenId
from tests.e2e.admin import START_TIMEOUT
from tests.e2e.admin import eventually as _eventually
from tests.e2e.server import PASSWORD, Server, on_store


def _status(server: Server, auth: tuple[str, str]) -> int:
    return httpx.get(server.url + "/_security/_authenticate", auth=auth).status_code


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = tmp_path_factory.mktemp("config")
    users = {"filer": hash_password("filer-secret"), "both": hash_password("file-side")}
    realm_files.write_atomically(config / "users", realm_files.users_text(users))
    realm_files.write_atomically(config / "users_roles", "viewer:filer\nsuperuser:both\n")
    return config


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, config: Path) -> Iterator[Server]:
    env = {"KEYPLANE_CONFIG_DIR": str(config)}
    with on_store(tmp_path_factory.mktemp("data"), extra_env=env, timeout=START_TIMEOUT) as srv:
        yield srv


def test_a_user_only_in_the_files_authenticates_with_the_official_client(server: Server) -> None:
    with Elasticsearch(server.url, basic_auth=("filer", "filer-secret")) as es:
        me = es.security.authenticate().body
    assert me["username"] == "filer" and me["roles"] == ["viewer"]
    assert me["authentication_realm"] == {"name": "default_file", "type": "file"}
    assert me["lookup_realm"] == {"name": "default_file", "type": "file"}
    assert me["authentication_type"] == "realm"
    with Elasticsearch(server.url, basic_auth=("filer", "wrong-secret")) as es, pytest.raises(AuthenticationException):
        es.security.authenticate()
    with Elasticsearch(server.url, basic_auth=("elastic", PASSWORD)) as admin:
        listed = admin.security.get_user().body
        assert "filer" not in listed and "elastic" in listed  # file users are not native users
        # The file user's roles apply: viewer may not create users.
        assert _status(server, ("filer", "filer-secret")) == 200
    forbidden = httpx.put(
        server.url + "/_security/user/x", auth=("filer", "filer-secret"), json={"password": "x-secret", "roles": []}
    )
    assert forbidden.status_code == 403


def test_a_wrong_file_password_goes_on_to_the_native_realm(server: Server) -> None:
    admin = ("elastic", PASSWORD)
    created = httpx.put(
        server.url + "/_security/user/both", auth=admin, json={"password": "native-side", "roles": ["viewer"]}
    )
    assert created.status_code == 200
    file_side = httpx.get(server.url + "/_security/_authenticate", auth=("both", "file-side")).json()
    native_side = httpx.get(server.url + "/_security/_authenticate", auth=("both", "native-side")).json()
    assert file_side["authentication_realm"]["name"] == "default_file" and file_side["roles"] == ["superuser"]
    assert native_side["authentication_realm"]["name"] == "default_native" and native_side["roles"] == ["viewer"]


def test_users_added_changed_and_removed_while_running_are_seen(server: Server, config: Path) -> None:
    # An operator appending a line in place (no rename), then the realm's roles file rewritten.
    with open(config / "users", "a", encoding="utf-8") as users:
        users.write(f"late:{hash_password('late-secret')}\n")
    _eventually(lambda: _status(server, ("late", "late-secret")) == 200)
    realm_files.write_atomically(config / "users_roles", "viewer:filer\nsuperuser:both,late\n")
    _eventually(
        lambda: (
            httpx.get(server.url + "/_security/_authenticate", auth=("late", "late-secret")).json()["roles"]
            == ["superuser"]
        )
    )
    # A new password replaces the cached check of the old one.
    current = realm_files.parse_users(realm_files.read_lines(config / "users") or [], config)[0]
    realm_files.write_atomically(
        config / "users", realm_files.users_text({**current, "late": hash_password("new-late")})
    )
    _eventually(lambda: _status(server, ("late", "late-secret")) == 401)
    assert _status(server, ("late", "new-late")) == 200
    del current["late"]
    realm_files.write_atomically(config / "users", realm_files.users_text(current))
    _eventually(lambda: _status(server, ("late", "new-late")) == 401)
    assert _status(server, ("filer", "filer-secret")) == 200


def test_a_malformed_line_is_a_warning_and_the_rest_keeps_working(server: Server, config: Path) -> None:
    before = (config / "users").read_text()
    hashed = hash_password("odd-secret")
    (config / "users").write_text(before + "this line has no colon\nelastic:" + hashed + "\n")
    bad_line = f"invalid entry in users file [{config / 'users'}], line [{len(before.splitlines()) + 1}]"
    _eventually(lambda: bad_line in server.output())
    log = server.output()
    assert f"invalid username in users file [{config / 'users'}], line [{len(before.splitlines()) + 2}]" in log
    assert hashed not in log and "no colon" not in log  # never the line's text
    assert _status(server, ("filer", "filer-secret")) == 200
    assert _status(server, ("elastic", PASSWORD)) == 200  # a reserved name in the file changes nothing
    (config / "users").write_text(before)


def test_a_service_token_from_the_file_authenticates(server: Server, config: Path) -> None:
    token = TokenId("elastic/fleet-server", "from-file")
    secret = ids.new_secret()
    realm_files.write_atomically(
        config / "service_tokens", file_tokens.text({token.key: file_tokens.hash_token_secret(secret)})
    )
    value = core.encode(token, secret)
    bearer = {"Authorization": f"Bearer {value}"}
    _eventually(lambda: httpx.get(server.url + "/_security/_authenticate", headers=bearer).status_code == 200)
    with Elasticsearch(server.url, bearer_auth=value) as es:
        me = es.security.authenticate().body
    assert me["username"] == "elastic/fleet-server"
    assert me["token"]["name"] == "from-file" and me["token"]["type"] == "_service_account_file"
    assert me["authentication_realm"] == {"name": "_service_account", "type": "_service_account"}
    wrong = {"Authorization": f"Bearer {core.encode(token, 'not-the-secret')}"}
    assert httpx.get(server.url + "/_security/_authenticate", headers=wrong).status_code == 401
    listed = httpx.get(
        server.url + "/_security/service/elastic/fleet-server/credential", auth=("elastic", PASSWORD)
    ).json()
    assert listed["count"] == 1 and listed["tokens"] == {}  # the file's token, on this node only
    assert listed["nodes_credentials"]["file_tokens"] == {"from-file": {"nodes": ["keyplane"]}}
    (config / "service_tokens").unlink()
    _eventually(lambda: httpx.get(server.url + "/_security/_authenticate", headers=bearer).status_code == 401)


def test_file_users_get_tokens_and_api_keys_and_can_be_run_as(server: Server) -> None:
    with Elasticsearch(server.url, basic_auth=("both", "file-side")) as es:  # superuser in the files
        token = es.security.get_token(grant_type="password", username="filer", password="filer-secret").body
        key = es.security.create_api_key(name="by-a-file-user").body
    with Elasticsearch(server.url, bearer_auth=token["access_token"]) as es:
        me = es.security.authenticate().body
    assert me["username"] == "filer" and me["authentication_type"] == "token"
    assert me["authentication_realm"]["name"] == "default_file"
    with Elasticsearch(server.url, api_key=key["encoded"]) as es:
        owner = es.security.get_api_key(id=key["id"]).body["api_keys"][0]
    assert owner["username"] == "both" and owner["realm"] == "default_file"
    with Elasticsearch(server.url, basic_auth=("elastic", PASSWORD), headers={"es-security-runas-user": "filer"}) as es:
        ran = es.security.authenticate().body
    assert ran["username"] == "filer" and ran["lookup_realm"] == {"name": "default_file", "type": "file"}
    assert ran["authentication_realm"]["name"] == "reserved"
