"""Log lines: plain text for a terminal, or JSON lines with Elastic Common Schema field names.

:func:`configure` sets up the process's logging from the settings (``log_format``, ``log_level``)
before the server starts; uvicorn's loggers propagate to the same handler, so its lines take the
same form. A record's ``extra`` fields with an ECS-style dotted name (``extra={"http.response.status_code":
200}``) become fields of the JSON line and ``name=value`` pairs of the text line: the per-request line
and others add structured fields that way. What goes into a message is the caller's responsibility:
never a secret, a hash or an SQL parameter (errors go through :mod:`keyplane.tracebacks`).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from keyplane import __version__, request_context, tracebacks
from keyplane.config import Settings

ECS_VERSION = "1.6.0"
# Loggers that take the chosen level; every other library stays at warning (at debug, SQLAlchemy's
# engine would log statements with their parameters, httpx the URLs it calls).
OWN_LOGGERS = ("keyplane", "uvicorn")


def configure(settings: Settings, stream: TextIO | None = None) -> None:
    """Send every log line to ``stream`` (standard error by default) in the chosen format and level.

    Called again, it replaces the handler it added, and only that one.
    """
    level = logging.getLevelNamesMapping()[settings.log_level.upper()]
    formatter: logging.Formatter = (
        EcsFormatter(settings.node_name) if settings.log_format == "json" else TextFormatter()
    )
    handler = _Handler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(level, logging.WARNING))
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)
    # Python's warnings become log lines too, instead of free text on standard error.
    logging.captureWarnings(True)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes to the current ``sys.stderr`` unless given a stream."""

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__(stream)
        self._fixed = stream

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = self._fixed or sys.stderr
        super().emit(record)


def context_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The request's ids (when the line is written while serving one) and the record's dotted extras."""
    fields: dict[str, Any] = {}
    request_id = request_context.request_id.get()
    if request_id is not None:
        fields["http.request.id"] = request_id
    opaque_id = request_context.opaque_id.get()
    if opaque_id is not None:
        fields["keyplane.http.request.x_opaque_id"] = opaque_id
    for name, value in record.__dict__.items():
        if "." in name:
            fields[name] = value
    return fields


class EcsFormatter(logging.Formatter):
    """One JSON object per line, with Elastic Common Schema names (as Elasticsearch's own JSON logs)."""

    def __init__(self, node_name: str) -> None:
        super().__init__()
        self._node_name = node_name

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "@timestamp": _timestamp(record),
            "log.level": record.levelname.lower(),
            "log.logger": record.name,
            "message": record.getMessage(),
            "ecs.version": ECS_VERSION,
            "service.name": "keyplane",
            "service.version": __version__,
            "service.node.name": self._node_name,
            "event.dataset": "keyplane.server",
            "process.pid": record.process,
            "process.thread.name": record.threadName,
        }
        line.update(context_fields(record))
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            # The kind and where, never the message: it can quote a statement's values.
            line["error.type"] = tracebacks.kind(exc)
            line["error.stack_trace"] = tracebacks.without_values(exc)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message (field=value ...)``, the request's ids among the fields."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        fields = context_fields(record)
        if fields:
            text += " (" + " ".join(f"{name}={value}" for name, value in fields.items()) + ")"
        if record.exc_info and record.exc_info[1] is not None:
            text += "\n" + tracebacks.without_values(record.exc_info[1])
        return text


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
