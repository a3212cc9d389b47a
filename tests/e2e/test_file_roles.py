"""roles.yml on a real server: roles that exist only in the config dir, resolved for every kind of user."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from elasticsearch import AuthorizationException, Elasticsearch, NotFoundError

from keyplane.security import realm_files
from keyplane.security.passwords import hash_password
from tests.e2e.admin import START_TIMEOUT, eventually
from tests.e2e.server import PASSWORD, Server, on_store

ADMIN = ("elastic", PASSWORD)
FILER = ("filer", "filer-secret")

ROLES = """
logs_reader:
  cluster: [manage_own_api_key]
  metadata: {origin: file}
  indices:
    - names: 'logs-*'
      privileges: [read]
"""


def _write_roles(config: Path, text: str) -> None:
    realm_files.write_atomically(config / "roles.yml", text)


def _search(server: Server, auth: tuple[str, str], index: str) -> int:
    return httpx.get(f"{server.url}/{index}/_search", auth=auth).status_code


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = tmp_path_factory.mktemp("config")
    realm_files.write_atomically(config / "users", realm_files.users_text({"filer": hash_password(FILER[1])}))
    realm_files.write_atomically(config / "users_roles", "logs_reader:filer\n")
    _write_roles(config, ROLES)
    return config


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, config: Path) -> Iterator[Server]:
    env = {"KEYPLANE_CONFIG_DIR": str(config)}
    with on_store(tmp_path_factory.mktemp("data"), extra_env=env, timeout=START_TIMEOUT) as srv:
        yield srv


@pytest.fixture(autouse=True)
def indices(server: Server, config: Path) -> Iterator[None]:
    # The test-mode reset (conftest) wipes the indices before each test; the roles file is put back after.
    for index in ("logs-1", "secret-1"):
        httpx.put(f"{server.url}/{index}/_doc/1?refresh=true", auth=ADMIN, json={"n": 1}).raise_for_status()
    yield
    _write_roles(config, ROLES)
    eventually(lambda: (_search(server, FILER, "logs-1"), _search(server, FILER, "secret-1")) == (200, 403))


def test_a_file_user_gets_the_privileges_of_a_role_only_in_roles_yml(server: Server) -> None:
    with Elasticsearch(server.url, basic_auth=FILER) as es:
        assert es.security.authenticate().body["roles"] == ["logs_reader"]
        assert es.search(index="logs-1").body["hits"]["total"]["value"] == 1
        with pytest.raises(AuthorizationException):
            es.search(index="secret-1")
        checked = es.security.has_privileges(
            index=[{"names": ["logs-1", "secret-1"], "privileges": ["read"]}], cluster=["manage_own_api_key"]
        ).body
    assert checked["cluster"] == {"manage_own_api_key": True}
    assert checked["index"] == {"logs-1": {"read": True}, "secret-1": {"read": False}}


def test_native_users_and_api_key_owners_resolve_file_roles(server: Server) -> None:
    with Elasticsearch(server.url, basic_auth=ADMIN) as admin:
        admin.security.put_user(username="native", password="native-secret", roles=["logs_reader"])
    native = ("native", "native-secret")
    assert _search(server, native, "logs-1") == 200 and _search(server, native, "secret-1") == 403
    with Elasticsearch(server.url, basic_auth=FILER) as es:
        key = es.security.create_api_key(name="from-file-role").body
    by_key = {"Authorization": f"ApiKey {key['encoded']}"}
    assert httpx.get(f"{server.url}/logs-1/_search", headers=by_key).status_code == 200
    assert httpx.get(f"{server.url}/secret-1/_search", headers=by_key).status_code == 403


def test_editing_roles_yml_changes_privileges_without_a_restart(server: Server, config: Path) -> None:
    _write_roles(config, ROLES.replace("'logs-*'", "'secret-*'"))
    eventually(lambda: _search(server, FILER, "secret-1") == 200)
    assert _search(server, FILER, "logs-1") == 403
    # An operator appending in place, no rename.
    with open(config / "roles.yml", "a", encoding="utf-8") as roles:
        roles.write("    - names: 'logs-*'\n      privileges: [read]\n")
    eventually(lambda: _search(server, FILER, "logs-1") == 200)
    assert _search(server, FILER, "secret-1") == 200
    # The role removed: the user keeps the role's name but it grants nothing.
    _write_roles(config, "# no roles\n")
    eventually(lambda: _search(server, FILER, "logs-1") == 403)


def test_an_invalid_role_is_skipped_and_the_others_work(server: Server, config: Path) -> None:
    path = config / "roles.yml"
    broken = "secret_reader:\n  indices:\n    - names: 'secret-*'\n      privileges: [read_everything]\n"
    _write_roles(config, ROLES.replace("'logs-*'", "['logs-*', 'secret-*']") + broken)
    eventually(lambda: _search(server, FILER, "secret-1") == 200)  # the valid role reloaded
    assert f"invalid role definition [secret_reader] in roles file [{path}]" in server.output()
    # A role that is not YAML is skipped on its own: the one after it is read.
    _write_roles(config, "unclosed: {cluster: [monitor]\n" + ROLES.replace("'logs-*'", "'secret-*'"))
    eventually(lambda: _search(server, FILER, "logs-1") == 403)
    assert f"invalid role definition [unclosed] in roles file [{path}] at line 1: not valid YAML" in server.output()
    assert _search(server, FILER, "secret-1") == 200
    # A file that cannot be read at all (not UTF-8) keeps the roles read before.
    path.write_bytes(b"logs_reader: {cluster: [\xff]}\n")
    eventually(lambda: f"could not read roles file [{path}] (it is not UTF-8 text)" in server.output())
    assert _search(server, FILER, "secret-1") == 200 and _search(server, FILER, "logs-1") == 403


def test_a_server_started_with_a_broken_role_authorizes_the_good_ones(tmp_path_factory: pytest.TempPathFactory) -> None:
    # One badly indented role must not cost every file role at start.
    config = tmp_path_factory.mktemp("broken-config")
    realm_files.write_atomically(config / "users", realm_files.users_text({"filer": hash_password(FILER[1])}))
    realm_files.write_atomically(config / "users_roles", "logs_reader:filer\n")
    broken = "---\n# the first role is badly indented\nwriter:\n  cluster: [monitor]\n   indices: []\n"
    _write_roles(config, broken + ROLES)
    env = {"KEYPLANE_CONFIG_DIR": str(config)}
    with on_store(tmp_path_factory.mktemp("broken-data"), extra_env=env, timeout=START_TIMEOUT) as srv:
        for index in ("logs-1", "secret-1"):
            httpx.put(f"{srv.url}/{index}/_doc/1?refresh=true", auth=ADMIN, json={"n": 1}).raise_for_status()
        with Elasticsearch(srv.url, basic_auth=FILER) as es:
            assert es.search(index="logs-1").body["hits"]["total"]["value"] == 1
            with pytest.raises(AuthorizationException):
                es.search(index="secret-1")
        path = config / "roles.yml"
        assert f"invalid role definition [writer] in roles file [{path}] at line 5: not valid YAML" in srv.output()


def test_get_roles_shows_no_file_role_and_a_file_role_shadows_a_stored_one(server: Server) -> None:
    with Elasticsearch(server.url, basic_auth=ADMIN) as admin:
        with pytest.raises(NotFoundError):
            admin.security.get_role(name="logs_reader")
        assert "logs_reader" not in admin.security.get_role().body
        # A stored role of the same name may be written and is shown, but the file's role is the one in force.
        admin.security.put_role(name="logs_reader", indices=[{"names": ["secret-*"], "privileges": ["read"]}])
        assert admin.security.get_role(name="logs_reader").body["logs_reader"]["indices"][0]["names"] == ["secret-*"]
        assert admin.security.query_role().body["count"] == 1
    assert _search(server, FILER, "logs-1") == 200 and _search(server, FILER, "secret-1") == 403


def test_a_built_in_role_name_in_the_file_changes_nothing(server: Server, config: Path) -> None:
    path = config / "roles.yml"
    _write_roles(config, ROLES + "viewer:\n  cluster: [all]\n  indices: [{names: '*', privileges: [all]}]\n")
    eventually(lambda: f"role [viewer] in roles file [{path}] is reserved" in server.output())
    with Elasticsearch(server.url, basic_auth=ADMIN) as admin:
        admin.security.put_user(username="watcher", password="watcher-secret", roles=["viewer"])
    assert httpx.delete(f"{server.url}/secret-1", auth=("watcher", "watcher-secret")).status_code == 403
