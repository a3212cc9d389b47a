"""Connector secret values sealed at rest: bound to their id and named by their key's fingerprint."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from keyplane.connectors.secrets import SecretBox
from keyplane.errors import Misconfigured


def test_sealed_values_open_with_their_key_and_id_only(tmp_path: Path) -> None:
    box = SecretBox.load(None, tmp_path / "secrets.key")
    sealed = box.seal("id1", "hunter2")
    assert "hunter2" not in sealed and box.open("id1", sealed) == "hunter2"
    assert sealed.startswith(f"v2:{box.fingerprint}:")
    with pytest.raises(Misconfigured, match=r"connector secret \[id2\] is damaged"):
        box.open("id2", sealed)  # bound to its id
    again = SecretBox.load(None, tmp_path / "secrets.key")
    assert again.fingerprint == box.fingerprint and again.open("id1", sealed) == "hunter2"


def test_another_key_is_named_not_a_bare_failure(tmp_path: Path) -> None:
    box = SecretBox.load(None, tmp_path / "secrets.key")
    sealed = box.seal("id1", "hunter2")
    other = SecretBox.load(base64.b64encode(b"k" * 32).decode(), tmp_path / "unused.key")
    assert other.fingerprint != box.fingerprint
    with pytest.raises(Misconfigured) as err:
        other.open("id1", sealed)
    message = str(err.value)
    assert f"encrypted with key {box.fingerprint}" in message and other.fingerprint in message
    assert "KEYPLANE_SECRETS_KEY" in message and "hunter2" not in message


def test_values_sealed_before_fingerprints_still_open(tmp_path: Path) -> None:
    box = SecretBox.load(None, tmp_path / "secrets.key")
    v2 = box.seal("id1", "hunter2")
    v1 = "v1:" + v2.split(":", 2)[2]  # the earlier format: no fingerprint
    assert box.open("id1", v1) == "hunter2"
    other = SecretBox.load(base64.b64encode(b"k" * 32).decode(), tmp_path / "unused.key")
    with pytest.raises(Misconfigured, match="encrypted with another key"):
        other.open("id1", v1)


def test_a_bad_key_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="KEYPLANE_SECRETS_KEY must be base64 of 32 bytes"):
        SecretBox.load("not-base64!", tmp_path / "x.key")
