"""keyplane.yml and the log settings on a real server: what the file says applies, JSON logs, no secrets.

Each test starts its own server with its own config dir.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.e2e.server import Server, on_store

FILE_PASSWORD = "from-the-file-8d21"
# bcrypt, PBKDF2 and salted SHA-256 hashes as Keyplane stores them.
HASHES = re.compile(r"\$2[aby]\$\d\d\$|\{PBKDF2(_STRETCH)?\}|\{SSHA256\}")


def config_dir(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config"
    path.mkdir()
    (path / "keyplane.yml").write_text(text)
    return path


def json_lines(output: str, *, own_only: bool = False) -> list[dict[str, Any]]:
    """The server's output lines as JSON (failing on a line that is not), or only its JSON lines."""
    lines = [line for line in output.splitlines() if line.strip()]
    return [orjson.loads(line) for line in lines if line.startswith("{") or not own_only]


def assert_ecs(lines: list[dict[str, Any]], node_name: str) -> None:
    for line in lines:
        assert {"@timestamp", "log.level", "log.logger", "message", "ecs.version", "service.name"} <= set(line)
        assert line["service.node.name"] == node_name


def test_the_file_configures_the_server_below_the_environment(tmp_path: Path) -> None:
    conf = config_dir(
        tmp_path,
        f"""
cluster:
  name: file-cluster
node.name: file-node
bootstrap.password: {FILE_PASSWORD}
keyplane:
  log.format: json
""",
    )
    env = {"KEYPLANE_CONFIG_DIR": str(conf), "KEYPLANE_NODE_NAME": "env-node"}
    with on_store(tmp_path, password=None, extra_env=env) as srv:
        root = httpx.get(srv.url + "/", auth=("elastic", FILE_PASSWORD)).json()
        assert (root["cluster_name"], root["name"]) == ("file-cluster", "env-node")
        output = srv.output()
    assert FILE_PASSWORD not in output
    assert "superuser:" not in output  # the file's password was used, none generated
    lines = json_lines(output, own_only=True)
    assert any(line["log.logger"].startswith("keyplane") for line in lines), output
    assert_ecs(lines, "env-node")


def test_uvicorn_start_up_lines_are_json_too(tmp_path: Path) -> None:
    conf = config_dir(tmp_path, "keyplane.log.format: json\n")
    with on_store(tmp_path, extra_env={"KEYPLANE_CONFIG_DIR": str(conf)}) as srv:
        time.sleep(0.2)
        output = srv.output()
    lines = json_lines(output)
    assert any(line["message"].startswith("Uvicorn running on") for line in lines), output
    assert_ecs(lines, "keyplane")


def test_a_bad_file_stops_the_start_with_every_problem(tmp_path: Path) -> None:
    conf = config_dir(tmp_path, f"htp.port: 9200\nlogger.level: loud\nkeyplane.upstream.password: {FILE_PASSWORD}\n")
    srv = Server(tmp_path, extra_env={"KEYPLANE_CONFIG_DIR": str(conf)})
    with pytest.raises(RuntimeError) as failed:
        srv.start()
    srv.stop()
    message = str(failed.value)
    path = conf / "keyplane.yml"
    assert f"unknown setting [htp.port] in {path}; did you mean [http.port]?" in message
    assert f"[logger.level] in {path} must be one of debug, info, warning, error, not [loud]" in message
    assert FILE_PASSWORD not in message
    assert srv.proc is not None and srv.proc.returncode == 2


def test_check_settings_reads_the_same_file(tmp_path: Path) -> None:
    conf = config_dir(tmp_path, f"http:\n  port: 9555\nbootstrap.password: {FILE_PASSWORD}\n")
    env = {"PATH": "/usr/bin:/bin", "KEYPLANE_CONFIG_DIR": str(conf), "KEYPLANE_HOST": "0.0.0.0"}
    done = subprocess.run(
        [sys.executable, "-m", "keyplane.cli", "check-settings"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:]}
    assert rows["http.port"][1:] == ["9555", f"({conf / 'keyplane.yml'})"]
    assert rows["http.host"][1:] == ["0.0.0.0", "(KEYPLANE_HOST)"]
    assert rows["bootstrap.password"][1] == "<set>"
    assert FILE_PASSWORD not in done.stdout


