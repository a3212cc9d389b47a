"""``keyplane users``, ``keyplane service-tokens`` and ``keyplane reset-password``, against files and a running server.

The file commands run in this process (``keyplane.cli.main``) where only their files matter; the
commands a running server must notice run as processes of their own, as an operator runs them.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from elasticsearch import Elasticsearch

from keyplane import cli
from keyplane.security.passwords import verify_password
from keyplane.service_accounts import file_tokens
from tests.e2e.admin import START_TIMEOUT, eventually, keyplane, store_flags
from tests.e2e.server import PASSWORD, Server, on_store


@pytest.fixture(autouse=True)
def _umask() -> Iterator[None]:
    # cli.main sets an owner-only umask for what the commands create; give this process its own back.
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


@pytest.fixture(autouse=True)
def _no_elastic_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ELASTIC_PASSWORD", raising=False)


def _main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        status = cli.main(list(argv))
    except SystemExit as exc:  # argparse: --help and usage errors
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["users", "--help"], "users_roles files of the config"),
        (["users", "useradd", "--help"], "--roles"),
        (["users", "roles", "--help"], "--remove"),
        (["service-tokens", "--help"], "file_tokens"),
        (["service-tokens", "create", "--help"], "print it once"),
        (["reset-password", "--help"], "ELASTIC_PASSWORD"),
    ],
)
def test_each_command_explains_itself(capsys: pytest.CaptureFixture[str], argv: list[str], expected: str) -> None:
    status, out, _ = _main(capsys, *argv)
    assert status == 0 and expected in " ".join(out.split())


def test_users_command_edits_the_files_like_elasticsearch_users(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = ["--config-dir", str(tmp_path / "config")]
    status, out, err = _main(capsys, "users", "useradd", "ops", "-p", "ops-secret-1", "-r", "viewer,editor", *config)
    assert (status, out, err) == (0, "", "")
    users, roles = tmp_path / "config" / "users", tmp_path / "config" / "users_roles"
    name, _, hashed = users.read_text().strip().partition(":")
    assert name == "ops" and hashed.startswith("$2a$10$") and verify_password("ops-secret-1", hashed)
    assert roles.read_text() == "editor:ops\nviewer:ops\n"
    assert stat.S_IMODE(users.stat().st_mode) == stat.S_IMODE(roles.stat().st_mode) == 0o600

    assert _main(capsys, "users", "useradd", "ops", "-p", "ops-secret-1", *config)[:1] == (70,)
    assert _main(capsys, "users", "useradd", "elastic", "-p", "ops-secret-1", *config)[0] == 65  # reserved
    assert _main(capsys, "users", "useradd", "dev", "-p", "short", *config)[0] == 65
    assert _main(capsys, "users", "passwd", "nobody", "-p", "long-enough", *config)[0] == 67

    assert _main(capsys, "users", "useradd", "dev", "-p", "dev-secret-1", *config)[0] == 0
    assert _main(capsys, "users", "roles", "ops", "-a", "monitor_role", "-r", "viewer", *config)[0] == 0
    status, out, _ = _main(capsys, "users", "list", *config)
    assert status == 0 and out.splitlines() == ["dev            : -", "ops            : editor,monitor_role"]
    assert _main(capsys, "users", "roles", "ops", *config)[1] == "ops            : editor,monitor_role\n"

    assert _main(capsys, "users", "passwd", "dev", "-p", "dev-secret-2", *config)[0] == 0
    assert verify_password("dev-secret-2", users.read_text().splitlines()[0].partition(":")[2])
    assert _main(capsys, "users", "userdel", "ops", *config)[0] == 0
    assert users.read_text().startswith("dev:") and "ops" not in users.read_text() + roles.read_text()
    assert _main(capsys, "users", "userdel", "ops", *config)[0] == 67
    everything = capsys.readouterr()
    assert "secret" not in everything.out + everything.err  # no password is ever printed


def test_a_password_typed_twice_must_match(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = ["--config-dir", str(tmp_path)]
    typed = iter(["typed-secret", "other-secret", "typed-secret", "typed-secret"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(typed))
    status, _, err = _main(capsys, "users", "useradd", "ann", *config)
    assert status == 65 and "Password mismatch" in err and not (tmp_path / "users").exists()
    assert _main(capsys, "users", "useradd", "ann", *config)[0] == 0
    assert verify_password("typed-secret", (tmp_path / "users").read_text().strip().partition(":")[2])


def test_service_tokens_command_prints_the_token_once_and_keeps_its_hash(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = ["--config-dir", str(tmp_path)]
    status, out, _ = _main(capsys, "service-tokens", "create", "elastic/fleet-server", "my-token", *config)
    assert status == 0
    label, value = out.strip().removeprefix("SERVICE_TOKEN ").split(" = ")
    assert label == "elastic/fleet-server/my-token"
    decoded = base64.b64decode(value + "=" * (-len(value) % 4))
    assert decoded.startswith(b"\x00\x01\x00\x01elastic/fleet-server/my-token:")
    secret = decoded.partition(b":")[2].decode()
    stored = (tmp_path / "service_tokens").read_text()
    assert secret not in stored and stored.startswith("elastic/fleet-server/my-token:{PBKDF2_STRETCH}10000$")
    assert verify_password(secret, file_tokens.read(tmp_path / "service_tokens")[0][label])

    assert _main(capsys, "service-tokens", "create", "elastic/fleet-server", "my-token", *config)[0] == 70
    assert _main(capsys, "service-tokens", "create", "elastic/nothing", "t", *config)[0] == 67
    assert _main(capsys, "service-tokens", "create", "elastic/kibana", "bad name", *config)[0] == 65
    assert _main(capsys, "service-tokens", "create", "elastic/kibana", "k1", *config)[0] == 0
    assert _main(capsys, "service-tokens", "list", *config)[1].split() == [
        "elastic/fleet-server/my-token",
        "elastic/kibana/k1",
    ]
    assert _main(capsys, "service-tokens", "list", "elastic/kibana", *config)[1] == "elastic/kibana/k1\n"
    assert _main(capsys, "service-tokens", "delete", "elastic/kibana", "k1", *config)[0] == 0
    assert _main(capsys, "service-tokens", "delete", "elastic/kibana", "k1", *config)[0] == 67
    assert _main(capsys, "service-tokens", "list", *config)[1] == "elastic/fleet-server/my-token\n"


# -- against a running server -------------------------------------------------------------------


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("config")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, config: Path) -> Iterator[Server]:
    with on_store(
        tmp_path_factory.mktemp("data"), extra_env={"KEYPLANE_CONFIG_DIR": str(config)}, timeout=START_TIMEOUT
    ) as srv:
        yield srv


def _status(server: Server, auth: tuple[str, str]) -> int:
    return httpx.get(server.url + "/_security/_authenticate", auth=auth).status_code


def test_file_users_and_tokens_made_by_the_commands_work_on_a_running_server(server: Server, config: Path) -> None:
    made = keyplane("users", "useradd", "ops", "-p", "ops-secret-1", "-r", "superuser", "--config-dir", str(config))
    assert made.returncode == 0, made.stderr
    eventually(lambda: _status(server, ("ops", "ops-secret-1")) == 200)
    with Elasticsearch(server.url, basic_auth=("ops", "ops-secret-1")) as es:
        assert es.security.authenticate()["authentication_realm"]["name"] == "default_file"

    created = keyplane("service-tokens", "create", "elastic/fleet-server", "cmd-token", "--config-dir", str(config))
    assert created.returncode == 0, created.stderr
    value = created.stdout.strip().split(" = ")[1]
    with Elasticsearch(server.url, bearer_auth=value) as es:
        eventually(lambda: _bearer_ok(server, value))
        assert es.security.authenticate()["token"]["type"] == "_service_account_file"

    assert keyplane("users", "userdel", "ops", "--config-dir", str(config)).returncode == 0
    eventually(lambda: _status(server, ("ops", "ops-secret-1")) == 401)


def _bearer_ok(server: Server, value: str) -> bool:
    answer = httpx.get(server.url + "/_security/_authenticate", headers={"Authorization": f"Bearer {value}"})
    return answer.status_code == 200


def test_reset_password_on_a_running_server_takes_over_at_once(server: Server) -> None:
    admin = ("elastic", PASSWORD)
    put = httpx.put(server.url + "/_security/user/ann", auth=admin, json={"password": "ann-old-pw", "roles": []})
    assert put.status_code == 200
    assert _status(server, ("ann", "ann-old-pw")) == 200  # now in the server's credential cache

    reset = keyplane("reset-password", "-u", "ann", "-b", *store_flags(server))
    assert reset.returncode == 0, reset.stderr
    lines = reset.stdout.splitlines()
    assert lines[0] == "Password for the [ann] user successfully reset."
    new_password = lines[1].removeprefix("New value: ")
    assert len(new_password) == 20 and reset.stdout.count(new_password) == 1
    seconds = eventually(lambda: _status(server, ("ann", "ann-old-pw")) == 401, wait=3.0)
    assert _status(server, ("ann", new_password)) == 200
    print(f"old password refused {seconds:.2f} s after the command returned")

    silent = keyplane("reset-password", "-u", "ann", "--silent", *store_flags(server))
    assert silent.returncode == 0 and len(silent.stdout.strip()) == 20 and "\n" not in silent.stdout.strip()
    eventually(lambda: _status(server, ("ann", silent.stdout.strip())) == 200, wait=3.0)

    missing = keyplane("reset-password", "-u", "nobody", "-b", *store_flags(server))
    assert missing.returncode == 67 and "does not exist" in missing.stderr


def test_reset_password_of_elastic_typed_twice(
    server: Server, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    typed = iter(["elastic-new-pw", "elastic-new-pw", PASSWORD, PASSWORD])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(typed))
    status, out, _ = _main(capsys, "reset-password", "-i", *store_flags(server))
    assert status == 0 and out == "Password for the [elastic] user successfully reset.\n"  # nothing else printed
    eventually(lambda: _status(server, ("elastic", PASSWORD)) == 401, wait=3.0)
    assert _status(server, ("elastic", "elastic-new-pw")) == 200
    # Back to the password the server was started with.
    assert _main(capsys, "reset-password", "--interactive", *store_flags(server))[0] == 0
    eventually(lambda: _status(server, ("elastic", PASSWORD)) == 200, wait=3.0)


def test_elastic_password_sets_elastic_again_at_the_next_start(tmp_path: Path) -> None:
    # The documented interaction: reset-password wins until a server starts with ELASTIC_PASSWORD again.
    with on_store(tmp_path, timeout=START_TIMEOUT) as srv:
        reset = keyplane("reset-password", "-b", *store_flags(srv))
        assert reset.returncode == 0, reset.stderr
        new_password = reset.stdout.splitlines()[1].removeprefix("New value: ")
        eventually(lambda: _status(srv, ("elastic", new_password)) == 200, wait=3.0)
        assert _status(srv, ("elastic", PASSWORD)) == 401
        srv.stop()
        srv.start(timeout=START_TIMEOUT)  # started with ELASTIC_PASSWORD=PASSWORD, as before
        assert _status(srv, ("elastic", PASSWORD)) == 200
        assert _status(srv, ("elastic", new_password)) == 401
