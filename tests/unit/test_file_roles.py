"""roles.yml as the file roles store reads it: one block per role, per-role checks, unreadable files, reloading."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from keyplane.security import file_roles
from keyplane.security.file_roles import FileRoles

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
    assert "is reserved" in why or "at line 2" in problems[0]
    assert f"[{entry.split(':')[0].strip(chr(39))}]" in problems[0]


BROKEN_AMONG_GOOD = """---
# a leading document marker, comments and blank lines are fine
first: {cluster: [monitor]}

badly_indented:
  cluster: [monitor]
   indices: [{names: x, privileges: [read]}]
# a comment at column 0 inside a role does not end it
second:
  # nor does an indented one
  cluster: [monitor]

  indices: [{names: 'logs-*', privileges: [read]}]
unclosed: {cluster: [monitor]
two: {cluster: [monitor]}, three: {}
last:
  run_as: [ann]
"""


def test_a_yaml_error_in_one_role_skips_only_that_role() -> None:
    path = Path("/etc/keyplane/roles.yml")
    roles, problems = file_roles.parse(BROKEN_AMONG_GOOD, path)
    assert sorted(roles) == ["first", "last", "second"]
    assert roles["second"].cluster == ["monitor"] and roles["second"].indices[0].names == ["logs-*"]
    assert roles["last"].run_as == ["ann"]
    assert len(problems) == 3, problems
    badly, unclosed, two = problems
    assert badly.startswith(
        f"invalid role definition [badly_indented] in roles file [{path}] at line 7: not valid YAML"
    )
    assert unclosed.startswith(f"invalid role definition [unclosed] in roles file [{path}] at line 14: not valid YAML")
    assert two.startswith(f"invalid role definition [two] in roles file [{path}] at line 15:")


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ("- just\n- a list\n", ["line 1: expected a role name", "line 2: expected a role name"]),
        ("key: value: other\n", ["[key] in roles file [roles.yml] at line 1: not valid YAML"]),
        ("{a: {}, b: {}}\n", ["[a] in roles file [roles.yml] at line 1: expected a role name"]),
        ("  indented:\n    cluster: [monitor]\n", ["lines 1-2: indented before any role"]),
        ("fine: {}\n---\nother: {}\n", ["line 2: expected a role name"]),
        ("fine: {}\nfine: {cluster: [monitor]}\n", ["[fine] in roles file [roles.yml] at line 2 is defined again"]),
    ],
)
def test_a_block_that_is_not_one_role_is_a_warning(text: str, problems: list[str]) -> None:
    roles, found = file_roles.parse(text, Path("roles.yml"))
    assert len(found) == len(problems) and all(want in got for want, got in zip(problems, found, strict=True)), found
    assert all(name in ("fine", "other") for name in roles)


def test_line_ends_and_a_byte_order_mark_are_read_as_java_reads_them() -> None:
    roles, problems = file_roles.parse("\ufeffa: {cluster: [monitor]}\r\nb:\r  cluster: [monitor]\r\n", Path("r"))
    assert problems == [] and sorted(roles) == ["a", "b"]


def test_empty_and_missing_files_have_no_roles(tmp_path: Path) -> None:
    assert file_roles.parse("# nothing yet\n", tmp_path / "roles.yml") == ({}, [])
    assert file_roles.read(tmp_path / "roles.yml") == ({}, [])


def test_reload_skips_a_broken_role_and_keeps_the_roles_when_the_file_cannot_be_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "roles.yml"
    path.write_text(GOOD)
    store = FileRoles(path)
    assert store.reload_if_changed() and sorted(store.roles) == ["events", "logs_reader"]
    assert not store.reload_if_changed()  # unchanged: not read again
    with caplog.at_level(logging.WARNING, logger="keyplane.security"):
        path.write_bytes(b"events: {cluster: [\xff]}\n")  # not UTF-8: nothing of it can be trusted
        os.utime(path, ns=(1, 1))  # a distinct signature even within one clock tick
        assert not store.reload_if_changed()
    assert sorted(store.roles) == ["events", "logs_reader"]
    assert "it is not UTF-8 text" in caplog.text and "roles read before stay" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="keyplane.security"):
        path.write_text(GOOD.replace("events: {", "events: [{"))  # only this role is broken
        assert store.reload_if_changed() and list(store.roles) == ["logs_reader"]
    assert f"invalid role definition [events] in roles file [{path}] at line 10: not valid YAML" in caplog.text
    path.write_text("events: {cluster: [manage]}\n")
    assert store.reload_if_changed() and list(store.roles) == ["events"]
    path.unlink()
    assert store.reload_if_changed() and store.roles == {}


def test_a_broken_role_at_start_leaves_the_others_loaded(tmp_path: Path) -> None:
    path = tmp_path / "roles.yml"
    path.write_text(BROKEN_AMONG_GOOD)
    store = FileRoles(path)
    assert store.reload_if_changed() and sorted(store.roles) == ["first", "last", "second"]
