"""The settings file keyplane.yml: one precedence order, Elasticsearch's key forms, clear refusals."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from keyplane import cli
from keyplane.config import SETTINGS, Settings, SettingsError

SECRET = "file-secret-4b1d"


def write(config_dir: Path, text: str) -> Path:
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / "keyplane.yml"
    path.write_text(text)
    return path


def problems(config_dir: Path, environ: dict[str, str] | None = None) -> list[str]:
    try:
        Settings.from_env({"KEYPLANE_CONFIG_DIR": str(config_dir), **(environ or {})})
    except SettingsError as exc:
        return exc.problems
    raise AssertionError("the settings were accepted")


def test_flag_beats_environment_beats_file_beats_default(tmp_path: Path) -> None:
    write(tmp_path, "http.port: 9301\nhttp.host: 10.0.0.1\nnode.name: from-file\n")
    environ = {"KEYPLANE_CONFIG_DIR": str(tmp_path), "KEYPLANE_PORT": "9302", "KEYPLANE_HOST": "10.0.0.2"}
    resolved = Settings.resolve(environ, {"port": "9303"})
    settings = resolved.settings
    assert (settings.port, settings.host, settings.node_name, settings.cluster_name) == (
        9303,
        "10.0.0.2",
        "from-file",
        "keyplane",
    )
    assert resolved.sources["port"] == "--port" and resolved.sources["host"] == "KEYPLANE_HOST"
    assert resolved.sources["node_name"] == str(tmp_path / "keyplane.yml")
    assert "cluster_name" not in resolved.sources  # the default
    # An empty variable counts as not given, so the file's value applies.
    assert Settings.from_env({"KEYPLANE_CONFIG_DIR": str(tmp_path), "KEYPLANE_PORT": ""}).port == 9301


def test_nested_maps_and_dotted_keys_name_the_same_settings(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
http:
  port: 9310
xpack.security:
  authc.api_key:
    hashing.algorithm: pbkdf2
    delete:
      retention_period: 2h
  audit.logfile.events.include: [authentication_failed, access_denied]
logger.level: DEBUG
""",
    )
    settings = Settings.from_env({"KEYPLANE_CONFIG_DIR": str(tmp_path)})
    assert settings.port == 9310 and settings.api_key_hash == "pbkdf2"
    assert settings.api_key_retention_ms == 7_200_000 and settings.log_level == "debug"
    assert settings.audit_include == ("authentication_failed", "access_denied")
    # Elasticsearch's log4j name for the warning level is taken too.
    write(tmp_path, "logger.level: WARN\n")
    assert Settings.from_env({"KEYPLANE_CONFIG_DIR": str(tmp_path)}).log_level == "warning"


def test_yaml_numbers_and_booleans_become_the_text_the_flags_take(tmp_path: Path) -> None:
    write(
        tmp_path,
        "keyplane.test_mode: yes\naction.destructive_requires_name: False\ncluster.name: 1.50\n"
        "keyplane.audit.buffer: 500\nnode.name: 2026-11-30\nkeyplane.upstream.url:\n",
    )
    settings = Settings.from_env({"KEYPLANE_CONFIG_DIR": str(tmp_path)})
    assert settings.test_mode is True and settings.destructive_requires_name is False
    assert settings.cluster_name == "1.50" and settings.node_name == "2026-11-30"  # as written
    assert settings.audit_buffer == 500
    assert settings.upstream_url is None  # a null value is not given


def test_a_missing_dir_or_file_gives_the_defaults(tmp_path: Path) -> None:
    assert Settings.from_env({"KEYPLANE_CONFIG_DIR": str(tmp_path / "none")}).config_dir == tmp_path / "none"
    assert Settings.from_env({}, {"config_dir": str(tmp_path)}) == replace(Settings(), config_dir=tmp_path)
    write(tmp_path, "# nothing yet\n")
    assert Settings.from_env({"KEYPLANE_CONFIG_DIR": str(tmp_path)}) == replace(Settings(), config_dir=tmp_path)


