"""roles.yml as the file roles store reads it: per-role checks, whole-file failures, reloading."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from keyplane.security import file_roles
from keyplane.security.file_roles import FileRoles, RolesFileError

GOOD = """
# comments and blank lines are fine
logs_reader:
  cluster: [monitor]
  indices:
    - names: 'logs-*'
      privileges: [read]
  metadata:
    since: 2024-01-01
events: {indices: [{names: events, privileges: read}], run_as: [ann]}
"""


def test_roles_parse_as_the_role_api_takes_them() -> None:
    roles, problems = file_roles.parse(GOOD, Path("roles.yml"))
    assert problems == []
    assert sorted(roles) == ["events", "logs_reader"]
    reader = roles["logs_reader"]
    assert reader.cluster == ["monitor"]
    assert reader.indices[0].names == ["logs-*"] and reader.indices[0].privileges == ["read"]
    assert reader.metadata == {"since": "2024-01-01"}  # a date stays text, as JSON would have it
    assert roles["events"].run_as == ["ann"]


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("bad_priv: {cluster: [not_a_privilege]}", "unknown cluster privilege"),
        ("bad_field: {clusters: [monitor]}", "unexpected field [clusters]"),
        ("bad_shape: [monitor]", "expected an object"),
        ("bad_meta: {metadata: {_x: 1}}", "metadata keys may not start with [_]"),
        ("bad_value: {metadata: {x: !!binary aGVsbG8=}}", "JSON cannot hold"),
        ("' spaced': {cluster: [monitor]}", "invalid role name"),
        ("superuser: {cluster: [monitor]}", "is reserved"),
    ],
)
def test_an_invalid_role_is_skipped_with_a_warning_naming_file_and_role(entry: str, why: str) -> None:
    path = Path("/etc/keyplane/roles.yml")
    roles, problems = file_roles.parse(f"fine: {{cluster: [monitor]}}\n{entry}\n", path)
    assert list(roles) == ["fine"]
    assert len(problems) == 1 and str(path) in problems[0] and why.lower() in problems[0].lower()
    assert f"[{entry.split(':')[0].strip(chr(39))}]" in problems[0]


@pytest.mark.parametrize("text", ["a: [b\n", "- just\n- a list\n", "key: value: other\n"])
def test_a_file_that_is_not_a_map_of_roles_fails_whole(text: str) -> None:
    with pytest.raises(RolesFileError, match="roles.yml"):
        file_roles.parse(text, Path("roles.yml"))


def test_empty_and_missing_files_have_no_roles(tmp_path: Path) -> None:
    assert file_roles.parse("# nothing yet\n", tmp_path / "roles.yml") == ({}, [])
    assert file_roles.read(tmp_path / "roles.yml") == ({}, [])


def test_reload_keeps_the_roles_when_the_file_breaks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "roles.yml"
    path.write_text(GOOD)
    store = FileRoles(path)
    assert store.reload_if_changed() and sorted(store.roles) == ["events", "logs_reader"]
    assert not store.reload_if_changed()  # unchanged: not read again
    with caplog.at_level(logging.WARNING, logger="keyplane.security"):
        path.write_text("logs_reader: [unclosed\n")
        os.utime(path, ns=(1, 1))  # a distinct signature even within one clock tick
        assert not store.reload_if_changed()
    assert sorted(store.roles) == ["events", "logs_reader"]
    assert "is not valid YAML" in caplog.text and "roles read before stay" in caplog.text
    path.write_text("events: {cluster: [manage]}\n")
    assert store.reload_if_changed() and list(store.roles) == ["events"]
    path.unlink()
    assert store.reload_if_changed() and store.roles == {}
