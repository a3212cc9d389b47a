"""The ASGI entry point: Elasticsearch's RestController in a few steps.

For every request: negotiate media types, authenticate, route, check the route's action, run the
handler, then render the reply (or the error) with orjson, ``pretty`` and ``filter_path``.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import Message, Receive, Scope, Send

from keyplane import console, request_context, tracebacks
from keyplane import errors as domain
from keyplane.audit import changes
from keyplane.audit.trail import AuditTrail, Origin, failure_of
from keyplane.http import compression, credentials, filter_path, media
from keyplane.http.body import MAX_BODY_BYTES
from keyplane.http.errors import EsError, RawError, from_domain, x_content_parse
from keyplane.http.params import check_unrecognized, parse_bool
from keyplane.http.render import render
from keyplane.http.request import Reply, RestRequest, decoded
from keyplane.http.routing import Route, Router
from keyplane.indices.bulk import BadUpdateLine
from keyplane.metrics.recorder import Timings
from keyplane.security.authorization import authorize
from keyplane.security.identity import Authentication
from keyplane.services import Services
from keyplane.upstream.client import Answer, UpstreamUnavailable
from keyplane.upstream.forward import Forwarded, ScrollNotFound

log = logging.getLogger("keyplane.http")
DEBUG = logging.DEBUG
_REPEATS_KEPT = 4_096  # connections whose last request is remembered (see _Repeat)
_NO_TIMINGS = Timings()  # a _Repeat's before its first answer (never counted in)
RUN_AS_HEADER = credentials.RUN_AS_HEADER.encode()

PRODUCT_HEADER = (b"x-elastic-product", b"Elasticsearch")
_CONTENT_TYPES = {v: (b"content-type", media.response_content_type(v).encode()) for v in (None, 8, 9)}
_CONSOLE = console.PREFIX


class _Repeat:
    """What a connection's last authenticated request needed for its audit line and its metrics.

    A keep-alive connection mostly sends one kind of request again and again (a client polling,
    a health check, a benchmark): the next request of the same caller object, method and path
    takes its access_granted middle and its latency timings from here, with one lookup by the
    connection's client address (the server hands every request of a connection the same tuple)
    instead of one lookup each by five-part keys. The timings are for :attr:`status` (the scheme
    and the authentication outcome follow from the caller object)."""

    __slots__ = ("auth", "method", "path", "middle", "status", "timings")

    def __init__(self, auth: Authentication, method: str, path: str) -> None:
        self.auth = auth
        self.method = method
        self.path = path
        # The audit's access_granted middle, once asked for; "" when this kind of request has none
        # (its route's service decides, it names indices, the event type is off, or it could not be
        # rendered).
        self.middle: str | None = None
        self.status = 0  # no answer has it: the first request counts through the recorder
        self.timings = _NO_TIMINGS


class Dispatcher:
    def __init__(self, router: Router, services: Services) -> None:
        self.router = router
        self.services = services
        self.authenticator = services.authenticator
        self.lifespan: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None
        # Request ids: a random prefix per process and a counter (unique across nodes, cheap to make).
        self._id_prefix = secrets.token_hex(4) + "-"
        self._ids = itertools.count(1)
        self._repeats: dict[tuple[str, int] | None, _Repeat] = {}  # by the connection's client address

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and self.lifespan is not None:
                await self.lifespan(scope, receive, send)
            return
        if scope["path"].startswith(_CONSOLE) and console.is_console_path(scope["path"]):
            # static pages, no authentication: their API calls carry it
            await console.serve(scope, receive, send)
            return
        # Every request pays for what runs from here to the answer: plain locals, no request object
        # before the caller is known, and work skipped for what the request does not carry.
        method: str = scope["method"]
        path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        raw_qs: bytes = scope.get("query_string", b"")
        qs = raw_qs.decode("latin-1") if raw_qs else ""
        # Names come in lower case (the ASGI spec; uvicorn and httpx's ASGI transport lower them). Kept
        # as bytes (the last of a repeated name wins, as before): only the values read are decoded.
        headers: dict[bytes, bytes] = dict(scope["headers"])
        if qs:
            uri = f"{path}?{qs}"
            query = _query(qs)
            pretty = _lenient_bool(query["pretty"]) if "pretty" in query else False
            fpath = query.get("filter_path")
        else:
            uri, query, pretty, fpath = path, {}, False, None
        version: int | None = None
        if (
            method != "HEAD"
            and b"accept-encoding" in headers
            and compression.accepts_gzip(headers[b"accept-encoding"].decode("latin-1"))
        ):
            send = _gzipping(send)
        request_id = f"{self._id_prefix}{next(self._ids)}"
        request_context.request_id.set(request_id)  # each request runs in a task with its own context
        opaque_id: str | None = None
        if b"x-opaque-id" in headers:  # Elasticsearch returns the caller's request id with the answer
            opaque_id = headers[b"x-opaque-id"].decode("latin-1")
            request_context.opaque_id.set(opaque_id)
            send = _with_header(send, (b"x-opaque-id", headers[b"x-opaque-id"]))
        # What the request's metrics, audit events and debug line need; with all three off, nothing.
        # The time the request came is also its access_granted event's: one clock read for both; the
        # time it took only for the metrics and the debug line.
        metrics = self.services.metrics
        audit = self.services.audit
        debug = log.isEnabledFor(DEBUG)
        timed = metrics is not None or debug
        started = perf_counter() if timed or audit is not None else 0.0
        status = 500
        route: Route | None = None
        scheme: str | None = None
        authenticated = 0  # 0: not tried, 1: authenticated, 2: refused (for the metrics)
        auth: Authentication | None = None
        repeat: _Repeat | None = None
        try:
            if b"content-length" in headers:
                _check_declared_length(headers[b"content-length"].decode("latin-1"))
            route, path_params, allowed = self.router.resolve_path(method, path)
            # Credentials come from the headers alone, so an unauthenticated request is refused before
            # its body is read or inflated: it costs little whatever it carries (as Elasticsearch's
            # HTTP header validator does). The server drops the unread body.
            authorization = headers.get(b"authorization")
            credential = credentials.split(authorization.decode("latin-1")) if authorization else None
            if credential is not None:
                scheme = credential[0]
            authenticated = 2
            run_as_header = headers.get(RUN_AS_HEADER)
            run_as = None if run_as_header is None else run_as_header.decode("latin-1")
            try:  # costs nothing when nothing is raised (Python 3.11)
                auth = await self.authenticator.authenticate(credential, uri, run_as)
            except domain.Unauthenticated:
                if audit is not None:
                    _audit_refused(audit, _origin(method, path, scope, request_id, opaque_id), credential)
                raise
            authenticated = 1
            if audit is not None and (audit.logs_success or run_as is not None):
                origin = _origin(method, path, scope, request_id, opaque_id)
                if audit.logs_success:
                    audit.authentication_success(origin, auth)
                if run_as is not None:
                    action = route.action if route is not None else None
                    audit.run_as(origin, auth, run_as, action, granted=auth.run_as_denied is None)
            if b"content-length" in headers or b"transfer-encoding" in headers:
                message = await receive()
                raw_body: bytes = message.get("body", b"")
                if message.get("more_body"):  # the usual case is the whole body in one message
                    raw_body = await _read_rest(receive, raw_body)
            else:
                raw_body = b""  # HTTP/1.1: a request with neither header has no body, nothing to wait for
            if headers.get(b"content-encoding"):
                # most requests are not compressed: no detour through the inflater
                raw_body = await compression.inflate(raw_body, headers[b"content-encoding"].decode("latin-1"))
            sent_body = raw_body  # as the caller sent it, for an upstream (which reads ``source`` itself)
            if not raw_body and "source" in query:
                raw_body = query["source"].encode()
            if b"accept" in headers or (raw_body and b"content-type" in headers):
                version = media.negotiate(
                    _text(headers.get(b"accept")), _text(headers.get(b"content-type")), bool(raw_body)
                )
            if route is None:
                if allowed and method == "OPTIONS":
                    # Elasticsearch answers OPTIONS on a known path with the methods it allows.
                    allow = (b"allow", ",".join(sorted(allowed)).encode())
                    status = 200
                    await _respond(send, method, 200, [PRODUCT_HEADER, allow], b"")
                    return
                if allowed:
                    methods = ", ".join(sorted(allowed))
                    raise RawError(
                        405,
                        {
                            "error": f"Incorrect HTTP method for uri [{uri}] and method [{method}], "
                            f"allowed: [{methods}]",
                            "status": 405,
                        },
                        {"allow": ",".join(sorted(allowed))},
                    )
                raise RawError(400, {"error": f"no handler found for uri [{uri}] and method [{method}]"})
            forwarder = self.services.upstream
            rule = forwarder.rule(method, route.template, path_params) if forwarder is not None else None
            if forwarder is not None and rule is not None:
                # The upstream validates its own parameters (it may know more than Keyplane does).
                authorize(auth, route.action, path_params, self_checked=route.self_checked)
                if audit is not None:
                    origin = _origin(method, path, scope, request_id, opaque_id)
                    audit.access_granted(origin, auth, route.action, path_params.get("index"))
                forwarded = Forwarded(method, route.template, path_params, qs, decoded(headers), sent_body)
                outcome = await forwarder.forward(auth, rule, forwarded)
                if isinstance(outcome, Answer):
                    upstream_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in outcome.headers]
                    status = outcome.status
                    await _respond(send, method, outcome.status, [PRODUCT_HEADER, *upstream_headers], outcome.body)
                    return
                if outcome is not None:
                    status = outcome.status
                    await self._send(send, method, outcome.status, outcome.doc, version, pretty, fpath, {})
                    return
            if query:
                check_unrecognized(path, query.keys(), route.params)
            authorize(auth, route.action, path_params, self_checked=route.self_checked)
            if audit is not None or metrics is not None:
                client = scope.get("client")
                repeat = self._repeats.get(client)
                if repeat is None or repeat.auth is not auth or repeat.path != path or repeat.method != method:
                    repeat = self._repeat(client, auth, method, path)
                if audit is not None:
                    middle = repeat.middle
                    if middle:  # most requests: the line's middle as this connection last had it
                        audit.queue_granted(middle, request_id, opaque_id, started)
                    else:
                        _audit_granted(audit, repeat, auth, route, path_params, scope, request_id, opaque_id, started)
            kept = route.kept if not qs else None  # a query string may shape the answer (pretty, filter_path)
            if kept is not None and (payload := kept.get(auth)) is not None:
                # _answer's JSON headers and the sends below, written out as they are (no call in between).
                status = 200
                ctype = _CONTENT_TYPES.get(version) or _content_type(version)
                headers_out = [PRODUCT_HEADER, ctype, (b"content-length", b"%d" % len(payload))]
                await send({"type": "http.response.start", "status": 200, "headers": headers_out})
                await send({"type": "http.response.body", "body": b"" if method == "HEAD" else payload})
                return
            request = RestRequest(method, path, uri, path_params, query, headers, raw_body, self.services, auth)
            reply = await route.handler(request)
            if type(reply) is Reply:  # noqa: E721 - a plain answer (the usual) builds no Reply
                status, body, extra = reply.status, reply.body, reply.headers
            else:
                status, body, extra = 200, reply, None
            if audit is not None and route.audit_after:
                origin = _origin(method, path, scope, request_id, opaque_id)
                _audit_answered(audit, origin, auth, route, method, path_params, raw_body, body, status)
            headers_out, payload = _answer(body, version, pretty, fpath, extra)
            if kept is not None and status == 200 and run_as is None and not extra and not isinstance(body, bytes):
                kept.put(auth, payload)  # (a run-as caller is a new object each request: nothing to keep)
            # Sent here: no coroutine between the handler and the server on every answer.
            await send({"type": "http.response.start", "status": status, "headers": headers_out})
            await send({"type": "http.response.body", "body": b"" if method == "HEAD" else payload})
        except UpstreamUnavailable as exc:
            # Not an Elasticsearch error: the closest is a gateway's, in Elasticsearch's envelope.
            err = EsError(504 if exc.timed_out else 502, "upstream_unavailable_exception", str(exc))
            status = err.status
            await self._send_error(send, method, err.status, err.body(), err.headers, pretty)
        except BadUpdateLine as exc:  # a forwarded bulk read by Keyplane's parser before it leaves
            err = x_content_parse(str(exc))
            status = err.status
            await self._send_error(send, method, err.status, err.body(), err.headers, pretty)
        except ScrollNotFound as exc:
            err = EsError(404, "search_context_missing_exception", str(exc))
            status = 404
            await self._send_error(send, method, err.status, err.body(), err.headers, pretty)
        except EsError as exc:
            status = exc.status
            if audit is not None and status == 403 and auth is not None:
                origin = _origin(method, path, scope, request_id, opaque_id)
                audit.access(origin, auth, route.action if route else None, path_params.get("index"), False)
            await self._send_error(send, method, exc.status, exc.body(), dict(exc.headers), pretty)
        except domain.KeyplaneError as exc:
            err = from_domain(exc)
            status = err.status
            if audit is not None and status == 403 and auth is not None:
                origin = _origin(method, path, scope, request_id, opaque_id)
                audit.access(origin, auth, route.action if route else None, path_params.get("index"), False)
            await self._send_error(send, method, err.status, err.body(), err.headers, pretty)
        except RawError as exc:
            status = exc.status
            await self._send_error(send, method, exc.status, exc.body, {}, pretty, exc.headers)
        except Exception as exc:  # noqa: BLE001 - a bug must still answer in Elasticsearch's envelope
            log.error("unhandled error on %s %s\n%s", method, path, tracebacks.without_values(exc))
            err = EsError(500, "exception", "internal server error")
            status = 500
            await self._send_error(send, method, 500, err.body(), {}, pretty)
        finally:
            if timed:
                elapsed = perf_counter() - started
                if metrics is not None:
                    # Recorder.request inline for a connection's repeated request (quick): no call.
                    recorder = metrics.recorder
                    if repeat is not None and repeat.status == status and elapsed <= recorder.first_bound:
                        timings = repeat.timings
                        timings.total += elapsed
                        timings.buckets[0] += 1
                    else:
                        template = _template(route)
                        timings = recorder.request(template, method, status, elapsed, scheme, authenticated)
                        if repeat is not None:
                            repeat.status, repeat.timings = status, timings
                if debug:  # the route's template, never the path or query string (they can carry secrets)
                    log.debug("%s %s %d %.3fms %s", method, _template(route), status, elapsed * 1000, request_id)

    def _repeat(self, client: tuple[str, int] | None, auth: Authentication, method: str, path: str) -> _Repeat:
        """A connection's request of a new kind: remembered in place of its last."""
        if len(self._repeats) >= _REPEATS_KEPT:
            self._repeats.clear()
        repeat = self._repeats[client] = _Repeat(auth, method, path)
        return repeat

    async def _send(
        self,
        send: Send,
        method: str,
        status: int,
        body: Any,
        version: int | None,
        pretty: bool,
        fpath: str | None,
        extra: dict[str, str] | None,
    ) -> None:
        headers, payload = _answer(body, version, pretty, fpath, extra)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else payload})

    async def _send_error(
        self,
        send: Send,
        method: str,
        status: int,
        body: Any,
        multi_headers: dict[str, list[str]],
        pretty: bool,
        extra: dict[str, str] | None = None,
    ) -> None:
        headers = [PRODUCT_HEADER, (b"content-type", b"application/json")]
        for name, values in multi_headers.items():
            headers += [(name.lower().encode(), v.encode()) for v in values]
        headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
        await _respond(send, method, status, headers, render(body, pretty))


