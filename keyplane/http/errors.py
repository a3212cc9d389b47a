"""Elasticsearch's error types and the envelope they are rendered in.

Every failure a handler can report is an :class:`EsError`. The dispatcher turns it into
``{"error": {"root_cause": [...], "type": ..., "reason": ...}, "status": N}``.
Domain packages raise the plain exceptions of ``keyplane.errors``; they are mapped here.
"""

from __future__ import annotations

from typing import Any

from keyplane import errors as domain
from keyplane.limits import FlattenedTooDeep

WWW_AUTHENTICATE = [
    'Basic realm="security", charset="UTF-8"',
    'Bearer realm="security"',
    "ApiKey",
]


class EsError(Exception):
    """An error with an Elasticsearch type, an HTTP status and optional extra fields."""

    def __init__(
        self,
        status: int,
        type_: str,
        reason: str,
        *,
        extra: dict[str, Any] | None = None,
        root_cause: dict[str, Any] | None = None,
        caused_by: dict[str, Any] | None = None,
        headers: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.type = type_
        self.reason = reason
        self.extra = extra or {}
        self.root_cause = root_cause  # the innermost cause
        self.caused_by = caused_by  # the direct cause, when it is not the innermost one
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        cause: dict[str, Any] = {"type": self.type, "reason": self.reason, **self.extra}
        if self.headers:
            cause["header"] = dict(self.headers)
        error: dict[str, Any] = {"root_cause": [self.root_cause or cause], **cause}
        if self.root_cause or self.caused_by:
            error["caused_by"] = self.caused_by or self.root_cause
        return {"error": error, "status": self.status}


class RawError(Exception):
    """The few answers Elasticsearch gives without the envelope (unknown path, media type)."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body
        self.headers = headers or {}


def bad_request(reason: str, type_: str = "illegal_argument_exception") -> EsError:
    return EsError(400, type_, reason)


def validation_failed(*messages: str) -> EsError:
    text = "".join(f"{i}: {m};" for i, m in enumerate(messages, 1))
    return EsError(400, "action_request_validation_exception", f"Validation Failed: {text}")


def parse_error(reason: str) -> EsError:
    return EsError(400, "parse_exception", reason)


def x_content_parse(reason: str, cause: EsError | None = None) -> EsError:
    """A wrapped body parse failure; root_cause holds the innermost error when there is one."""
    if cause is None:
        return EsError(400, "x_content_parse_exception", reason)
    direct: dict[str, Any] = {"type": cause.type, "reason": cause.reason}
    if cause.root_cause is None:
        if cause.caused_by is None:
            return EsError(400, "x_content_parse_exception", reason, root_cause=direct)
        # The cause is the innermost Elasticsearch error; what caused it shows only beneath it.
        root = dict(direct)
        direct["caused_by"] = cause.caused_by
        return EsError(400, "x_content_parse_exception", reason, root_cause=root, caused_by=direct)
    direct["caused_by"] = cause.caused_by or cause.root_cause
    return EsError(400, "x_content_parse_exception", reason, root_cause=cause.root_cause, caused_by=direct)


def not_found(reason: str, type_: str = "resource_not_found_exception") -> EsError:
    return EsError(404, type_, reason)


def unauthenticated(reason: str, extra: dict[str, Any] | None = None) -> EsError:
    return EsError(401, "security_exception", reason, extra=extra, headers={"WWW-Authenticate": WWW_AUTHENTICATE})


def forbidden(reason: str) -> EsError:
    return EsError(403, "security_exception", reason)


def from_domain(exc: domain.KeyplaneError) -> EsError:
    """Map an error raised by the domain to its Elasticsearch form."""
    if isinstance(exc, domain.ValidationError):
        return validation_failed(*exc.messages)
    if isinstance(exc, domain.ParseError):
        err = parse_error(str(exc))
        if isinstance(exc.__cause__, ValueError) and not isinstance(exc.__cause__, domain.KeyplaneError):
            # A plain cause is Java's IllegalArgumentException: shown under caused_by, and not a root
            # cause, as Elasticsearch finds root causes among its own exceptions only.
            err.caused_by = {"type": "illegal_argument_exception", "reason": str(exc.__cause__)}
        return err
    if isinstance(exc, domain.NotFound):
        return not_found(str(exc))
    if isinstance(exc, domain.DocumentMissing):
        return not_found(str(exc), "document_missing_exception")
    if isinstance(exc, domain.StatusError):
        return bad_request(str(exc), "status_exception")
    if isinstance(exc, domain.Conflict):
        return EsError(409, "version_conflict_engine_exception", str(exc))
    if isinstance(exc, domain.Forbidden):
        return forbidden(str(exc))
    if isinstance(exc, domain.StoreUnavailable):
        # Elasticsearch's answer when the shards holding security data are unavailable; clients retry a 503.
        return EsError(503, "unavailable_shards_exception", str(exc))
    if isinstance(exc, domain.Misconfigured):
        return EsError(500, "illegal_state_exception", str(exc))
    if isinstance(exc, domain.Unauthenticated):
        return unauthenticated(str(exc), exc.extra)
    if isinstance(exc, FlattenedTooDeep):
        # The document could not be indexed: Elasticsearch's mapper error, with the depth rule as its cause.
        parsing = {"type": "document_parsing_exception", "reason": str(exc)}
        err = EsError(400, "document_parsing_exception", str(exc))
        err.root_cause = parsing
        err.caused_by = {"type": "illegal_argument_exception", "reason": exc.cause}
        return err
    return bad_request(str(exc))
