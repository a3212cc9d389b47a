"""The audit writer and the lines the trail renders, on a real file."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from keyplane.audit import trail as trail_module
from keyplane.audit.events import EVENT_TYPES
from keyplane.audit.trail import HAND_OFF_INTERVAL_SECONDS, AuditTrail, Failure, Origin
from keyplane.audit.writer import AuditWriter, Stamps
from keyplane.security.identity import Authentication
from keyplane.security.permission import Permission
from keyplane.security.users import reserved_user

NONE = Permission([])
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
    trail.access(ORIGIN, auth, "indices:data/read/search", "logs-1,logs-2", False)
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


def test_texts_from_the_request_are_escaped(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path / "audit.json", 100, EVENT_TYPES, 'node-"a', "id-a")
    trail.writer.open()
    odd = Origin("GET", '/idx-"x"/_doc/\u00e9\n1', None, "ab12-8", 'op "9"\n\\')
    trail.access(odd, _key_auth(), "indices:data/read/get", 'idx-"x"', True)
    trail.access(ORIGIN, _key_auth(), "indices:data/read/get", None, True)
    trail.writer.close()
    first, second = [json.loads(line) for line in (tmp_path / "audit.json").read_text().splitlines()]
    assert first["url.path"] == '/idx-"x"/_doc/\u00e9\n1' and first["opaque_id"] == 'op "9"\n\\'
    assert "origin.address" not in first and first["node.name"] == 'node-"a' and first["indices"] == ['idx-"x"']
    assert second["origin.address"] == "10.0.0.7:51234" and second["request.id"] == "ab12-7"


def test_kept_line_middles_follow_the_caller_the_key_and_the_origin(tmp_path: Path) -> None:
    """A request's access_granted is its time, a kept middle and its request id: whatever differs
    between two events (caller, key name, client, path, action, X-Opaque-Id) still shows."""
    trail = AuditTrail(tmp_path / "audit.json", 100, EVENT_TYPES, "node-a", "id-a")
    trail.writer.open()
    elastic, kibana = reserved_user("elastic"), reserved_user("kibana_system")
    realm = {"name": "reserved", "type": "reserved"}
    by_basic = Authentication(elastic, elastic, realm, realm, "realm", ["superuser"], [], Permission([]))
    renamed = _key_auth()
    assert renamed.api_key is not None
    renamed.api_key = {**renamed.api_key, "name": "ci-2"}
    other_client = ORIGIN._replace(client=("10.0.0.8", 4000), request_id="r-3", opaque_id=None)
    other_path = ORIGIN._replace(path="/_security/api_key", request_id="r-4")
    events = [
        (ORIGIN, _key_auth(), "a/one"),
        (ORIGIN._replace(request_id="r-2"), renamed, "a/one"),
        (other_client, _key_auth(), "a/one"),
        (other_path, _key_auth(), "a/two"),
        (ORIGIN, by_basic, "a/one"),
        (ORIGIN, Authentication(kibana, kibana, realm, realm, "realm", [], [], Permission([])), "a/one"),
    ]
    for origin, auth, action in events:
        trail.access(origin, auth, action, None, True)
    trail.writer.close()
    lines = [json.loads(line) for line in (tmp_path / "audit.json").read_text().splitlines()]
    assert [e["authentication.api_key.name"] for e in lines[:4]] == ["ci", "ci-2", "ci", "ci"]
    assert [e["request.id"] for e in lines[:4]] == ["ab12-7", "r-2", "r-3", "r-4"]
    assert lines[2]["origin.address"] == "10.0.0.8:4000" and "opaque_id" not in lines[2]
    assert lines[3]["url.path"] == "/_security/api_key" and lines[3]["action"] == "a/two"
    assert [e["opaque_id"] for e in (lines[0], lines[1], lines[3], lines[4])] == ["op-9"] * 4
    assert lines[4]["authentication.type"] == "REALM" and lines[4]["user.roles"] == ["superuser"]
    assert "authentication.api_key.id" not in lines[4]
    assert lines[5]["user.name"] == "kibana_system" and "user.roles" not in lines[5]


def test_access_granted_keeps_middles_apart_by_roles_and_writes_only_when_enabled(tmp_path: Path) -> None:
    """One user object with other roles (a role mapping changed) gets its own middle; a trail whose
    events exclude access_granted writes none from the dispatcher's direct call."""
    trail = AuditTrail(tmp_path / "audit.json", 100, EVENT_TYPES, "node-a", "id-a")
    trail.writer.open()
    elastic = reserved_user("elastic")
    realm = {"name": "reserved", "type": "reserved"}
    for roles in (["superuser"], ["viewer", "editor"], ["superuser"]):
        auth = Authentication(elastic, elastic, realm, realm, "realm", roles, [], Permission([]))
        trail.access_granted(ORIGIN, auth, "a/one", None)
    trail.writer.close()
    lines = [json.loads(line) for line in (tmp_path / "audit.json").read_text().splitlines()]
    assert [e["user.roles"] for e in lines] == [["superuser"], ["viewer", "editor"], ["superuser"]]
    assert {e["event.action"] for e in lines} == {"access_granted"}
    quiet = AuditTrail(tmp_path / "quiet.json", 100, EVENT_TYPES - {"access_granted"}, "node-a", "id-a")
    quiet.writer.open()
    quiet.access_granted(ORIGIN, _key_auth(), "a/one", None)
    quiet.access(ORIGIN, _key_auth(), "a/one", None, True)
    quiet.writer.close()
    assert (tmp_path / "quiet.json").read_text() == ""