# Query strings come back (a client polling one key, ``?pretty``, ``?refresh=true``): parsed once each.
_QUERIES: dict[str, dict[str, str]] = {}


def _query(qs: str) -> dict[str, str]:
    """The parameters of a query string (the last of a repeated name wins), as a dict of the caller's own."""
    parsed = _QUERIES.get(qs)
    if parsed is None:
        parsed = dict(parse_qsl(qs, keep_blank_values=True))
        if len(qs) > 200:  # long ones are rarely repeated: not kept
            return parsed
        if len(_QUERIES) >= 1_000:
            _QUERIES.clear()
        _QUERIES[qs] = parsed
    return parsed.copy()  # handlers may change theirs


def _answer(
    body: Any, version: int | None, pretty: bool, fpath: str | None, extra: dict[str, str] | None
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers and bytes of a handler's answer: JSON (filtered, rendered), or bytes as they are."""
    if isinstance(body, bytes):
        # An answer the handler wrote itself (the cat APIs' text): sent as it is, with its content-type.
        own = [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
        if "content-type" not in {k.lower() for k in extra or ()}:
            own.append(_CONTENT_TYPES.get(version) or _CONTENT_TYPES[None])
        return [PRODUCT_HEADER, *own, (b"content-length", b"%d" % len(body))], body
    if fpath and body is not None:
        body = filter_path.apply(body, fpath)
    payload = b"" if body is None else render(body, pretty)
    ctype = _CONTENT_TYPES.get(version) or _content_type(version)
    if extra:
        own = [(k.encode(), v.encode()) for k, v in extra.items()]
        return [PRODUCT_HEADER, ctype, *own, (b"content-length", b"%d" % len(payload))], payload
    return [PRODUCT_HEADER, ctype, (b"content-length", b"%d" % len(payload))], payload


def _content_type(version: int | None) -> tuple[bytes, bytes]:
    return (b"content-type", media.response_content_type(version).encode())


def _lenient_bool(value: str | None) -> bool:
    try:
        return parse_bool("pretty", value, False)
    except EsError:
        return False


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _check_declared_length(declared: str) -> None:
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise EsError(413, "content_too_long_exception", f"request body is too large ({declared} bytes)")


async def _read_rest(receive: Receive, first: bytes) -> bytes:
    """The rest of a body that came in more than one message, ``first`` its first part."""
    chunks = [first]
    size = len(first)
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise EsError(413, "content_too_long_exception", "request body is too large")
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _with_header(send: Send, header: tuple[bytes, bytes]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message["headers"], header]}
        await send(message)

    return wrapped


def _gzipping(send: Send) -> Send:
    """Wrap ``send`` so that a whole answer of some size goes out gzipped (``_respond`` sends it in one piece)."""
    start: dict[str, Any] = {}

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            return
        body: bytes = message.get("body", b"")
        headers = list(start["headers"])
        if len(body) >= compression.MIN_COMPRESSED_BYTES:
            body = compression.gzip(body)
            headers = [(k, v) for k, v in headers if k != b"content-length"]
            headers += [(b"content-encoding", b"gzip"), (b"vary", b"accept-encoding")]
            headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({**message, "body": body})

    return wrapped


async def _respond(send: Send, method: str, status: int, headers: list[tuple[bytes, bytes]], payload: bytes) -> None:
    headers.append((b"content-length", b"%d" % len(payload)))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else payload})


