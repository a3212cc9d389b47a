from keyplane.config import Settings, problems


def test_valid_defaults() -> None:
    assert problems(Settings()) == []
    assert problems(Settings(database_url="postgresql://u@h/db")) == []


def test_bad_settings_are_reported() -> None:
    bad = Settings(
        api_key_hash="md5", api_key_retention="soon", api_key_last_used_granularity="0", database_url="mysql://x"
    )
    found = problems(bad)
    assert len(found) == 4
    assert any("KEYPLANE_API_KEY_HASH" in p for p in found)
    assert any("KEYPLANE_API_KEY_RETENTION" in p for p in found)


def test_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("KEYPLANE_PORT", "9999")
    monkeypatch.setenv("KEYPLANE_TEST_MODE", "1")
    monkeypatch.setenv("ELASTIC_PASSWORD", "pw")
    settings = Settings.from_env()
    assert settings.port == 9999 and settings.test_mode and settings.elastic_password == "pw"
