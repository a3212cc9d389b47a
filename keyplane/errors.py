"""Errors the domain raises. They know nothing of HTTP; ``keyplane.http.errors`` maps them."""

from __future__ import annotations

from typing import Any


class KeyplaneError(Exception):
    """Base of every domain error."""


class InvalidArgument(KeyplaneError):
    """Elasticsearch's illegal_argument_exception."""


class ValidationError(KeyplaneError):
    """One or more request validation messages (action_request_validation_exception)."""

    def __init__(self, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)


class ParseError(KeyplaneError):
    """A structured value could not be parsed (parse_exception)."""


class NotFound(KeyplaneError):
    """A named resource does not exist (resource_not_found_exception)."""


class DocumentMissing(KeyplaneError):
    """An update aimed at a record that does not exist (document_missing_exception, 404)."""


class StatusError(KeyplaneError):
    """A business rule refused the request (status_exception, 400)."""


class Conflict(KeyplaneError):
    """A concurrent write changed the record first."""


class StoreUnavailable(KeyplaneError):
    """The database cannot be reached; the request may succeed when retried (503)."""


class Forbidden(KeyplaneError):
    """The caller is authenticated but may not do this (security_exception, 403)."""


class Unauthenticated(KeyplaneError):
    """The credentials are missing or wrong (security_exception, 401)."""

    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.extra = extra or {}


class CredentialsRejected(KeyplaneError):
    """Presented credentials were checked and refused.

    The authentication chain reports the message beside Elasticsearch's generic 401 reason, or alone when
    ``terminal`` (as for a cross-cluster key used on the REST interface).
    """

    def __init__(self, message: str, *, terminal: bool = False) -> None:
        super().__init__(message)
        self.terminal = terminal


class InvalidGrant(KeyplaneError):
    """An OAuth2 grant was refused (the token API answers 400 ``invalid_grant``)."""


class Misconfigured(KeyplaneError):
    """The node cannot serve the request as it is set up (illegal_state_exception, 500): an operator must act."""
