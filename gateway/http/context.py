"""Pure-ASGI middleware: request id, client address, security headers, generic 500s."""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Awaitable, Sequence

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.config import Network
from gateway.errors import ErrorCode, Rejection, internal_rejection
from gateway.http.client_address import ForwardedForInvalid, client_address, rate_key
from gateway.http.errors import send_rejection
from gateway.metrics import Metrics
from gateway.telemetry import EventLog

__all__ = ["RequestContext", "request_id", "client_key"]

log = structlog.get_logger("tapgate.http")

_SANE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
# W3C Trace Context: version-traceid-parentid-flags; an all-zero trace id is invalid.
_TRACEPARENT = re.compile(rb"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
SECURITY_HEADERS = (
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
)
_RESPONSE_START = frozenset(("http.response.start", "websocket.http.response.start"))


def request_id(scope: Scope) -> str:
    return str(scope["tapgate.request_id"])


def client_key(scope: Scope) -> str:
    return str(scope["tapgate.client"])


class RequestContext:
    """Gives every request an id and a client key, and every response the common headers."""

    def __init__(self, app: ASGIApp, trusted_proxies: Sequence[Network], metrics: Metrics) -> None:
        self.app = app
        self.trusted_proxies = tuple(trusted_proxies)
        self.metrics = metrics
        self._prefix = os.urandom(4).hex()
        self._counter = itertools.count(1)
        self._log = EventLog("tapgate.http")  # the request line (module log: the rest)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = forwarded = traceparent = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value
            elif name == b"traceparent":
                traceparent = value
            elif name == b"x-forwarded-for":
                forwarded = value if forwarded is None else forwarded + b"," + value
        if incoming is not None and _SANE_ID.fullmatch(incoming):
            rid = incoming.decode("ascii")
        else:
            rid = f"{self._prefix}-{next(self._counter):x}"
        peer = scope["client"][0] if scope.get("client") else "unknown"
        scope["tapgate.request_id"] = rid
        try:
            address = client_address(peer, forwarded, self.trusted_proxies)
        except ForwardedForInvalid as exc:
            await self._refuse_forwarded(scope, send, rid, str(exc))
            return
        scope["tapgate.address"] = address
        scope["tapgate.client"] = rate_key(address)
        fields: dict[str, object] = {}
        scope["tapgate.log"] = fields  # handlers add wallet, bet_id, batch_id, error
        extra = [(b"x-request-id", rid.encode()), *SECURITY_HEADERS]
        started = False
        status = 500

        def send_with_headers(message: Message) -> Awaitable[None]:
            # the send itself for the caller to await: no coroutine of its own a message
            nonlocal started, status
            if message["type"] in _RESPONSE_START:  # a stream's denial response too
                started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *extra]
            return send(message)

        metrics = self.metrics
        http = scope["type"] == "http"
        if http:  # a stream connection is not a request in flight
            metrics.in_flight.inc()
        begun = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("unhandled_error", request_id=rid, path=scope.get("path"))
            if started or scope["type"] != "http":
                raise
            await send_rejection(
                send_with_headers,
                internal_rejection(),
                rid,
            )
        finally:
            elapsed = time.perf_counter() - begun
            route = _route(scope)
            if http:
                metrics.in_flight.dec()
                metrics.observe_request(route, status, elapsed)
            trace = _TRACEPARENT.fullmatch(traceparent) if traceparent else None
            trace_id = trace.group(1).decode() if trace and trace.group(1).strip(b"0") else None
            self._log.write(
                "info",
                {
                    "event": "request" if http else "stream_closed",
                    "request_id": rid,
                    "trace_id": trace_id,
                    "method": scope.get("method", "GET"),
                    "route": route,
                    "status": status if http or started else None,
                    "duration_ms": round(elapsed * 1_000_000) / 1000,
                    "client": address,
                    **fields,
                },
            )

    def flush_log(self) -> None:
        """Write the request lines this loop turn has logged so far (before ``os._exit``)."""
        self._log.flush()

    async def _refuse_forwarded(self, scope: Scope, send: Send, rid: str, detail: str) -> None:
        """400 before any other work (a stream handshake is closed instead), counted."""
        self.metrics.forwarded_for_invalid.inc()
        log.warning("forwarded_for_invalid", request_id=rid, detail=detail)
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        rejection = Rejection(
            ErrorCode.INVALID_HEADER,
            f"{detail} is not an IP address",
            field="X-Forwarded-For",
        )
        await send_rejection(send, rejection, rid)


def _route(scope: Scope) -> str:
    """A bounded route label: the endpoint's name, never the raw path."""
    if scope["path"] == "/api/bets":
        return "place_bet"
    endpoint = scope.get("endpoint")
    if endpoint is None:  # a worker's tunnelled request: the owner's route names it
        return str(scope.get("tapgate.route", "unmatched"))
    return getattr(endpoint, "__name__", "unmatched")