def test_a_full_buffer_counts_drops_and_never_blocks(tmp_path: Path) -> None:
    writer = AuditWriter(tmp_path / "audit.json", 10)  # not started: nothing drains the buffer
    started = time.monotonic()
    for n in range(1_000):
        writer.put(b'{"n":%d}\n' % n)
    assert time.monotonic() - started < 1.0
    assert writer.figures() == (10, 0, 990, 0)
    writer.open()
    writer.close()
    assert writer.figures() == (0, 10, 990, 0)
    assert [json.loads(line)["n"] for line in (tmp_path / "audit.json").read_text().splitlines()] == list(range(10))


def test_lines_are_written_by_the_thread_while_requests_go_on(tmp_path: Path) -> None:
    writer = AuditWriter(tmp_path / "audit.json", 100_000)
    writer.open()
    for n in range(5_000):
        writer.put(b'{"n":%d}\n' % n)
    deadline = time.monotonic() + 5
    while writer.figures()[1] < 5_000 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.figures() == (0, 5_000, 0, 0)  # written without close(): by the thread
    writer.close()
    assert len((tmp_path / "audit.json").read_text().splitlines()) == 5_000


def test_an_event_that_cannot_be_rendered_is_counted_and_the_trail_goes_on(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path / "audit.json", 100, EVENT_TYPES, "node-a", "id-a")
    trail.writer.open()
    auth = _key_auth()
    trail.security_change(ORIGIN, auth, "a/b", "put_role", {"put": {"role": {1, 2}}}, 200)  # a set: not JSON
    trail.access(ORIGIN, auth, "indices:data/read/search", None, True)
    trail.writer.close()
    assert trail.writer.figures() == (0, 1, 0, 1)
    (line,) = (tmp_path / "audit.json").read_text().splitlines()
    assert json.loads(line)["event.action"] == "access_granted"


def test_stamps_are_utc_with_milliseconds() -> None:
    stamps = Stamps()
    assert stamps.format(0.5) == b"1970-01-01T00:00:00.500Z"
    assert stamps.format(1_800_000_000.042) == b"2027-01-15T08:00:00.042Z"
    assert stamps.format(1_800_000_000.0429) == b"2027-01-15T08:00:00.042Z"
    assert stamps.format(1_800_000_001.999) == b"2027-01-15T08:00:01.999Z"


def test_events_on_the_loop_are_rendered_together_later_with_their_own_times(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int, list[dict[str, Any]]]:
        trail = AuditTrail(tmp_path / "audit.json", 100, EVENT_TYPES, "node-a", "id-a")
        trail.writer.open()
        auth = _key_auth()
        queued_at = time.time()
        trail.authentication_success(ORIGIN, auth)
        time.sleep(0.02)  # blocking: the render timer cannot fire in between
        trail.access(ORIGIN, auth, "indices:data/read/get", "logs-1", True)
        waiting = trail.figures()[0]  # queued on the loop, not rendered yet
        queued_before_render = trail.writer.queued
        await asyncio.sleep(HAND_OFF_INTERVAL_SECONDS * 3)  # the hand-off timer fires
        assert trail.writer.queued == 2  # both rendered by it and handed to the writer, no flush needed
        await asyncio.to_thread(trail.writer.close)
        lines = [json.loads(line) for line in (tmp_path / "audit.json").read_text().splitlines()]
        assert all(abs(_epoch(e["@timestamp"]) - queued_at) < 1.0 for e in lines)
        return waiting, queued_before_render, lines

    waiting, queued_before_render, lines = asyncio.run(scenario())
    assert (waiting, queued_before_render) == (2, 0)
    assert [e["event.action"] for e in lines] == ["authentication_success", "access_granted"]
    assert lines[1]["indices"] == ["logs-1"]
    # each line carries the time of its event, not of the render that wrote both
    assert _epoch(lines[1]["@timestamp"]) - _epoch(lines[0]["@timestamp"]) >= 0.015


