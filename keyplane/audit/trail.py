"""The audit trail: Elasticsearch's audit events, built from what the REST edge knows of a request.

Field names follow Elasticsearch's logfile audit trail (``event.type``, ``event.action``,
``user.name``, ``authentication.api_key.id``, ``origin.address``, ``request.id``, ``opaque_id``...).
Only identifiers go in: a user name, an API key's id and name, never a password, a secret or a hash,
and never the query string (a ``source`` parameter can carry a request body).

An event's line is built where it happens, on the event loop, from JSON fragments kept between
events, and queued; every few milliseconds the lines queued meanwhile go to the writer's thread as
one chunk, and that thread only appends it to the file. Fragments keep a line cheap: a caller's
fields are serialised once per identity, an origin's once per method, path and client, and the
constant parts once. The usual line, a request's access_granted, is a middle found by one lookup
(kept per caller object, action, method, path and client: realms hand out one Authentication per
cached credential, and a client sends the same request again and again; the dispatcher keeps the one
a connection last had for its next request of the same kind), stamped with the time the request
came (the clock read the dispatcher makes for the metrics too) and its request id.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from time import perf_counter as _clock
from time import time as _now
from typing import Any, NamedTuple

import orjson

from keyplane.apikeys import hashing
from keyplane.audit import events as ev
from keyplane.audit.writer import AuditWriter, Stamps
from keyplane.errors import Unauthenticated
from keyplane.security.authentication import basic_credentials
from keyplane.security.identity import Authentication
from keyplane.security.users import NATIVE_REALM, RESERVED_REALM, User, is_reserved
from keyplane.service_accounts import core as service_accounts

log = logging.getLogger("keyplane.audit")

_AUTHENTICATION_TYPES = {"realm": "REALM", "api_key": "API_KEY", "token": "TOKEN"}


class Origin(NamedTuple):
    """Where a request came from and how it is known: the part every event of the request shares."""

    method: str
    path: str  # without the query string
    client: tuple[str, int] | None  # the client's address and port, as the server saw the connection
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


_REST = "rest"
# The events whose user fields describe who authenticated rather than who the request acts as.
_AUTHENTICATING = frozenset({ev.AUTHENTICATION_SUCCESS, ev.RUN_AS_GRANTED, ev.RUN_AS_DENIED})
_USER_CACHE_SIZE = 10_000
_PATH_CACHE_SIZE = 1_000
_MIDDLE_CACHE_SIZE = 4_096  # lines' middles of ~500 bytes: about 2 MB at most
_END = '"}\n'  # after the request id, when the request has no X-Opaque-Id
_FRAGMENTS = 4  # every queued line is four text fragments (see queue_granted and _emit)
HAND_OFF_INTERVAL_SECONDS = 0.01  # how long a queued line waits at most to go to the writer with the ones after it


class AuditTrail:
    def __init__(self, path: Path, capacity: int, enabled: frozenset[str], node_name: str, node_id: str) -> None:
        self.writer = AuditWriter(path, capacity)
        self.enabled = enabled
        self.node_name = node_name
        self.node_id = node_id
        # The fragment caches below are used on the event loop's thread only.
        self._stamps = Stamps(_now, _clock)
        self._heads = {kind: self._head(_REST, kind) for kind in ev.EVENT_TYPES}
        self._actions: dict[str, bytes] = {}
        self._users: dict[tuple[Any, ...], tuple[User, User, bytes]] = {}
        self._last_origin: Origin | None = None
        self._last_origin_fields = b""
        self._last_user: tuple[Authentication | None, bool, bytes] = (None, False, b"")
        self._places: dict[tuple[Any, ...], bytes] = {}  # (method, path, client) -> the origin's first fields
        self._middles: dict[tuple[Any, ...], tuple[User, User, str]] = {}  # see _keep
        # (caller, action, method, path, client) -> middle: see middle.
        self._kept: dict[tuple[Any, ...], str] = {}
        # The lines of the events queued since the last hand-off, _FRAGMENTS fragments of text each
        # (encoded once per hand-off, not once per fragment), and how long that list may grow before
        # the next hand-off: a fragment's room for each event the writer's buffer had room for at the
        # last one. A hand-off timer runs while the list is not empty.
        self._parts: list[str] = []
        self._limit = capacity * _FRAGMENTS
        self._timer: asyncio.TimerHandle | None = None
        self.logs_success = ev.AUTHENTICATION_SUCCESS in enabled  # the dispatcher skips the call otherwise
        self.logs_granted = ev.ACCESS_GRANTED in enabled

    def figures(self) -> tuple[int, int, int, int]:
        """Events waiting (to be handed off or written), written, dropped by a full buffer, lost otherwise."""
        buffered, written, dropped, lost = self.writer.figures()
        return buffered + len(self._parts) // _FRAGMENTS, written, dropped, lost

    def flush(self) -> None:
        """Hand what is queued now to the writer (before it is closed)."""
        if self._timer is not None:
            self._timer.cancel()
        self.hand_off()

    # -- authentication --------------------------------------------------------------------------

    def authentication_success(self, origin: Origin, auth: Authentication) -> None:
        if ev.AUTHENTICATION_SUCCESS in self.enabled:
            self._emit(ev.AUTHENTICATION_SUCCESS, origin, auth, None, None, None)

    def authentication_failed(self, origin: Origin, failure: Failure, realm: str | None) -> None:
        fields = _failure(failure)
        if realm is not None and ev.REALM_AUTHENTICATION_FAILED in self.enabled:
            detail = {**fields, "realm": realm}
            self._emit(ev.REALM_AUTHENTICATION_FAILED, origin, None, None, None, detail)
        if ev.AUTHENTICATION_FAILED in self.enabled:
            self._emit(ev.AUTHENTICATION_FAILED, origin, None, None, None, fields)

    def anonymous_access_denied(self, origin: Origin) -> None:
        if ev.ANONYMOUS_ACCESS_DENIED in self.enabled:
            self._emit(ev.ANONYMOUS_ACCESS_DENIED, origin, None, None, None, None)

    def run_as(self, origin: Origin, auth: Authentication, target: str, action: str | None, granted: bool) -> None:
        kind = ev.RUN_AS_GRANTED if granted else ev.RUN_AS_DENIED
        if kind in self.enabled:
            detail: dict[str, Any] = {"user.run_as.name": target}
            if granted:
                detail["user.run_as.realm"] = auth.lookup_realm.get("name")
            self._emit(kind, origin, auth, action, None, detail)

    # -- authorization ---------------------------------------------------------------------------

    def access(
        self, origin: Origin, auth: Authentication, action: str | None, index: str | None, granted: bool
    ) -> None:
        """An action allowed or refused; ``index`` is the request's comma-separated index names, if any."""
        if granted:
            self.access_granted(origin, auth, action, index)
        elif ev.ACCESS_DENIED in self.enabled:
            self._emit(ev.ACCESS_DENIED, origin, auth, action, index, None)

    def access_granted(self, origin: Origin, auth: Authentication, action: str | None, index: str | None) -> None:
        """An action allowed: the event of nearly every request."""
        if self.logs_granted:
            if index:
                self._emit(ev.ACCESS_GRANTED, origin, auth, action, index, None)
            else:
                self.granted(auth, action, *origin, _clock())

    def granted(
        self,
        auth: Authentication,
        action: str | None,
        method: str,
        path: str,
        client: tuple[str, int] | None,
        request_id: str,
        opaque_id: str | None,
        when: float,
    ) -> None:
        """A request's access_granted without indices, when :attr:`logs_granted`, taken apart (no
        :class:`Origin`): :meth:`middle`, then :meth:`queue_granted`. ``when`` is a time of
        :func:`time.perf_counter`."""
        middle = self.middle(auth, action, method, path, client)
        if middle:
            self.queue_granted(middle, request_id, opaque_id, when)

    def middle(
        self, auth: Authentication, action: str | None, method: str, path: str, client: tuple[str, int] | None
    ) -> str:
        """An access_granted line's fields between its time and its request id (event type, caller,
        action, origin); "" when they cannot be rendered (counted as unrendered).

        Kept per caller object, action, method, path and client, and found by one lookup: realms
        hand out one :class:`Authentication` per cached credential for as long as nothing about it
        changes (a change makes a new object), and callers compare and hash by identity. The
        dispatcher keeps what it was given for a connection's next request of the same kind."""
        middle = self._kept.get((auth, action, method, path, client))
        if middle is None:
            try:
                middle = self._keep(auth, action, method, path, client)
            except Exception as exc:  # noqa: BLE001 - the audit log must never fail the request it describes
                self._unrendered(exc)
                return ""
        return middle

    def queue_granted(self, middle: str, request_id: str, opaque_id: str | None, when: float) -> None:
        """Queue a request's access_granted line of the :meth:`middle` given: the event of nearly every
        request. ``when`` is the time the request came, of :func:`time.perf_counter`, read by the
        dispatcher for its metrics too."""
        parts = self._parts
        queued = len(parts)
        if queued >= self._limit:
            self.writer.dropped += 1
            return
        # Most events fall in the millisecond of the one before. The monotonic clock only moves
        # forward, so one comparison does: an event of a request that came before the millisecond
        # (and waited, say, on the store) is stamped with it, the time it is allowed.
        stamps = self._stamps
        head = stamps.head if when < stamps.until else stamps.begin(when)
        parts += (head, middle, request_id, _END if opaque_id is None else _opaque_end(opaque_id))
        if not queued:
            self._schedule()

    # -- security changes ------------------------------------------------------------------------

    def security_change(
        self, origin: Origin, auth: Authentication, action: str, change_action: str, change: dict[str, Any], status: int
    ) -> None:
        if ev.SECURITY_CONFIG_CHANGE in self.enabled:
            detail = {
                "event.action": change_action,
                "event.outcome": "success" if status < 300 else "failure",
                "http.response.status_code": status,
                **change,
            }
            self._emit(ev.SECURITY_CONFIG_CHANGE, origin, auth, action, None, detail)

    def _emit(
        self,
        kind: str,
        origin: Origin,
        auth: Authentication | None,
        action: str | None,
        index: str | None,
        detail: dict[str, Any] | None,
    ) -> None:
        """Queue one event's line; when the buffer is full, count it as dropped instead."""
        parts = self._parts
        queued = len(parts)
        if queued >= self._limit:
            self.writer.dropped += 1
            return
        when = _clock()
        try:
            fields = self._fields(kind, origin, auth, action, index, detail).decode()
        except Exception as exc:  # noqa: BLE001 - the audit log must never fail the request it describes
            self._unrendered(exc)
            return
        parts += (self._stamps.begin(when), fields, "", "")  # _FRAGMENTS, as every line
        if not queued:
            self._schedule()

    def _unrendered(self, exc: Exception) -> None:
        self.writer.unrendered += 1
        log.error("could not render an audit event: %s", type(exc).__name__)

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on an event loop (a command, a test): handed off at once
            self.hand_off()
            return
        self._timer = loop.call_later(HAND_OFF_INTERVAL_SECONDS, self.hand_off)

    def hand_off(self) -> None:
        """Hand the lines queued since the last call to the writer as one chunk."""
        self._timer = None
        writer = self.writer
        if self._parts:
            writer.put("".join(self._parts).encode(), len(self._parts) // _FRAGMENTS)
            self._parts = []
        # Until the next hand-off, the writer's buffer only empties: what is free now is safe to queue.
        self._limit = (writer.capacity - writer.buffered()) * _FRAGMENTS

    # -- the line ---------------------------------------------------------------------------------
    #
    # A line is joined from JSON fragments: the constant head of each event type, the timestamp, the
    # caller's fields (serialised once per identity), the route action, and the request's origin
    # (serialised once per request: its events come one after another). Serialising a whole dict per
    # event costs several times as much. A request's access_granted, most of the lines, is its
    # timestamp, one kept middle and its request id.

    def _keep(
        self, auth: Authentication, action: str | None, method: str, path: str, client: tuple[str, int] | None
    ) -> str:
        """A middle not kept yet, made and kept under the caller object for :meth:`middle`.

        A caller built anew for each request (one no realm keeps) finds the middle its fields were
        serialised to under ``_caller_key`` (the user objects' ids, checked against the objects
        themselves, so that an id reused by a new object never finds the old one's fields)."""
        key = (action, method, path, client, _caller_key(auth))
        found = self._middles.get(key)
        if found is not None and found[0] is auth.user and found[1] is auth.authenticating_user:
            middle = found[2]
        else:
            if len(self._middles) >= _MIDDLE_CACHE_SIZE:
                self._middles.clear()
            middle = b"".join(
                (
                    self._heads[ev.ACCESS_GRANTED],
                    self._user(auth, False),
                    self._action(action) if action is not None else b"",
                    self._place((method, path, client)),
                )
            ).decode()
            self._middles[key] = (auth.user, auth.authenticating_user, middle)
        if len(self._kept) >= _MIDDLE_CACHE_SIZE:
            self._kept.clear()
        self._kept[(auth, action, method, path, client)] = middle
        return middle

    def _fields(
        self,
        kind: str,
        origin: Origin,
        auth: Authentication | None,
        action: str | None,
        index: str | None,
        detail: dict[str, Any] | None,
    ) -> bytes:
        """A line's fields after its timestamp, for the other events (indices, details, no caller)."""
        if kind == ev.SECURITY_CONFIG_CHANGE and detail is not None:
            detail = dict(detail)
            head = self._head(ev.SECURITY_CONFIG_CHANGE, detail.pop("event.action"))
        else:
            head = self._heads.get(kind) or self._head(_REST, kind)
        parts = [head]
        if auth is not None:
            parts.append(self._user(auth, kind in _AUTHENTICATING))
        if action is not None:
            parts.append(self._action(action))
        if index:
            parts.append(b',"indices":' + orjson.dumps(index.split(",")))
        if detail:
            parts.append(b"," + orjson.dumps(detail)[1:-1])
        parts.append(self._origin(origin))
        return b"".join(parts)

    def _head(self, event_type: str, action: str) -> bytes:
        fields = {
            "node.name": self.node_name,
            "node.id": self.node_id,
            "event.type": event_type,
            "event.action": action,
        }
        return b'",' + orjson.dumps(fields)[1:-1]

    def _action(self, action: str) -> bytes:
        found = self._actions.get(action)
        if found is None:
            if len(self._actions) >= _USER_CACHE_SIZE:
                self._actions.clear()
            found = self._actions[action] = b',"action":' + orjson.dumps(action)
        return found

    def _user(self, auth: Authentication, authenticating: bool) -> bytes:
        """The caller's fields, serialised once per identity.

        Keyed by the user objects' ids (realms and the key cache share them between requests),
        checked against the objects themselves, so that an id reused by a new object is never
        mistaken for the old one. The last answer is kept apart: a request's events come together."""
        last = self._last_user
        if last[0] is auth and last[1] is authenticating:
            return last[2]
        key = (_caller_key(auth), authenticating)
        found = self._users.get(key)
        if found is not None and found[0] is auth.user and found[1] is auth.authenticating_user:
            fragment = found[2]
        else:
            if len(self._users) >= _USER_CACHE_SIZE:
                self._users.clear()
            fragment = b"," + orjson.dumps(_caller(auth, authenticating=authenticating))[1:-1]
            self._users[key] = (auth.user, auth.authenticating_user, fragment)
        self._last_user = (auth, authenticating, fragment)
        return fragment

    def _place(self, where: tuple[str, str, tuple[str, int] | None]) -> bytes:
        """The origin's fields before its request id, serialised once per method, path and client."""
        prefix = self._places.get(where)
        if prefix is None:
            if len(self._places) >= _PATH_CACHE_SIZE:
                self._places.clear()
            prefix = self._places[where] = _place(*where)
        return prefix

    def _origin(self, origin: Origin) -> bytes:
        """The origin fields and the line's end; a request's events come one after another.

        Joined rather than serialised from a dict: the fields up to the request id are serialised
        once per client address, method and path (orjson escapes them); the request id is
        Keyplane's own (hex and digits) and goes in as it is."""
        if origin is self._last_origin:
            return self._last_origin_fields
        prefix = self._place(origin[:3])
        if origin.opaque_id is None:
            fragment = b"".join((prefix, origin.request_id.encode(), b'"}\n'))
        else:
            opaque = orjson.dumps(origin.opaque_id)
            fragment = b"".join((prefix, origin.request_id.encode(), b'","opaque_id":', opaque, b"}\n"))
        self._last_origin, self._last_origin_fields = origin, fragment
        return fragment


def _opaque_end(opaque_id: str) -> str:
    """What follows the request id in the line of a request that sent an X-Opaque-Id."""
    return '","opaque_id":' + orjson.dumps(opaque_id).decode() + "}\n"


def _caller_key(auth: Authentication) -> tuple[Any, ...]:
    """What a caller's fields depend on, the user objects by their ids (see ``AuditTrail._user``)."""
    api_key, token = auth.api_key, auth.token
    return (
        id(auth.user),
        id(auth.authenticating_user),
        auth.type,
        tuple(auth.roles),
        (api_key.get("id"), api_key.get("name")) if api_key else None,
        token.get("name") if token else None,
    )


def _place(method: str, path: str, client: tuple[str, int] | None) -> bytes:
    """An origin's fields before its request id."""
    address = b',"origin.address":' + orjson.dumps(f"{client[0]}:{client[1]}") if client is not None else b""
    return b',"origin.type":"rest"%b,"url.path":%b,"request.method":%b,"request.id":"' % (
        address,
        orjson.dumps(path),
        orjson.dumps(method),
    )


def _caller(auth: Authentication, *, authenticating: bool) -> dict[str, Any]:
    """The user fields: the effective user, and who ran as them when that is someone else."""
    event: dict[str, Any] = {"authentication.type": _AUTHENTICATION_TYPES.get(auth.type, auth.type.upper())}
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
    return event


def _failure(failure: Failure) -> dict[str, Any]:
    event: dict[str, Any] = {}
    if failure.principal is not None:
        event["user.name"] = failure.principal
    if failure.api_key_id is not None:
        event["authentication.api_key.id"] = failure.api_key_id
    if failure.token_name is not None:
        event["authentication.token.name"] = failure.token_name
    # No reason text: Keyplane's messages quote the request's URI, query string included.
    event["authentication.scheme"] = failure.scheme
    return event
