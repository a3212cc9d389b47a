"""The audit trail: Elasticsearch's audit events, built from what the REST edge knows of a request.

Field names follow Elasticsearch's logfile audit trail (``event.type``, ``event.action``,
``user.name``, ``authentication.api_key.id``, ``origin.address``, ``request.id``, ``opaque_id``...).
Only identifiers go in: a user name, an API key's id and name, never a password, a secret or a hash,
and never the query string (a ``source`` parameter can carry a request body).
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from keyplane.apikeys import hashing
from keyplane.audit import events as ev
from keyplane.audit.writer import AuditWriter
from keyplane.errors import Unauthenticated
from keyplane.security.authentication import basic_credentials
from keyplane.security.identity import Authentication
from keyplane.security.users import NATIVE_REALM, RESERVED_REALM, is_reserved
from keyplane.service_accounts import core as service_accounts

_AUTHENTICATION_TYPES = {"realm": "REALM", "api_key": "API_KEY", "token": "TOKEN"}


class Origin(NamedTuple):
    """Where a request came from and how it is known: the part every event of the request shares."""

    method: str
    path: str  # without the query string
    address: str | None  # ip:port of the client, from the server's view of the connection
    request_id: str
    opaque_id: str | None


class Failure(NamedTuple):
    """Who a rejected credential named, as far as it can be read without its secret."""

    scheme: str  # basic, apikey, bearer
    principal: str | None  # the username of a Basic credential
    api_key_id: str | None
    token_name: str | None  # a service token's namespace/service/name


def failure_of(scheme: str, value: str) -> tuple[Failure, str | None]:
    """Who a rejected ``Authorization`` header named, and the realm that refused it (Basic only).

    Only the part before the secret is decoded: a username, an API key's id, a service token's name.
    """
    principal = key_id = token = realm = None
    if scheme == "basic":
        try:
            principal, _ = basic_credentials(value, "")
        except Unauthenticated:
            principal = None
        else:
            realm = (RESERVED_REALM if is_reserved(principal) else NATIVE_REALM)["name"]
    elif scheme == "apikey":
        parts = hashing.decode(value)
        key_id = parts[0] if parts is not None else None
    elif scheme == "bearer":
        decoded = service_accounts.decode(value)
        token = decoded[0].key if decoded is not None else None
    return Failure(scheme, principal, key_id, token), realm


class AuditTrail:
    def __init__(self, writer: AuditWriter, enabled: frozenset[str], node_name: str, node_id: str) -> None:
        self.writer = writer
        self.enabled = enabled
        self.node_name = node_name
        self.node_id = node_id

    def wants(self, event_type: str) -> bool:
        return event_type in self.enabled

    def _event(self, event_type: str, action: str) -> dict[str, Any]:
        # The origin's fields are added last, by _finish, as Elasticsearch orders its fields.
        event: dict[str, Any] = {
            "type": "audit",
            "@timestamp": time.time(),  # formatted by the writer
            "node.name": self.node_name,
            "node.id": self.node_id,
            "event.type": event_type,
            "event.action": action,
        }
        return event

    def _finish(self, event: dict[str, Any], origin: Origin) -> None:
        event["origin.type"] = "rest"
        if origin.address is not None:
            event["origin.address"] = origin.address
        event["url.path"] = origin.path
        event["request.method"] = origin.method
        event["request.id"] = origin.request_id
        if origin.opaque_id is not None:
            event["opaque_id"] = origin.opaque_id
        self.writer.put(event)

    # -- authentication --------------------------------------------------------------------------

    def authentication_success(self, origin: Origin, auth: Authentication) -> None:
        if ev.AUTHENTICATION_SUCCESS in self.enabled:
            event = self._event("rest", ev.AUTHENTICATION_SUCCESS)
            _caller(event, auth, authenticating=True)
            self._finish(event, origin)

    def authentication_failed(self, origin: Origin, failure: Failure, realm: str | None) -> None:
        if realm is not None and ev.REALM_AUTHENTICATION_FAILED in self.enabled:
            event = self._event("rest", ev.REALM_AUTHENTICATION_FAILED)
            _failure(event, failure)
            event["realm"] = realm
            self._finish(event, origin)
        if ev.AUTHENTICATION_FAILED in self.enabled:
            event = self._event("rest", ev.AUTHENTICATION_FAILED)
            _failure(event, failure)
            self._finish(event, origin)

    def anonymous_access_denied(self, origin: Origin) -> None:
        if ev.ANONYMOUS_ACCESS_DENIED in self.enabled:
            self._finish(self._event("rest", ev.ANONYMOUS_ACCESS_DENIED), origin)

    def run_as(self, origin: Origin, auth: Authentication, target: str, action: str | None, granted: bool) -> None:
        kind = ev.RUN_AS_GRANTED if granted else ev.RUN_AS_DENIED
        if kind in self.enabled:
            event = self._event("rest", kind)
            _caller(event, auth, authenticating=True)
            event["user.run_as.name"] = target
            if granted:
                event["user.run_as.realm"] = auth.lookup_realm.get("name")
            if action is not None:
                event["action"] = action
            self._finish(event, origin)

    # -- authorization ---------------------------------------------------------------------------

    def access(
        self, origin: Origin, auth: Authentication, action: str | None, indices: list[str] | None, granted: bool
    ) -> None:
        kind = ev.ACCESS_GRANTED if granted else ev.ACCESS_DENIED
        if kind in self.enabled:
            event = self._event("rest", kind)
            _caller(event, auth, authenticating=False)
            if action is not None:
                event["action"] = action
            if indices:
                event["indices"] = indices
            self._finish(event, origin)

    # -- security changes ------------------------------------------------------------------------

    def security_change(
        self, origin: Origin, auth: Authentication, action: str, change_action: str, change: dict[str, Any], status: int
    ) -> None:
        if ev.SECURITY_CONFIG_CHANGE in self.enabled:
            event = self._event(ev.SECURITY_CONFIG_CHANGE, change_action)
            _caller(event, auth, authenticating=False)
            event["action"] = action
            event["event.outcome"] = "success" if status < 300 else "failure"
            event["http.response.status_code"] = status
            event.update(change)
            self._finish(event, origin)


def _caller(event: dict[str, Any], auth: Authentication, *, authenticating: bool) -> None:
    """The user fields: the effective user, and who ran as them when that is someone else."""
    event["authentication.type"] = _AUTHENTICATION_TYPES.get(auth.type, auth.type.upper())
    if auth.is_run_as and not authenticating:
        event["user.name"] = auth.user.username
        event["user.realm"] = auth.lookup_realm.get("name")
        event["user.run_by.name"] = auth.authenticating_user.username
        event["user.run_by.realm"] = auth.authentication_realm.get("name")
    else:
        event["user.name"] = auth.authenticating_user.username
        event["user.realm"] = auth.authentication_realm.get("name")
    if auth.roles and not authenticating:
        event["user.roles"] = auth.roles
    if auth.api_key is not None:
        event["authentication.api_key.id"] = auth.api_key.get("id")
        if auth.api_key.get("name") is not None:
            event["authentication.api_key.name"] = auth.api_key["name"]
    if auth.token is not None:
        event["authentication.token.name"] = auth.token.get("name")
        event["authentication.token.type"] = auth.token.get("type")


def _failure(event: dict[str, Any], failure: Failure) -> None:
    if failure.principal is not None:
        event["user.name"] = failure.principal
    if failure.api_key_id is not None:
        event["authentication.api_key.id"] = failure.api_key_id
    if failure.token_name is not None:
        event["authentication.token.name"] = failure.token_name
    # No reason text: Keyplane's messages quote the request's URI, query string included.
    event["authentication.scheme"] = failure.scheme