def test_flush_renders_what_is_queued_before_the_writer_closes(tmp_path: Path) -> None:
    async def scenario() -> None:
        trail = AuditTrail(tmp_path / "audit.json", 100, EVENT_TYPES, "node-a", "id-a")
        trail.writer.open()
        for _ in range(5):
            trail.access(ORIGIN, _key_auth(), "indices:data/read/get", None, True)
        trail.flush()  # as at shutdown: the render timer has not fired
        await asyncio.to_thread(trail.writer.close)
        assert trail.figures() == (0, 5, 0, 0)

    asyncio.run(scenario())
    assert len((tmp_path / "audit.json").read_text().splitlines()) == 5


def test_queued_events_count_against_the_buffer(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int, int, int]:
        trail = AuditTrail(tmp_path / "audit.json", 10, EVENT_TYPES, "node-a", "id-a")  # writer not started
        for _ in range(25):
            trail.access(ORIGIN, _key_auth(), "indices:data/read/get", None, True)
        trail.flush()  # ten rendered into the writer's buffer, fifteen dropped
        for _ in range(3):  # the buffer is still full: these are dropped too
            trail.access(ORIGIN, _key_auth(), "indices:data/read/get", None, True)
        trail.flush()
        return trail.figures()

    assert asyncio.run(scenario()) == (10, 0, 18, 0)


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def test_every_event_type_renders_the_lines_it_always_did(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Byte for byte: audit_lines.jsonl was written by the trail before callers were kept per object."""

    class Clock:
        @staticmethod
        def time() -> float:
            return 1764563696.789

    monkeypatch.setattr(trail_module, "_now", Clock.time)
    monkeypatch.setattr(trail_module, "_clock", float)  # 0.0: an event's time is the wall clock's as it is
    trail = AuditTrail(tmp_path / "audit.json", 100, EVENT_TYPES, "node-a", "id-a")
    trail.writer.open()
    elastic = reserved_user("elastic")
    reserved = {"name": "reserved", "type": "reserved"}
    key, basic = _key_auth(), Authentication(elastic, elastic, reserved, reserved, "realm", ["superuser"], [], NONE)
    native = {"name": "default_native", "type": "native"}
    run_as = Authentication(reserved_user("kibana_system"), elastic, reserved, native, "realm", ["viewer"], [], NONE)
    bare = Origin("GET", "/_security/_authenticate", None, "ab12-8", None)
    trail.access(ORIGIN, key, "cluster:admin/xpack/security/user/authenticate", None, True)
    trail.access(bare, basic, "cluster:admin/xpack/security/user/authenticate", None, True)
    trail.access(ORIGIN, basic, "indices:data/read/search", "logs-1,logs-2", True)
    trail.authentication_success(ORIGIN, key)
    trail.access(bare, key, "indices:data/read/search", "logs-1", False)
    trail.authentication_failed(ORIGIN, Failure("basic", "ann", None, None), "default_native")
    trail.anonymous_access_denied(bare)
    trail.security_change(ORIGIN, basic, "a/b", "put_role", {"put": {"role": {"name": "r"}}}, 200)
    trail.run_as(ORIGIN, basic, "kibana_system", "a/c", True)
    trail.run_as(bare, basic, "nobody", "a/c", False)
    trail.access(ORIGIN, run_as, "a/c", None, True)
    trail.writer.close()
    expected = (Path(__file__).parent / "audit_lines.jsonl").read_bytes()
    assert (tmp_path / "audit.json").read_bytes() == expected


def test_one_caller_object_keeps_a_middle_per_action_and_origin(tmp_path: Path) -> None:
    """The dispatcher's direct call: one kept Authentication (as realms hand out per cached
    credential) still shows each request's own client, path, action, request id and X-Opaque-Id."""
    trail = AuditTrail(tmp_path / "audit.json", 100, EVENT_TYPES, "node-a", "id-a")
    trail.writer.open()
    auth = _key_auth()
    calls = [
        ("a/one", "GET", "/p", ("10.0.0.7", 1), "r-1", None),
        ("a/one", "GET", "/p", ("10.0.0.8", 2), "r-2", "op"),
        ("a/two", "GET", "/p", ("10.0.0.7", 1), "r-3", None),
        ("a/one", "POST", "/q", None, "r-4", None),
        ("a/one", "GET", "/p", ("10.0.0.7", 1), "r-5", None),
    ]
    for action, method, path, client, request_id, opaque in calls:
        trail.granted(auth, action, method, path, client, request_id, opaque, time.perf_counter())
    trail.writer.close()
    lines = [json.loads(line) for line in (tmp_path / "audit.json").read_text().splitlines()]
    shown = [(e["action"], e["request.method"], e["url.path"], e.get("origin.address")) for e in lines]
    assert shown == [
        ("a/one", "GET", "/p", "10.0.0.7:1"),
        ("a/one", "GET", "/p", "10.0.0.8:2"),
        ("a/two", "GET", "/p", "10.0.0.7:1"),
        ("a/one", "POST", "/q", None),
        ("a/one", "GET", "/p", "10.0.0.7:1"),
    ]
    assert [e["request.id"] for e in lines] == ["r-1", "r-2", "r-3", "r-4", "r-5"]
    assert [e.get("opaque_id") for e in lines] == [None, "op", None, None, None]
    assert len(trail._kept) == 4