SECRETS = {
    "ann": "ann-password-51f0",
    "new": "ann-new-password-0d7c",
    "wrong": "wrong-password-a9e3",
    "param": "param-secret-e11b",
    "connector": "connector-secret-77aa",
}


def test_debug_json_logs_carry_no_secret(tmp_path: Path) -> None:
    """Requests carrying passwords, API keys, tokens and secrets at debug level: none reach the log."""
    conf = config_dir(tmp_path, "keyplane.log.format: json\nlogger.level: debug\n")
    with on_store(tmp_path, extra_env={"KEYPLANE_CONFIG_DIR": str(conf)}) as srv:
        seen = drive_requests_with_secrets(srv)
        time.sleep(0.3)
        output = srv.output()
    # Keyplane's own lines (uvicorn's are checked by the first test).
    lines = [orjson.loads(line) for line in output.splitlines() if line.startswith("{")]
    for secret in [*SECRETS.values(), *seen]:
        assert secret not in output, secret
    assert not HASHES.search(output), HASHES.search(output)
    # Debug level is on, and request lines carry the request's ids.
    debug = [line for line in lines if line["log.level"] == "debug" and "http.request.id" in line]
    assert debug, output
    assert any(line.get("keyplane.http.request.x_opaque_id") == "leak-test" for line in debug), output


def drive_requests_with_secrets(srv: Server) -> list[str]:
    """The secrets the server handed out (API keys, tokens) after requests that carried ours."""
    elastic = ("elastic", "e2e-password")
    ann = ("ann", SECRETS["ann"])
    seen: list[str] = []
    headers = {"X-Opaque-Id": "leak-test"}
    with httpx.Client(base_url=srv.url, timeout=30, headers=headers) as http:
        put = http.put("/_security/user/ann", auth=elastic, json={"password": SECRETS["ann"], "roles": ["superuser"]})
        assert put.status_code == 200, put.text
        assert http.get("/_security/_authenticate", auth=ann).status_code == 200
        assert http.get("/_security/_authenticate", auth=("ann", SECRETS["wrong"])).status_code == 401
        key = http.post("/_security/api_key", auth=ann, json={"name": "k1"}).json()
        seen += [key["api_key"], key["encoded"]]
        authed = http.get("/_security/_authenticate", headers={"Authorization": f"ApiKey {key['encoded']}"})
        assert authed.status_code == 200
        bad_key = base64.b64encode(f"{key['id']}:{SECRETS['wrong']}".encode()).decode()
        assert http.get("/_security/_authenticate", headers={"Authorization": f"ApiKey {bad_key}"}).status_code == 401
        grant = {"grant_type": "password", "username": "ann", "password": SECRETS["ann"], "api_key": {"name": "g"}}
        granted = http.post("/_security/api_key/grant", auth=elastic, json=grant).json()
        seen += [granted["api_key"], granted["encoded"]]
        token = http.post(
            "/_security/oauth2/token",
            auth=elastic,
            json={"grant_type": "password", "username": "ann", "password": SECRETS["ann"]},
        ).json()
        seen += [token["access_token"], token["refresh_token"]]
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        assert http.get("/_security/_authenticate", headers=bearer).status_code == 200
        service = http.post("/_security/service/elastic/fleet-server/credential/token/t1", auth=elastic).json()
        seen.append(service["token"]["value"])
        bearer = {"Authorization": f"Bearer {service['token']['value']}"}
        assert http.get("/_security/_authenticate", headers=bearer).status_code == 200
        changed = http.post("/_security/user/ann/_password", auth=ann, json={"password": SECRETS["new"]})
        assert changed.status_code == 200
        secret = http.post("/_connector/_secret", auth=elastic, json={"value": SECRETS["connector"]})
        assert secret.status_code == 200, secret.text
        refused = http.get(f"/_security/_authenticate?unknown_param={SECRETS['param']}", auth=elastic)
        assert refused.status_code == 400
    return seen
