"""Log lines: ECS JSON or text, the request's ids on them, levels, and no exception messages."""

from __future__ import annotations

import contextvars
import io
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest

from keyplane import logs, request_context
from keyplane.config import Settings

SECRET = "row-secret-9c2e"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure() changes process-wide logging: put the levels and handlers back after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    own = {name: logging.getLogger(name).level for name in (*logs.OWN_LOGGERS, "sqlalchemy.engine")}
    yield
    root.handlers = handlers
    root.setLevel(level)
    for name, old in own.items():
        logging.getLogger(name).setLevel(old)
    logging.captureWarnings(False)


def record(message: str = "user [%s] created", *args: object, **extra: object) -> logging.LogRecord:
    made = logging.getLogger("keyplane.security").makeRecord(
        "keyplane.security", logging.WARNING, __file__, 1, message, args or ("ann",), None, extra=extra
    )
    return made


def in_request(
    request_id: str | None, opaque_id: str | None, formatter: logging.Formatter, rec: logging.LogRecord
) -> str:
    """The line as formatted while a request with these ids is served (the dispatcher sets them)."""

    def run() -> str:
        if request_id is not None:
            request_context.request_id.set(request_id)
        if opaque_id is not None:
            request_context.opaque_id.set(opaque_id)
        return formatter.format(rec)

    return contextvars.Context().run(run)


def test_json_lines_carry_the_ecs_fields_and_the_request_ids() -> None:
    rec = record()
    line = in_request("r-17", "dashboard-42", logs.EcsFormatter("node-1"), rec)
    assert "\n" not in line
    doc = orjson.loads(line)
    assert doc["message"] == "user [ann] created"
    assert doc["log.level"] == "warning" and doc["log.logger"] == "keyplane.security"
    assert doc["ecs.version"] == logs.ECS_VERSION and doc["service.name"] == "keyplane"
    assert doc["service.node.name"] == "node-1" and doc["event.dataset"] == "keyplane.server"
    assert doc["http.request.id"] == "r-17" and doc["keyplane.http.request.x_opaque_id"] == "dashboard-42"
    stamp = datetime.strptime(doc["@timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs(stamp.timestamp() - rec.created) < 0.001


def test_outside_a_request_there_are_no_request_fields() -> None:
    doc = orjson.loads(in_request(None, None, logs.EcsFormatter("n"), record()))
    assert "http.request.id" not in doc and "keyplane.http.request.x_opaque_id" not in doc
    text = in_request(None, None, logs.TextFormatter(), record())
    assert text.endswith(" WARNING keyplane.security: user [ann] created")


def test_text_lines_carry_the_request_ids_and_dotted_extras() -> None:
    rec = record("%s %s", "GET", "/_security/_authenticate", **{"http.response.status_code": 200})
    text = in_request("r-18", "ops", logs.TextFormatter(), rec)
    assert text.endswith(
        "WARNING keyplane.security: GET /_security/_authenticate "
        "(http.request.id=r-18 keyplane.http.request.x_opaque_id=ops http.response.status_code=200)"
    )
    doc = orjson.loads(in_request(None, None, logs.EcsFormatter("n"), rec))
    assert doc["http.response.status_code"] == 200


def test_exceptions_are_logged_by_kind_and_place_never_by_message() -> None:
    try:
        raise ValueError(f"Failing row contains (ann, {SECRET})")
    except ValueError:
        rec = logging.getLogger("keyplane").makeRecord(
            "keyplane", logging.ERROR, __file__, 1, "write failed", (), sys.exc_info()
        )
    doc = orjson.loads(logs.EcsFormatter("n").format(rec))
    assert doc["error.type"] == "builtins.ValueError"
    assert "test_logs.py" in doc["error.stack_trace"]
    text = logs.TextFormatter().format(rec)
    assert "builtins.ValueError" in text
    assert SECRET not in text and SECRET not in orjson.dumps(doc).decode()


def test_configure_routes_keyplane_and_uvicorn_at_the_chosen_level(restore_logging: None) -> None:
    out = io.StringIO()
    logs.configure(Settings(log_format="json", log_level="debug", node_name="n2"), out)
    logging.getLogger("keyplane.http").debug("GET / 200")
    logging.getLogger("uvicorn.error").info("Started server process [1]")
    # Other libraries stay at warning: SQLAlchemy's engine would log statements with their parameters.
    logging.getLogger("sqlalchemy.engine.Engine").info("INSERT ... ('%s',)", SECRET)
    logging.getLogger("httpx").debug("secret url")
    docs = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [(d["log.logger"], d["message"]) for d in docs] == [
        ("keyplane.http", "GET / 200"),
        ("uvicorn.error", "Started server process [1]"),
    ]
    assert all(d["service.node.name"] == "n2" for d in docs)


def test_configure_again_replaces_its_handler_and_honours_the_level(restore_logging: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    logs.configure(Settings(log_level="debug"), first)
    logs.configure(Settings(log_level="warning"), second)
    logging.getLogger("keyplane").info("not at warning")
    logging.getLogger("keyplane").warning("kept")
    assert first.getvalue() == ""
    [line] = second.getvalue().splitlines()
    assert line.endswith(" WARNING keyplane: kept")
    assert sum(isinstance(h, logs._Handler) for h in logging.getLogger().handlers) == 1