def test_the_config_dir_comes_from_its_flag_before_its_variable(tmp_path: Path) -> None:
    write(tmp_path / "a", "node.name: a\n")
    write(tmp_path / "b", "node.name: b\n")
    environ = {"KEYPLANE_CONFIG_DIR": str(tmp_path / "a")}
    assert Settings.from_env(environ).node_name == "a"
    assert Settings.from_env(environ, {"config_dir": str(tmp_path / "b")}).node_name == "b"


def test_unknown_keys_are_refused_with_the_nearest_name(tmp_path: Path) -> None:
    path = write(tmp_path, "htp.port: 9200\nport: 1\nKEYPLANE_NODE_NAME: n\nzzz: 1\npath.conf: /etc\n")
    assert problems(tmp_path) == [
        f"unknown setting [htp.port] in {path}; did you mean [http.port]?",
        f"unknown setting [port] in {path}; did you mean [http.port]?",
        f"unknown setting [KEYPLANE_NODE_NAME] in {path}; did you mean [node.name]?",
        f"unknown setting [zzz] in {path}",
        f"unknown setting [path.conf] in {path}; the config dir cannot be set in the file it holds: "
        "use --config-dir or KEYPLANE_CONFIG_DIR",
    ]


def test_bad_values_name_the_file_and_key_and_never_echo_a_secret(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"http.port: nine\nkeyplane.database.url: mysql://ann:{SECRET}@db/x\nbootstrap.password: [{SECRET}]\n"
        f"xpack.security.http.ssl.certificate: /nowhere/{SECRET}.pem\n",
    )
    found = problems(tmp_path)
    assert found == [
        f"[bootstrap.password] in {path} must be a single value, not a list",
        f"[http.port] in {path} must be a port number (0 to 65535), not [nine]",
        f"[keyplane.database.url] in {path} must be a postgresql:// (or sqlite:///) URL, "
        "not [mysql://ann:<hidden>@db/x]",
        f"[xpack.security.http.ssl.certificate] in {path} must be the path of a readable PEM file, "
        f"not [/nowhere/{SECRET}.pem]",
    ]
    # The secret settings are never echoed, whatever is wrong with them.
    write(tmp_path, f"keyplane.upstream.password: {SECRET}\n")
    assert problems(tmp_path) == [
        "KEYPLANE_UPSTREAM_API_KEY, _USERNAME and _PASSWORD need KEYPLANE_UPSTREAM_URL",
        "KEYPLANE_UPSTREAM_USERNAME and KEYPLANE_UPSTREAM_PASSWORD go together",
    ]


def test_yaml_errors_give_the_line_and_not_the_text(tmp_path: Path) -> None:
    path = write(tmp_path, f'http.port: 9200\nbootstrap.password: "{SECRET}\n')
    [message] = problems(tmp_path)
    assert message.startswith(f"{path} is not valid YAML: while scanning a quoted scalar (line 2, column 21)")
    assert SECRET not in message
    write(tmp_path, f"bootstrap.password: {SECRET}\n  node.name: x: y\n")
    [message] = problems(tmp_path)
    assert "(line 2, column " in message and SECRET not in message
    write(tmp_path, "http.port: 1\nhttp:\n  port: 2\n")
    assert problems(tmp_path) == [f"{path} line 3: duplicate setting [http.port]"]
    write(tmp_path, "- http.port\n")
    assert problems(tmp_path) == [f"{path} must be a map of settings (line 1)"]
    write(tmp_path, "node.name: !!python/name:os.getcwd ''\n")
    [message] = problems(tmp_path)
    assert "could not determine a constructor" in message and "(line 1, column 12)" in message
    write(tmp_path, "http.port: {a: [1, {b: 2}]}\n")
    assert problems(tmp_path) == [f"[http.port.a] in {path} (line 1) must be a value or a list of values"]


