"""The connector and sync-job rules as pure functions, and the service operations that apply them.

The rules used to live in closures inside the REST handlers; here each is called on a plain document.
The service tests at the end run the operations against in-memory repositories, to pin down what
the operations decide around the rules (which update kind, ``noop`` or ``updated``, which error first).
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import json
from collections.abc import Coroutine
from datetime import datetime
from typing import Any, TypeVar

import pytest

from keyplane.connectors import configuration, core, filtering, scheduling, sync_jobs
from keyplane.connectors.backends.base import Stored
from keyplane.connectors.model import ConnectorFilter, Doc
from keyplane.connectors.secrets import SecretBox
from keyplane.connectors.service import ConnectorService
from keyplane.errors import DocumentMissing, InvalidArgument, NotFound, ParseError, StatusError, ValidationError

T = TypeVar("T")
STAMP = "2024-05-01T10:00:00.000Z"
LATER = "2024-05-02T11:00:00.000Z"
SCHEMA = {"host": {"label": "Host", "value": ""}, "port": {"label": "Port", "value": 0}}


def connector(**fields: Any) -> Doc:
    doc = core.new_connector({"index_name": "search-x", "service_type": "jira"}, STAMP)
    doc.update(fields)
    return doc


def job(status: str = "pending") -> Doc:
    doc = sync_jobs.new_job("c1", connector(), "full", "on_demand", 1_700_000_000_000_000_000)
    doc["status"] = status
    return doc


# -- configuration ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["created", "needs_configuration", "connected", "error"])
def test_a_new_schema_replaces_the_old_one_and_makes_the_connector_configured(status: str) -> None:
    doc = connector(status=status, configuration={"old": {"label": "Old", "value": 1}})
    schema = configuration.parse_schema(SCHEMA)
    configuration.replace_schema(doc, schema)
    assert doc["status"] == "configured"
    assert list(doc["configuration"]) == ["host", "port"]
    assert doc["configuration"]["host"]["label"] == "Host" and doc["configuration"]["host"]["required"] is False


def test_values_fill_registered_fields_and_make_the_connector_configured() -> None:
    doc = connector(status="needs_configuration", configuration=configuration.parse_schema(SCHEMA))
    configuration.set_values(doc, {"host": "example.org"})
    assert doc["status"] == "configured"
    assert doc["configuration"]["host"]["value"] == "example.org"
    assert doc["configuration"]["host"]["label"] == "Host"  # the schema is kept
    assert doc["configuration"]["port"]["value"] == 0  # fields not given keep their value


def test_values_of_unregistered_fields_are_refused_and_change_nothing() -> None:
    doc = connector(status="created", configuration=configuration.parse_schema(SCHEMA))
    before = copy.deepcopy(doc)
    with pytest.raises(StatusError) as refused:
        configuration.set_values(doc, {"host": "h", "user": "u", "password": "p"})
    assert str(refused.value) == (
        "Unknown [configuration] fields in the request payload: [user, password]. "
        "Remove them from request or register their schema first."
    )
    assert doc == before
    with pytest.raises(StatusError, match=r"\[host\]"):
        configuration.set_values(connector(), {"host": "h"})  # nothing registered yet


# -- filtering ----------------------------------------------------------------------------------------------

RULE = {"field": "title", "id": "r1", "order": 4, "policy": "exclude", "rule": "contains", "value": "draft"}


def test_editing_the_draft_rules_sorts_them_and_resets_the_validation() -> None:
    doc = connector()
    active_before = copy.deepcopy(doc["filtering"][0]["active"])
    filtering.edit_draft(doc, None, filtering.parse_rules([RULE]), LATER)
    element = doc["filtering"][0]
    draft = element["draft"]
    assert [(r["id"], r["order"]) for r in draft["rules"]] == [("r1", 4), ("DEFAULT", 5)]
    assert draft["rules"][0]["created_at"] == LATER and draft["rules"][0]["policy"] == "exclude"
    assert draft["validation"] == {"errors": [], "state": "edited"}
    assert element["active"] == active_before  # only the draft changes
    assert draft["advanced_snippet"]["value"] == {}


def test_editing_the_draft_snippet_keeps_its_rules() -> None:
    doc = connector()
    rules_before = copy.deepcopy(doc["filtering"][0]["draft"]["rules"])
    snippet = filtering.parse_snippet({"value": {"query": {"match_all": {}}}})
    filtering.edit_draft(doc, snippet, None, LATER)
    draft = doc["filtering"][0]["draft"]
    assert draft["advanced_snippet"] == {
        "created_at": LATER,
        "updated_at": LATER,
        "value": {"query": {"match_all": {}}},
    }
    assert draft["rules"] == rules_before
    assert draft["validation"]["state"] == "edited"


def test_a_connector_without_filtering_gets_the_default_element_first() -> None:
    doc = connector()
    del doc["filtering"]
    filtering.set_draft_validation(doc, {"errors": [], "state": "invalid"}, STAMP)
    (element,) = doc["filtering"]
    assert element["domain"] == "DEFAULT"
    assert element["active"]["rules"][0]["created_at"] == STAMP
    assert element["draft"]["validation"]["state"] == "invalid"
    assert element["active"]["validation"]["state"] == "valid"


@pytest.mark.parametrize("state", ["edited", "invalid"])
def test_a_draft_is_activated_only_once_valid(state: str) -> None:
    doc = connector()
    filtering.edit_draft(doc, None, filtering.parse_rules([RULE]), LATER)
    validation = filtering.parse_validation({"state": state, "errors": []})
    filtering.set_draft_validation(doc, validation, LATER)
    active_before = copy.deepcopy(doc["filtering"][0]["active"])
    with pytest.raises(StatusError) as refused:
        filtering.activate_draft(doc, LATER)
    assert str(refused.value) == (
        "Filtering draft needs to be validated by the connector service before activation. Current filtering "
        f"draft validation state [{state}] is not equal to [valid]."
    )
    assert doc["filtering"][0]["active"] == active_before

    filtering.set_draft_validation(doc, filtering.parse_validation({"state": "VALID", "errors": []}), LATER)
    filtering.activate_draft(doc, LATER)
    element = doc["filtering"][0]
    assert element["active"] == element["draft"]
    assert [r["id"] for r in element["active"]["rules"]] == ["r1", "DEFAULT"]


def test_filtering_parsers_name_what_is_wrong() -> None:
    with pytest.raises(ParseError, match=r"^\[filtering\] must be an array$"):
        filtering.parse_filtering({})
    with pytest.raises(ParseError, match=r"^\[rules\] must be an array$"):
        filtering.parse_rules("r")
    with pytest.raises(InvalidArgument, match=r"^Unknown FilteringValidationState \[maybe\]\.$"):
        filtering.parse_validation({"state": "maybe", "errors": []})
    (element,) = filtering.parse_filtering([{"active": {"rules": [RULE]}}])
    assert element["domain"] == "DEFAULT" and element["draft"]["rules"] == []
    assert element["active"]["rules"][0]["updated_at"] is None  # dated by the update, not the parser


def test_parsed_filtering_is_dated_by_the_update_where_the_request_gave_no_date() -> None:
    given = {**RULE, "created_at": "2020-01-01T00:00:00Z"}
    (element,) = filtering.parse_filtering([{"active": {"rules": [given]}, "draft": {"rules": [RULE]}}])
    (dated,) = filtering.stamped([element], LATER)
    assert list(dated) == ["active", "domain", "draft"]
    (active_rule,) = dated["active"]["rules"]
    assert (active_rule["created_at"], active_rule["updated_at"]) == ("2020-01-01T00:00:00.000Z", LATER)
    assert list(active_rule) == list(element["active"]["rules"][0])  # the key order is kept
    assert dated["draft"]["rules"][0]["created_at"] == LATER
    assert dated["active"]["advanced_snippet"] == {"created_at": LATER, "updated_at": LATER, "value": {}}
    assert element["active"]["rules"][0]["updated_at"] is None  # the parsed value is left as it was


def test_a_draft_default_rule_without_dates_is_dated_by_the_edit() -> None:
    doc = connector()
    default = {"field": "_", "id": "DEFAULT", "order": 0, "policy": "include", "rule": "regex", "value": ".*"}
    filtering.edit_draft(doc, None, filtering.parse_rules([RULE, default]), LATER)
    rules = doc["filtering"][0]["draft"]["rules"]
    assert [(r["id"], r["created_at"], r["updated_at"]) for r in rules] == [
        ("r1", LATER, LATER),
        ("DEFAULT", LATER, LATER),
    ]


# -- connector fields ---------------------------------------------------------------------------------------


def test_partial_updates_write_only_given_fields() -> None:
    assert core.given({"name": "n", "description": None}) == {"name": "n"}
    assert core.given({"a": None}) == {}
    assert core.given({"count": 0, "flag": False, "text": ""}) == {"count": 0, "flag": False, "text": ""}
    assert core.checked_in(STAMP) == {"last_seen": STAMP}


def test_an_error_moves_the_status_to_error_and_clearing_it_to_connected() -> None:
    assert core.error_fields("boom") == {"error": "boom", "status": "error"}
    assert core.error_fields(None) == {"error": None, "status": "connected"}
    assert core.error_fields("") == {"error": "", "status": "connected"}


def test_status_changes_follow_the_connector_protocol() -> None:
    doc = connector()
    core.set_status(doc, "needs_configuration")
    core.set_status(doc, "configured")
    core.set_status(doc, "connected")
    assert doc["status"] == "connected"
    with pytest.raises(StatusError) as refused:
        core.set_status(doc, "needs_configuration")
    assert str(refused.value) == (
        "Invalid transition attempt from [connected] to [needs_configuration]. Such a status transition is not "
        "supported by the Connector Protocol."
    )
    assert doc["status"] == "connected"
    del doc["status"]  # a document without a status counts as created
    with pytest.raises(StatusError, match=r"from \[created\] to \[configured\]"):
        core.set_status(doc, "configured")


def test_a_native_connector_index_name_needs_the_content_prefix() -> None:
    native = connector(is_native=True, index_name="content-a")
    with pytest.raises(StatusError) as refused:
        core.set_index_name(native, "search-b")
    assert str(refused.value) == (
        "Index attached to an Elastic-managed connector must start with the prefix: [content-]. "
        "The index name in the payload [search-b] doesn't comply with this requirement."
    )
    assert native["index_name"] == "content-a"
    core.set_index_name(native, "content-b")
    assert native["index_name"] == "content-b"
    core.set_index_name(native, None)  # detaching the index is allowed
    assert native["index_name"] is None
    plain = connector(index_name="search-a")
    core.set_index_name(plain, "anything")
    assert plain["index_name"] == "anything"


def test_an_index_in_use_is_refused_with_its_name() -> None:
    refused = core.index_taken("search-a")
    assert isinstance(refused, StatusError)
    assert str(refused) == "Index name [search-a] is used by another connector."


def test_becoming_native_needs_a_content_index_and_checks_a_connected_connector_again() -> None:
    doc = connector(index_name="search-a", status="connected")
    with pytest.raises(StatusError) as refused:
        core.set_native(doc, "c1", True)
    assert str(refused.value) == (
        "The index name [search-a] attached to the connector [c1] must start with the required prefix: [content-] "
        "to be Elastic-managed. Please update the attached index first to comply with this requirement."
    )
    assert doc["is_native"] is False and doc["status"] == "connected"
    doc["index_name"] = "content-a"
    core.set_native(doc, "c1", True)
    assert doc["is_native"] is True and doc["status"] == "configured"
    for status in ("created", "needs_configuration", "configured", "error"):
        other = connector(index_name="search-a", is_native=True, status=status)
        core.set_native(other, "c2", False)  # leaving native needs no prefix
        assert other["is_native"] is False and other["status"] == status
    no_index = connector(index_name=None)
    core.set_native(no_index, "c3", True)
    assert no_index["is_native"] is True


@pytest.mark.parametrize(
    ("status", "after"),
    [
        ("created", "created"),
        ("needs_configuration", "needs_configuration"),
        ("configured", "needs_configuration"),
        ("connected", "needs_configuration"),
        ("error", "needs_configuration"),
    ],
)
def test_a_new_service_type_needs_a_new_configuration(status: str, after: str) -> None:
    doc = connector(status=status)
    core.set_service_type(doc, "sharepoint_online")
    assert doc["service_type"] == "sharepoint_online" and doc["status"] == after


def test_pipeline_is_replaced_whole_and_delete_is_soft() -> None:
    doc = connector(pipeline={"name": "old", "extra": 1})
    core.set_pipeline(doc, {"name": "new"})
    assert doc["pipeline"] == {"name": "new"}
    core.mark_deleted(doc)
    assert doc["deleted"] is True and doc["index_name"] == "search-x"


def test_features_and_schedules_are_parsed_into_what_is_stored() -> None:
    parsed = core.parse_features(
        {"incremental_sync": {"enabled": True}, "sync_rules": {"basic": {"enabled": False}}, "other": {}}
    )
    assert parsed == {"incremental_sync": {"enabled": True}, "sync_rules": {"basic": {"enabled": False}}}
    with pytest.raises(ParseError, match=r"^\[incremental_sync\] needs a boolean \[enabled\]$"):
        core.parse_features({"incremental_sync": {"enabled": "yes"}})
    assert scheduling.parse_scheduling({"full": {"enabled": True, "interval": "0 0 2 * * ?", "x": 1}}) == {
        "full": {"enabled": True, "interval": "0 0 2 * * ?"}
    }
    with pytest.raises(InvalidArgument, match=r"^invalid cron expression \[every day\]$"):
        scheduling.parse_scheduling({"incremental": {"enabled": True, "interval": "every day"}})
    with pytest.raises(ParseError, match=r"^\[full\] needs \[enabled\] and \[interval\]$"):
        scheduling.parse_scheduling({"full": {"interval": "0 0 2 * * ?"}})
    assert connector()["scheduling"] == scheduling.default_scheduling()
    assert scheduling.default_scheduling()["access_control"] == {"enabled": False, "interval": "0 0 0 * * ?"}


def test_a_new_connector_starts_created_unless_native() -> None:
    assert core.new_connector({}, STAMP)["status"] == "created"
    assert core.new_connector({"is_native": False}, STAMP)["is_native"] is False
    assert core.new_connector({"is_native": True}, STAMP)["status"] == "needs_configuration"
    element = core.new_connector({}, STAMP)["filtering"][0]  # dated by its caller: no clock read here
    assert element["active"]["advanced_snippet"]["created_at"] == element["draft"]["rules"][0]["updated_at"] == STAMP


# -- sync jobs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["pending", "suspended"])
def test_canceling_a_job_nobody_runs_cancels_it_at_once(status: str) -> None:
    doc = job(status)
    sync_jobs.cancel(doc, STAMP)
    assert doc["status"] == "canceled"
    assert doc["cancelation_requested_at"] == doc["canceled_at"] == doc["completed_at"] == STAMP


def test_canceling_a_running_job_asks_it_to_stop() -> None:
    doc = job("in_progress")
    sync_jobs.cancel(doc, STAMP)
    assert doc["status"] == "canceling" and doc["cancelation_requested_at"] == STAMP
    assert "canceled_at" not in doc and "completed_at" not in doc


@pytest.mark.parametrize("status", ["canceling", "canceled", "completed", "error"])
def test_a_finished_or_stopping_job_cannot_be_canceled(status: str) -> None:
    doc = job(status)
    before = copy.deepcopy(doc)
    with pytest.raises(StatusError) as refused:
        sync_jobs.cancel(doc, STAMP)
    assert str(refused.value) == (
        f"Invalid transition attempt from [{status}] to [canceling]. Such a ConnectorSyncStatus transition is not "
        "supported by the Connector Protocol."
    )
    assert doc == before


def test_claiming_a_job_starts_it_on_a_worker() -> None:
    doc = job("pending")
    sync_jobs.claim(doc, "worker-1", {"page": 7}, STAMP)
    assert doc["status"] == "in_progress" and doc["worker_hostname"] == "worker-1"
    assert doc["started_at"] == doc["last_seen"] == STAMP
    assert doc["connector"]["sync_cursor"] == {"page": 7}
    again = job("pending")
    sync_jobs.claim(again, "worker-2", None, LATER)
    assert "sync_cursor" not in again["connector"] and again["started_at"] == LATER
    # Elasticsearch does not check the status on claim, and neither does Keyplane.
    done = job("completed")
    sync_jobs.claim(done, "worker-3", None, LATER)
    assert done["status"] == "in_progress"


def test_a_job_error_is_recorded_only_where_the_protocol_allows_it() -> None:
    doc = job("in_progress")
    sync_jobs.fail(doc, "disk full")
    assert doc["status"] == "error" and doc["error"] == "disk full"
    stopping = job("canceling")
    sync_jobs.fail(stopping, "late")
    assert stopping["status"] == "error"
    pending = job("pending")
    with pytest.raises(StatusError, match=r"^Invalid transition attempt from \[pending\] to \[error\]\."):
        sync_jobs.fail(pending, "x")
    assert pending["status"] == "pending" and "error" not in pending


def test_job_stats_and_check_in() -> None:
    doc = job("in_progress")
    doc["metadata"] = {"a": {"b": 1}, "keep": True}
    sync_jobs.record_stats(doc, {"indexed_document_count": 5, "deleted_document_count": 1}, STAMP, {"a": {"c": 2}})
    assert doc["indexed_document_count"] == 5 and doc["deleted_document_count"] == 1
    assert doc["indexed_document_volume"] == 0 and doc["last_seen"] == STAMP
    assert doc["metadata"] == {"a": {"b": 1, "c": 2}, "keep": True}
    sync_jobs.record_stats(doc, {}, LATER, None)
    assert doc["metadata"] == {"a": {"b": 1, "c": 2}, "keep": True} and doc["last_seen"] == LATER
    sync_jobs.check_in(doc, STAMP)
    assert doc["last_seen"] == STAMP


def test_a_new_job_snapshots_the_connector() -> None:
    source = connector(language="en", pipeline={"name": "p"})
    doc = sync_jobs.new_job("c1", source, "access_control", "scheduled", 1_700_000_000_000_000_000)
    assert doc["status"] == "pending" and doc["trigger_method"] == "scheduled"
    assert doc["created_at"] == doc["last_seen"] == "2023-11-14T22:13:20.000Z"
    assert doc["connector"]["index_name"] == ".search-acl-filter-search-x"
    assert doc["connector"]["filtering"] == source["filtering"][0]["active"]
    assert doc["connector"]["language"] == "en" and doc["connector"]["pipeline"] == {"name": "p"}
    with pytest.raises(StatusError, match=r"with no index attached"):
        sync_jobs.new_job("c1", connector(index_name=None), "full", "on_demand", 0)
    with pytest.raises(StatusError, match=r"with \[service_type\] not defined"):
        sync_jobs.new_job("c1", connector(service_type=None), "full", "on_demand", 0)


# -- the service operations, on in-memory repositories ---------------------------------------------------


class MemoryConnectors:
    def __init__(self) -> None:
        self.rows: dict[str, Stored] = {}

    async def get(self, connector_id: str) -> Stored | None:
        row = self.rows.get(connector_id)
        return Stored(row.id, copy.deepcopy(row.doc), row.seq_no) if row else None

    async def index_in_use(self, index_name: str, connector_id: str) -> bool:
        return any(
            r.doc.get("index_name") == index_name and not r.doc.get("deleted") and r.id != connector_id
            for r in self.rows.values()
        )

    async def put(self, connector_id: str, doc: Doc) -> bool:
        created = connector_id not in self.rows
        seq_no = 1 if created else self.rows[connector_id].seq_no + 1
        self.rows[connector_id] = Stored(connector_id, doc, seq_no)
        return created

    async def replace(
        self, stored: Stored, previous: Doc | None = None, *, unchanged: bool = False, previous_text: str | None = None
    ) -> bool:
        current = self.rows.get(stored.id)
        if current is None or current.seq_no != stored.seq_no:
            return False
        if unchanged and current.doc != previous:
            return False
        self.rows[stored.id] = Stored(stored.id, stored.doc, stored.seq_no + 1)
        return True

    async def delete(self, connector_id: str) -> bool:
        return self.rows.pop(connector_id, None) is not None

    async def list(self, selector: ConnectorFilter, start: int, size: int) -> tuple[int, list[Stored]]:
        rows = [r for r in self.rows.values() if selector.include_deleted or not r.doc.get("deleted")]
        return len(rows), rows[start : start + size]

    async def list_texts(
        self, selector: ConnectorFilter, start: int, size: int
    ) -> tuple[int, builtins.list[tuple[str, str]]]:
        total, rows = await self.list(selector, start, size)
        return total, [(r.id, json.dumps(r.doc)) for r in rows]

    async def delete_all(self) -> None:
        self.rows.clear()


class MemoryJobs:
    def __init__(self) -> None:
        self.rows: dict[str, Stored] = {}

    async def insert(self, job_id: str, connector_id: str, created_ns: int, doc: Doc) -> None:
        self.rows[job_id] = Stored(job_id, doc, 1)

    async def get(self, job_id: str) -> Stored | None:
        row = self.rows.get(job_id)
        return Stored(row.id, copy.deepcopy(row.doc), row.seq_no) if row else None

    async def replace(self, stored: Stored) -> bool:
        current = self.rows.get(stored.id)
        if current is None or current.seq_no != stored.seq_no:
            return False
        self.rows[stored.id] = Stored(stored.id, stored.doc, stored.seq_no + 1)
        return True

    async def delete(self, job_id: str) -> bool:
        return self.rows.pop(job_id, None) is not None

    async def delete_for_connector(self, connector_id: str) -> int:
        gone = [k for k, r in self.rows.items() if r.doc["connector"]["id"] == connector_id]
        for key in gone:
            del self.rows[key]
        return len(gone)

    async def list(
        self, connector_id: str | None, status: str | None, job_types: list[str], start: int, size: int
    ) -> tuple[int, list[Stored]]:
        rows = list(self.rows.values())
        return len(rows), rows[start : start + size]

    async def delete_all(self) -> None:
        self.rows.clear()


class NoSecrets:
    async def put(self, secret_id: str, sealed: str) -> bool:
        return True

    async def get(self, secret_id: str) -> str | None:
        return None

    async def delete(self, secret_id: str) -> bool:
        return False

    async def delete_all(self) -> None:
        return None


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


@pytest.fixture
def service() -> ConnectorService:
    return ConnectorService(MemoryConnectors(), MemoryJobs(), NoSecrets(), SecretBox(bytes(32)))


def test_schema_updates_always_answer_updated_and_value_updates_may_be_noop(service: ConnectorService) -> None:
    run(service.put("c1", {"index_name": "search-a", "service_type": "jira"}))
    schema = configuration.parse_schema(SCHEMA)
    assert run(service.update_configuration("c1", schema)) == "updated"
    assert run(service.update_configuration("c1", schema)) == "updated"  # a script update in Elasticsearch
    assert run(service.update_configuration_values("c1", {"host": "h"})) == "updated"
    assert run(service.update_configuration_values("c1", {"host": "h"})) == "noop"
    stored = run(service.get("c1"))
    assert stored["id"] == "c1" and stored["status"] == "configured"
    assert stored["configuration"]["host"]["value"] == "h"


def test_partial_updates_reach_deleted_connectors_and_script_updates_do_not(service: ConnectorService) -> None:
    run(service.put("c1", {"index_name": "search-a"}))
    run(service.delete("c1", hard=False, delete_sync_jobs=False))
    assert run(service.update_name("c1", "renamed", None)) == "updated"
    assert run(service.get("c1", include_deleted=True))["name"] == "renamed"
    with pytest.raises(NotFound, match=r"^connector \[c1\] not found$"):
        run(service.update_service_type("c1", "jira"))
    with pytest.raises(DocumentMissing, match=r"^\[nope\]: document missing$"):
        run(service.update_error("nope", "x"))
    with pytest.raises(NotFound, match=r"^connector \[nope\] not found$"):
        run(service.update_status("nope", "error"))


def test_an_index_name_in_use_is_refused_before_the_connector_is_looked_up(service: ConnectorService) -> None:
    run(service.put("c1", {"index_name": "search-a"}))
    with pytest.raises(StatusError, match=r"^Index name \[search-a\] is used by another connector\.$"):
        run(service.update_index_name("missing", "search-a"))
    assert run(service.update_index_name("c1", "search-a")) == "noop"
    assert run(service.update_index_name("c1", "search-b")) == "updated"


def test_activation_answers_updated_even_when_nothing_changes(service: ConnectorService) -> None:
    run(service.put("c1", {"index_name": "search-a"}))
    assert run(service.activate_draft_filtering("c1")) == "updated"
    rules = filtering.parse_rules([RULE])
    assert run(service.update_filtering_draft("c1", None, rules)) == "updated"
    with pytest.raises(StatusError, match=r"state \[edited\] is not equal to \[valid\]"):
        run(service.activate_draft_filtering("c1"))


def _instant(stamp: str) -> datetime:
    # Stamps print 3 to 6 fraction digits, so as text they do not order by time.
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_filtering_updates_are_dated_by_the_service(service: ConnectorService) -> None:
    run(service.put("c1", {"index_name": "search-a"}))
    created = run(service.get("c1"))["filtering"][0]["active"]["rules"][0]["created_at"]
    (element,) = filtering.parse_filtering([{"draft": {"rules": [RULE]}}])
    assert run(service.update_filtering("c1", [element])) == "updated"
    (draft_rule,) = run(service.get("c1"))["filtering"][0]["draft"]["rules"]
    assert draft_rule["created_at"] == draft_rule["updated_at"]
    assert _instant(draft_rule["created_at"]) > _instant(created)  # now, after the connector was made
    snippet = filtering.parse_snippet({"value": {"q": 1}, "updated_at": "2021-02-03T04:05:06Z"})
    assert run(service.update_filtering_draft("c1", snippet, None)) == "updated"
    dated = run(service.get("c1"))["filtering"][0]["draft"]["advanced_snippet"]
    assert _instant(dated["created_at"]) > _instant(draft_rule["created_at"])
    assert dated["updated_at"] == "2021-02-03T04:05:06.000Z"


@pytest.mark.parametrize("message", [None, ""])
def test_a_sync_job_error_needs_a_reason_checked_before_the_job_is_looked_up(
    service: ConnectorService, message: str | None
) -> None:
    with pytest.raises(ValidationError, match=r"^\[error\] of the connector sync job cannot be null or empty$"):
        run(service.set_sync_job_error("nope", message))
    with pytest.raises(ValidationError, match=r"^\[id\] of the connector cannot be null or empty$"):
        run(service.create_sync_job(message, None, None))
    run(service.put("c1", {"index_name": "search-a", "service_type": "jira"}))
    job_id = run(service.create_sync_job("c1", None, None))
    run(service.claim_sync_job(job_id, "w1", None))
    assert run(service.set_sync_job_error(job_id, "disk full")) == "updated"
    failed = run(service.get_sync_job(job_id))
    assert (failed["status"], failed["error"]) == ("error", "disk full")


def test_sync_job_operations(service: ConnectorService) -> None:
    run(service.put("c1", {"index_name": "search-a", "service_type": "jira"}))
    job_id = run(service.create_sync_job("c1", None, None))
    created = run(service.get_sync_job(job_id))
    assert created["id"] == job_id and created["job_type"] == "full" and created["trigger_method"] == "on_demand"
    assert run(service.claim_sync_job(job_id, "w1", {"at": 1})) == "updated"
    assert run(service.update_sync_job_stats(job_id, {"indexed_document_count": 2}, None, {"m": 1})) == "updated"
    stats = run(service.get_sync_job(job_id))
    assert stats["indexed_document_count"] == 2 and stats["metadata"] == {"m": 1}
    assert _instant(stats["last_seen"]) > _instant(stats["started_at"])  # defaulted to now
    assert run(service.cancel_sync_job(job_id)) == "updated"
    assert run(service.get_sync_job(job_id))["status"] == "canceling"
    total, jobs = run(service.list_sync_jobs(None, None, [], 0, 10))
    assert total == 1 and [j["id"] for j in jobs] == [job_id]
    # An unknown job: the operations that look it up first answer with its bare id.
    with pytest.raises(NotFound, match=r"^nope$"):
        run(service.cancel_sync_job("nope"))
    with pytest.raises(NotFound, match=r"^nope$"):
        run(service.set_sync_job_error("nope", "x"))
    with pytest.raises(NotFound, match=r"^connector sync job \[nope\] not found$"):
        run(service.check_in_sync_job("nope"))
    with pytest.raises(NotFound, match=r"^Connector with id 'nope' does not exist\.$"):
        run(service.create_sync_job("nope", "full", None))