def test_kept_middles_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trail_module, "_MIDDLE_CACHE_SIZE", 3)
    trail = AuditTrail(tmp_path / "audit.json", 100, EVENT_TYPES, "node-a", "id-a")
    trail.writer.open()
    for n in range(10):
        trail.granted(_key_auth(), "a/one", "GET", f"/p{n}", None, f"r-{n}", None, time.perf_counter())
        assert len(trail._kept) <= 3 and len(trail._middles) <= 3
    trail.writer.close()
    lines = [json.loads(line) for line in (tmp_path / "audit.json").read_text().splitlines()]
    assert [e["url.path"] for e in lines] == [f"/p{n}" for n in range(10)]


def test_a_full_trail_counts_drops_and_never_blocks(tmp_path: Path) -> None:
    """The writer is not started, so nothing drains its buffer: the trail refuses what does not fit."""
    trail = AuditTrail(tmp_path / "audit.json", 5, EVENT_TYPES, "node-a", "id-a")
    auth = _key_auth()
    started = time.monotonic()
    for n in range(100):  # no event loop here: each event goes to the writer at once
        trail.granted(auth, "a/one", "GET", "/p", None, f"r-{n}", None, time.perf_counter())
        trail.authentication_success(ORIGIN, auth)
    assert time.monotonic() - started < 1.0
    buffered, written, dropped, lost = trail.figures()
    assert (buffered, written, dropped, lost) == (5, 0, 195, 0)


def test_a_middle_that_cannot_be_rendered_is_counted_and_writes_no_line(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path / "audit.json", 100, EVENT_TYPES, "node-a", "id-a")
    trail.writer.open()
    user = reserved_user("elastic")
    realm = {"name": "reserved", "type": "reserved"}
    broken = Authentication(user, user, realm, realm, "realm", [{1, 2}], [], NONE)  # type: ignore[list-item]
    assert trail.middle(broken, "a/one", "GET", "/p", None) == ""
    trail.granted(broken, "a/one", "GET", "/p", None, "r-1", None, time.perf_counter())
    fine = _key_auth()
    middle = trail.middle(fine, "a/one", "GET", "/p", None)
    assert trail.middle(fine, "a/one", "GET", "/p", None) is middle  # kept
    trail.queue_granted(middle, "r-2", "op", time.perf_counter())
    trail.writer.close()
    assert trail.figures() == (0, 1, 0, 2)
    (line,) = [json.loads(line) for line in (tmp_path / "audit.json").read_text().splitlines()]
    assert (line["request.id"], line["opaque_id"], line["action"]) == ("r-2", "op", "a/one")
