"""The audit writer and the lines the trail renders, on a real file."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from keyplane.audit.events import EVENT_TYPES
from keyplane.audit.trail import AuditTrail, Failure, Origin
from keyplane.audit.writer import AuditWriter, Stamps
from keyplane.security.identity import Authentication
from keyplane.security.permission import Permission
from keyplane.security.users import reserved_user

ORIGIN = Origin("GET", "/_security/_authenticate", ("10.0.0.7", 51234), "ab12-7", "op-9")


def _key_auth() -> Authentication:
    user = reserved_user("elastic")
    realm = {"name": "_es_api_key", "type": "_es_api_key"}
    return Authentication(user, user, realm, realm, "api_key", [], [], Permission([]), {"id": "k1", "name": "ci"})


def test_lines_follow_elasticsearch_field_names(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path / "audit.json", 100, EVENT_TYPES, "node-a", "id-a")
    trail.writer.open()
    auth = _key_auth()
    trail.authentication_success(ORIGIN, auth)
    trail.access(ORIGIN, auth, "indices:data/read/search", ["logs-1", "logs-2"], False)
    trail.authentication_failed(ORIGIN, Failure("basic", "ann", None, None), "default_native")
    trail.security_change(ORIGIN, auth, "a/b", "put_role", {"put": {"role": {"name": "r"}}}, 200)
    trail.writer.close()
    lines = [json.loads(line) for line in (tmp_path / "audit.json").read_text().splitlines()]
    assert [e["event.action"] for e in lines] == [
        "authentication_success",
        "access_denied",
        "realm_authentication_failed",
        "authentication_failed",
        "put_role",
    ]
    success, denied, realm, failed, change = lines
    assert success["authentication.type"] == "API_KEY" and success["authentication.api_key.id"] == "k1"
    assert success["user.name"] == "elastic" and success["user.realm"] == "_es_api_key"
    assert denied["indices"] == ["logs-1", "logs-2"] and denied["action"] == "indices:data/read/search"
    assert realm["realm"] == "default_native" and failed["user.name"] == "ann" and "realm" not in failed
    assert change["event.type"] == "security_config_change" and change["put"] == {"role": {"name": "r"}}
    for event in lines:
        assert event["type"] == "audit" and event["node.name"] == "node-a"
        assert event["origin.address"] == "10.0.0.7:51234" and event["request.id"] == "ab12-7"
        assert event["opaque_id"] == "op-9" and event["url.path"] == "/_security/_authenticate"
    assert oct((tmp_path / "audit.json").stat().st_mode & 0o777) == "0o600"


def test_a_full_buffer_counts_drops_and_never_blocks(tmp_path: Path) -> None:
    release = threading.Event()

    def slow(record: object) -> bytes:
        release.wait(5)
        return b"{}\n"

    writer = AuditWriter(tmp_path / "audit.json", 10, slow)
    writer.open()
    started = time.monotonic()
    for n in range(1_000):
        writer.put(n)
    assert time.monotonic() - started < 1.0
    assert writer.dropped >= 1_000 - 11  # at most the buffer and the record being written
    release.set()
    writer.close()
    buffered, written, dropped, failed = writer.figures()
    assert buffered == 0 and failed == 0 and written + dropped == 1_000


def test_a_record_that_cannot_be_rendered_is_counted_and_the_writer_goes_on(tmp_path: Path) -> None:
    def render(record: object) -> bytes:
        if record == "bad":
            raise TypeError("cannot render")
        return b'{"ok":true}\n'

    writer = AuditWriter(tmp_path / "audit.json", 10, render)
    writer.open()
    for record in ("good", "bad", "good"):
        writer.put(record)
    writer.close()
    assert writer.figures() == (0, 2, 0, 1)
    assert (tmp_path / "audit.json").read_text() == '{"ok":true}\n' * 2


def test_stamps_are_utc_with_milliseconds() -> None:
    stamps = Stamps()
    assert stamps.format(0.5) == b"1970-01-01T00:00:00.500Z"
    assert stamps.format(1_800_000_000.042) == b"2027-01-15T08:00:00.042Z"
    assert stamps.format(1_800_000_000.0429) == b"2027-01-15T08:00:00.042Z"
    assert stamps.format(1_800_000_001.999) == b"2027-01-15T08:00:01.999Z"
