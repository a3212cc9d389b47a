import pytest

from keyplane.connectors import clock, configuration, core, filtering, scheduling, sync_jobs
from keyplane.errors import InvalidArgument, ParseError, StatusError, ValidationError


def test_timestamps_round_trip_with_their_precision() -> None:
    assert clock.parse_timestamp("2023-12-04T08:45:50.567149Z", "t") == "2023-12-04T08:45:50.567149Z"
    assert clock.parse_timestamp("2023-05-25T12:30:00.000Z", "t") == "2023-05-25T12:30:00.000Z"
    assert clock.parse_timestamp("2023-05-25T12:30:00Z", "t") == "2023-05-25T12:30:00.000Z"
    assert clock.parse_timestamp(1685017800000, "t") == "2023-05-25T12:30:00.000Z"
    assert clock.parse_timestamp("2023-05-25T14:30:00.1+02:00", "t") == "2023-05-25T12:30:00.100Z"
    a, b = clock.now_iso(), clock.now_iso()
    assert a < b or len(a) != len(b)
    with pytest.raises(ParseError):
        clock.parse_timestamp("wrong datetime", "t")


def test_index_name_rules() -> None:
    assert core.index_name_problem("search-ok") is None
    assert core.index_name_problem("UpperIsAccepted") is None
    assert "must not start with '_', '-', or '+'" in str(core.index_name_problem("_x"))
    assert "must not contain '#'" in str(core.index_name_problem("a#b"))
    with pytest.raises(ValidationError):
        core.check_new_connector({"index_name": "a b"})
    with pytest.raises(ValidationError, match="must start with the prefix: \\[content-\\]"):
        core.check_new_connector({"index_name": "search-x", "is_native": True})


def test_defaults() -> None:
    doc = core.new_connector({"is_native": True, "index_name": "content-x"}, clock.now_iso())
    assert doc["status"] == "needs_configuration" and doc["name"] == ""
    assert list(doc)[-3:] == ["status", "sync_now", "deleted"]
    assert "pipeline" not in doc and "features" not in doc
    element = doc["filtering"][0]
    assert element["active"] == element["draft"] and element["domain"] == "DEFAULT"


def test_status_machines() -> None:
    core.check_transition("created", "needs_configuration")
    with pytest.raises(StatusError, match="from \\[created\\] to \\[connected\\]"):
        core.check_transition("created", "connected")
    with pytest.raises(StatusError):
        core.check_transition("needs_configuration", "needs_configuration")
    sync_jobs.check_transition("in_progress", "canceling")
    with pytest.raises(StatusError, match="ConnectorSyncStatus transition"):
        sync_jobs.check_transition("pending", "error")
    with pytest.raises(InvalidArgument, match="Unknown ConnectorSyncJobType \\[x\\]."):
        sync_jobs.parse_job_type("x")


def test_rule_sorting_puts_the_default_rule_last() -> None:
    stamp = clock.now_iso()
    rules = [
        filtering.default_rule("2020-01-01T00:00:00.000Z", 5),
        filtering.parse_rule(
            {"field": "a", "id": "R2", "order": 3, "policy": "include", "rule": "equals", "value": "x"}
        ),
        filtering.parse_rule(
            {"field": "b", "id": "R1", "order": 0, "policy": "EXCLUDE", "rule": "regex", "value": "y"}
        ),
    ]
    ordered = filtering.sort_rules(rules, stamp)
    assert [(r["id"], r["order"]) for r in ordered] == [("R1", 0), ("R2", 3), ("DEFAULT", 4)]
    assert ordered[-1]["created_at"] == "2020-01-01T00:00:00.000Z"
    assert ordered[0]["policy"] == "exclude"
    assert [r["id"] for r in filtering.sort_rules([], stamp)] == ["DEFAULT"]


def test_cron() -> None:
    for ok in (
        "0 0 0 * * ?",
        "1 * * * * ?",
        "0 */5 * * * ?",
        "0 0 12 ? * MON-FRI",
        "0 15 10 L * ?",
        "0 0 0 1,15 * ? 2030",
    ):
        scheduling.check_cron(ok)
    for bad in ("61 0 0 * * ?", "0 0 0 * *", "0 0 25 * * ?", "0 0 0 * * *", "a b c d e f"):
        with pytest.raises(InvalidArgument):
            scheduling.check_cron(bad)


def test_configuration_schema() -> None:
    parsed = configuration.parse_field_schema(
        "f",
        {
            "label": "F",
            "display": "NUMERIC",
            "value": {"nested": 1},
            "validations": [{"type": "greater_than", "constraint": 0}],
            "extra": 1,
        },
    )
    assert parsed["display"] == "numeric" and parsed["required"] is False and parsed["default_value"] is None
    assert "extra" not in parsed and parsed["value"] == {"nested": 1}
    with pytest.raises(InvalidArgument, match="Unknown ConfigurationDisplayType"):
        configuration.parse_field_schema("f", {"label": "F", "display": "wheel"})
    with pytest.raises(ParseError, match="Required \\[label\\]"):
        configuration.parse_field_schema("f", {"display": "text"})
    with pytest.raises(StatusError, match="Unknown \\[configuration\\] fields"):
        configuration.check_registered({"a": {}}, {"b": 1})