def test_an_unreadable_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "keyplane.yml").mkdir()
    assert problems(tmp_path) == [f"cannot read {tmp_path / 'keyplane.yml'}: Is a directory"]
    (tmp_path / "keyplane.yml").rmdir()
    (tmp_path / "keyplane.yml").write_bytes(b"node.name: \xff\n")
    assert problems(tmp_path) == [f"cannot read {tmp_path / 'keyplane.yml'}: not UTF-8 text"]


def test_every_setting_but_the_config_dir_has_a_file_key() -> None:
    assert [d.name for d in SETTINGS if not d.key] == ["config_dir"]
    # Elasticsearch's names where Elasticsearch has the setting.
    keys = {d.name: d.key for d in SETTINGS}
    assert keys["port"] == "http.port" and keys["data_dir"] == "path.data"
    assert keys["tls_certificate"] == "xpack.security.http.ssl.certificate"
    assert keys["destructive_requires_name"] == "action.destructive_requires_name"


def test_every_setting_given_in_the_file_is_read(tmp_path: Path) -> None:
    """A file giving every setting its default text yields the defaults (each key reaches its setting)."""
    lines = [f"{d.key}: '{d.default}'" for d in SETTINGS if d.key and d.default is not None]
    write(tmp_path, "\n".join(lines) + "\n")
    resolved = Settings.resolve({"KEYPLANE_CONFIG_DIR": str(tmp_path)})
    assert resolved.settings == replace(Settings(), config_dir=tmp_path)
    given = {d.name for d in SETTINGS if d.key and d.default is not None}
    assert set(resolved.sources) == given | {"config_dir"}
    assert {resolved.sources[name] for name in given} == {str(tmp_path / "keyplane.yml")}


def test_check_settings_summarises_without_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(
        tmp_path,
        f"bootstrap.password: {SECRET}\nhttp.port: 9311\nkeyplane.database.url: postgresql://u:{SECRET}@h/db\n",
    )
    status = cli.main(["check-settings", "--config-dir", str(tmp_path), "--log-level", "warning"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert out.startswith(f"settings OK ({tmp_path / 'keyplane.yml'} read)\n")
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "<set>" in lines["bootstrap.password"] and str(tmp_path) in lines["bootstrap.password"]
    assert " 9311 " in lines["http.port"]
    assert "postgresql://u:<hidden>@h/db" in lines["keyplane.database.url"]
    assert "warning  (--log-level)" in lines["logger.level"]
    assert "127.0.0.1  (default)" in lines["http.host"]
    assert SECRET not in out
    assert len(lines) == len(SETTINGS)


def test_check_settings_lists_every_problem_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, f"htp.port: 1\nbootstrap.password: [{SECRET}]\n")
    monkeypatch.setenv("KEYPLANE_LOG_FORMAT", "xml")
    status = cli.main(["check-settings", "--config-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert status == 1 and captured.out == ""
    path = tmp_path / "keyplane.yml"
    assert captured.err.splitlines() == [
        f"unknown setting [htp.port] in {path}; did you mean [http.port]?",
        f"[bootstrap.password] in {path} must be a single value, not a list",
        "KEYPLANE_LOG_FORMAT must be text or json, not [xml]",
    ]


def test_serve_refuses_a_bad_file_with_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "htp.port: 1\nlogger.level: verbose\n")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["serve", "--config-dir", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "unknown setting [htp.port]" in err
    assert "[logger.level] in " in err and "must be one of debug, info, warning, error, not [verbose]" in err


def test_help_tells_the_precedence_and_the_file_keys(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["serve", "--help"], ["check-settings", "--help"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
        out = " ".join(capsys.readouterr().out.split())
        assert (
            "A setting given as a flag wins over its environment variable, which wins over its key in keyplane.yml"
            in out
        )
        assert "--log-level LOG_LEVEL" in out and "keyplane.yml: logger.level; default: info" in out
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "check-settings" in out and "keyplane.yml" in out