def _template(route: Route | None) -> str:
    """What the metrics and the debug line name a request by: its route's template, never its path."""
    return route.template if route is not None else "unmatched"


def _origin(method: str, path: str, scope: Scope, request_id: str, opaque_id: str | None) -> Origin:
    """The request's origin for the audit events other than a plain access_granted."""
    return Origin(method, path, scope.get("client"), request_id, opaque_id)


def _audit_granted(
    audit: AuditTrail,
    repeat: _Repeat,
    auth: Authentication,
    route: Route,
    path_params: dict[str, str],
    scope: Scope,
    request_id: str,
    opaque_id: str | None,
    started: float,
) -> None:
    """A request's access_granted when its connection has no middle kept for it: the first of its
    kind, or one whose event is not a kept middle (none, or one naming indices)."""
    if not audit.logs_granted or route.self_checked:  # a self-checked route's comes after the handler
        repeat.middle = ""
        return
    method, path = repeat.method, repeat.path
    if "index" in path_params:
        repeat.middle = ""
        origin = _origin(method, path, scope, request_id, opaque_id)
        audit.access_granted(origin, auth, route.action, path_params["index"])
        return
    middle = repeat.middle = audit.middle(auth, route.action, method, path, scope.get("client"))
    if middle:
        audit.queue_granted(middle, request_id, opaque_id, started)


def _audit_refused(audit: AuditTrail, origin: Origin, credential: tuple[str, str] | None) -> None:
    if credential is None:
        audit.anonymous_access_denied(origin)
    else:
        failure, realm = failure_of(*credential)
        audit.authentication_failed(origin, failure, realm)


def _audit_answered(
    audit: AuditTrail,
    origin: Origin,
    auth: Authentication,
    route: Route,
    method: str,
    path_params: dict[str, str],
    raw_body: bytes,
    answer: Any,
    status: int,
) -> None:
    """After a handler answered: the access a self-checked route's service allowed, and what changed."""
    if route.self_checked:
        audit.access_granted(origin, auth, route.action, path_params.get("index"))
    if route.action not in changes.CHANGES:
        return
    try:
        body = orjson.loads(raw_body) if raw_body else None
    except orjson.JSONDecodeError:  # a non-JSON body the handler accepted (none today): described without it
        body = None
    request = changes.Request(method, route.template, path_params, body, answer)
    for change_action, change in changes.describe(route.action, request):
        audit.security_change(origin, auth, route.action, change_action, change, status)
