"""Settings: one declaration each, read from flags and the environment, shown in --help and the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyplane import cli
from keyplane.config import SETTINGS, Settings, SettingsError

README = Path(__file__).parents[2] / "README.md"


@pytest.fixture(autouse=True)
def _no_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default config dir (./config) is empty here, whatever the checkout holds."""
    monkeypatch.chdir(tmp_path)


def problems(environ: dict[str, str], flags: dict[str, str | None] | None = None) -> list[str]:
    try:
        Settings.from_env(environ, flags)
    except SettingsError as exc:
        return exc.problems
    return []


def test_defaults_are_the_declared_texts_parsed() -> None:
    assert Settings.from_env({}) == Settings()
    settings = Settings()
    assert (settings.host, settings.port, settings.data_dir) == ("127.0.0.1", 9200, Path("data"))
    assert settings.database_url is None and settings.elastic_password is None and settings.secrets_key is None
    assert (settings.node_name, settings.cluster_name, settings.api_key_hash) == ("keyplane", "keyplane", "ssha256")
    assert settings.api_key_retention_ms == 7 * 86_400_000
    assert settings.api_key_last_used_granularity_ms == 3_600_000
    assert settings.sqlite_synchronous == "full" and settings.test_mode is False


def test_environment() -> None:
    settings = Settings.from_env(
        {
            "KEYPLANE_PORT": "9999",
            "KEYPLANE_TEST_MODE": "1",
            "ELASTIC_PASSWORD": "pw",
            "KEYPLANE_DATA_DIR": "/tmp/kp",
            "KEYPLANE_DATABASE_URL": "postgresql://u@h/db",
            "KEYPLANE_API_KEY_RETENTION": "2h",
            "KEYPLANE_API_KEY_LAST_USED_GRANULARITY": "500ms",
            "KEYPLANE_SQLITE_SYNCHRONOUS": "NORMAL",
            "KEYPLANE_API_KEY_HASH": "pbkdf2",
            "KEYPLANE_NODE_NAME": "n1",
        }
    )
    assert settings.port == 9999 and settings.test_mode and settings.elastic_password == "pw"
    assert settings.data_dir == Path("/tmp/kp") and settings.database_url == "postgresql://u@h/db"
    assert settings.api_key_retention_ms == 7_200_000 and settings.api_key_last_used_granularity_ms == 500
    assert settings.sqlite_synchronous == "normal" and settings.api_key_hash == "pbkdf2"
    assert settings.node_name == "n1"


def test_the_process_environment_is_the_default_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYPLANE_PORT", "9999")
    monkeypatch.setenv("KEYPLANE_TEST_MODE", "1")
    monkeypatch.setenv("ELASTIC_PASSWORD", "pw")
    settings = Settings.from_env()
    assert settings.port == 9999 and settings.test_mode and settings.elastic_password == "pw"


def test_a_flag_wins_over_its_variable_and_empty_means_not_given() -> None:
    environ = {"KEYPLANE_HOST": "0.0.0.0", "KEYPLANE_PORT": "9300", "KEYPLANE_DATABASE_URL": ""}
    settings = Settings.from_env(environ, {"port": "9400", "host": None})
    assert (settings.host, settings.port, settings.database_url) == ("0.0.0.0", 9400, None)
    assert Settings.from_env({"KEYPLANE_TEST_MODE": "on"}).test_mode is False


def test_bad_settings_are_reported_with_their_source() -> None:
    found = problems(
        {
            "KEYPLANE_API_KEY_HASH": "md5",
            "KEYPLANE_API_KEY_RETENTION": "soon",
            "KEYPLANE_API_KEY_LAST_USED_GRANULARITY": "0",
            "KEYPLANE_SQLITE_SYNCHRONOUS": "off",
            "KEYPLANE_PORT": "http",
        },
        {"database_url": "mysql://x"},
    )
    assert found == [
        "KEYPLANE_PORT must be a port number (0 to 65535), not [http]",
        "--database-url must be a postgresql:// (or sqlite:///) URL, not [mysql://x]",
        "KEYPLANE_API_KEY_HASH must be one of ssha256, pbkdf2, not [md5]",
        "KEYPLANE_API_KEY_RETENTION must be a duration such as 7d or 1h, not [soon]",
        "KEYPLANE_API_KEY_LAST_USED_GRANULARITY must be a positive duration such as 7d or 1h, not [0]",
        "KEYPLANE_SQLITE_SYNCHRONOUS must be full or normal, not [off]",
    ]
    assert problems({}, {"port": "70000"}) == ["--port must be a port number (0 to 65535), not [70000]"]
    # A duration that rounds to no milliseconds is not positive.
    assert problems({"KEYPLANE_API_KEY_RETENTION": "5nanos"}) == [
        "KEYPLANE_API_KEY_RETENTION must be a positive duration such as 7d or 1h, not [5nanos]"
    ]


def test_every_setting_is_declared_once() -> None:
    for attribute in ("env", "flag", "name", "key"):
        values = [getattr(declared, attribute) for declared in SETTINGS if getattr(declared, attribute)]
        assert len(values) == len(set(values)), attribute
    assert [declared.name for declared in SETTINGS] == list(Settings.__dataclass_fields__)
    secrets = {"ELASTIC_PASSWORD", "KEYPLANE_SECRETS_KEY", "KEYPLANE_UPSTREAM_API_KEY", "KEYPLANE_UPSTREAM_PASSWORD"}
    secrets.add("KEYPLANE_TLS_KEY_PASSWORD")
    assert {declared.env for declared in SETTINGS if declared.secret} == secrets


def test_the_readme_table_is_the_generated_one() -> None:
    text = README.read_text()
    section = text[text.index("\n## Settings\n") :]
    start = section.index("| flag |")
    table = section[start : section.index("\n\n", start) + 1]
    assert table == cli.markdown_table(), "run `keyplane settings` and paste its table into the README"


def test_serve_help_lists_every_variable_and_never_a_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ELASTIC_PASSWORD", "hunter2-password")
    monkeypatch.setenv("KEYPLANE_SECRETS_KEY", "hunter2-key")
    monkeypatch.setenv("KEYPLANE_PORT", "not-a-port")  # help still works
    with pytest.raises(SystemExit) as exit_:
        cli.main(["serve", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out
    for declared in SETTINGS:
        assert declared.env in out
        key = f"keyplane.yml: {declared.key}; " if declared.key else ""
        assert f"({key}default: {declared.shown_default.replace('`', '')})" in " ".join(out.split())
        if declared.flag:
            assert declared.flag in out


def test_serve_refuses_bad_settings_with_the_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KEYPLANE_SQLITE_SYNCHRONOUS", "off")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["serve"])
    assert exit_.value.code == 2
    assert "KEYPLANE_SQLITE_SYNCHRONOUS must be full or normal, not [off]" in capsys.readouterr().err


def test_the_reported_version_is_checked() -> None:
    assert Settings().es_version == "9.5.0"
    assert Settings.from_env({"KEYPLANE_ES_VERSION": "9.6.1"}).es_version == "9.6.1"
    with pytest.raises(SettingsError) as bad:
        Settings.from_env({"KEYPLANE_ES_VERSION": "9.x"})
    assert bad.value.problems == ["KEYPLANE_ES_VERSION must be a version such as 9.5.0, not [9.x]"]
