"""``create_app(settings)``: the ASGI application, wired by its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from prometheus_client import generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

import fastpath
from gateway.bets.admission import SignatureCheck
from gateway.bets.verifier import BatchVerifier
from gateway.config import Settings
from gateway.errors import ErrorCode, Rejection
from gateway.http import api, markets, web
from gateway.http.bets import PlaceBet
from gateway.http.context import RequestContext, request_id
from gateway.http.errors import send_rejection
from gateway.http.responses import http_exception, internal_error, rejection_response
from gateway.http.stream import stream, stream_without_upgrade
from gateway.metrics import Metrics
from gateway.runtime import Runtime, open_runtime
from gateway.server.channel import Channel
from gateway.server.link import OwnerLink, RemotePlacement

__all__ = ["CORS_EXPOSED_HEADERS", "CORS_REQUEST_HEADERS", "TapgateApp", "create_app"]

OpenChannel = Callable[[], Awaitable[Channel]]
EXIT_OWNER_GONE = 70  # EX_SOFTWARE

# Only what the API uses: browsers get no grant for anything else.
CORS_REQUEST_HEADERS = [
    "content-type",
    "x-request-id",
    "x-tapgate-wallet",
    "x-tapgate-timestamp",
    "x-tapgate-signature",
]
CORS_EXPOSED_HEADERS = [
    "location",
    "retry-after",
    "ratelimit",
    "ratelimit-policy",
    "idempotent-replayed",
    "x-request-id",
]


class TapgateApp:
    """Routes ``POST /api/bets`` to the raw-ASGI hot path and the rest to Starlette.

    With ``owner`` (what opens the owner's channel) it is a worker (ADR 12):
    bets are checked here and admitted by the owner, every other route is tunnelled to the
    owner; no runtime is opened in this process.
    """

    def __init__(self, settings: Settings, owner: OpenChannel | None = None) -> None:
        self.settings = settings
        self.runtime: Runtime | None = None
        self.owner = owner
        self.metrics = Metrics(process=owner is None)  # a worker's: summed into the owner's
        self._place_bet: PlaceBet | None = None
        self.starlette = Starlette(
            routes=[
                *api.routes,
                *markets.routes,
                WebSocketRoute("/api/stream", stream),
                Route("/api/stream", stream_without_upgrade, methods=["GET"]),
                *web.routes(settings),
            ],
            lifespan=self._lifespan,
            exception_handlers={
                Rejection: rejection_response,
                HTTPException: http_exception,
                Exception: internal_error,
            },
        )
        self._rest: ASGIApp = self.starlette  # a worker's: the tunnel, once connected
        inner: ASGIApp = self.dispatch
        if settings.cors_origins:
            inner = CORSMiddleware(
                inner,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST"],
                allow_headers=CORS_REQUEST_HEADERS,
                expose_headers=CORS_EXPOSED_HEADERS,
                max_age=600,
            )
        self._asgi = RequestContext(inner, settings.trusted_proxies, self.metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._asgi(scope, receive, send)

    def dispatch(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """Every route, after the request context (what a worker tunnels to the owner).

        Hands back the route's coroutine for the caller to await: a coroutine of its own
        would be one more frame between uvicorn and the route, every request (ADR 16).
        """
        if scope["type"] == "http" and scope["path"] == "/api/bets":
            if scope["method"] != "POST":
                return send_rejection(
                    send,
                    Rejection(
                        ErrorCode.METHOD_NOT_ALLOWED,
                        "use POST /api/bets",
                        headers=((b"allow", b"POST"),),
                    ),
                    request_id(scope),
                )
            if self._place_bet is None:
                return send_rejection(
                    send,
                    Rejection(ErrorCode.OVERLOADED, "the gateway is starting", retry_after=1.0),
                    request_id(scope),
                )
            return self._place_bet(scope, receive, send)
        if scope["type"] == "lifespan":
            return self.starlette(scope, receive, send)
        return self._rest(scope, receive, send)

    def lifespan(self) -> contextlib.AbstractAsyncContextManager[None]:
        """The runtime (or a worker's link), open for the ``async with`` block."""
        return self._lifespan(self.starlette)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        if self.owner is not None:
            async with self._worker(self.owner):
                yield
            return
        try:
            runtime = await open_runtime(self.settings, self.metrics)
        except Exception:  # one structured line in both modes; the process then exits 3
            structlog.get_logger("tapgate.server").exception("startup_failed")
            raise
        try:
            runtime.start()
            self.runtime = runtime
            app.state.runtime = runtime
            self._place_bet = PlaceBet(
                runtime.admission, frozenset(self.settings.symbols), self.metrics
            )
            yield
        finally:
            await runtime.close()

    @contextlib.asynccontextmanager
    async def _worker(self, owner: OpenChannel) -> AsyncIterator[None]:
        """Connect to the owner; end this process at once if the owner dies."""
        settings = self.settings
        link = OwnerLink(await owner(), settings.stream_buffer)
        link.metrics = lambda: generate_latest(self.metrics.registry)
        loop = asyncio.get_running_loop()
        verifier = BatchVerifier(fastpath.verify_batch, loop) if settings.verify_thread else None
        check = SignatureCheck(settings, verifier, self.metrics.verify_seconds.observe)
        self._place_bet = PlaceBet(
            RemotePlacement(link, check), frozenset(settings.symbols), self.metrics
        )
        self._rest = link.tunnel
        reading = asyncio.create_task(link.run())
        watching = asyncio.create_task(_stop_when(link.gone, self._asgi.flush_log))
        if verifier is not None:
            verifier.start()
        link.channel.send("ready")
        try:
            yield
        finally:
            watching.cancel()
            if verifier is not None:
                verifier.stop()
            link.channel.close()
            reading.cancel()


async def _stop_when(gone: asyncio.Event, flush_log: Callable[[], None]) -> None:
    """The owner closed the channel without stopping this worker first: it died. So does
    the worker, at once, like one process killed: a request in flight here must not get
    an answer (a 500 would say "failed" of a bet the owner may have committed); its client
    sees the connection drop and retries the same body (idempotent)."""
    await gone.wait()
    flush_log()  # the request lines of this loop turn: os._exit writes no buffer
    structlog.get_logger("tapgate.server").error("owner_gone", pid=os.getpid())
    os._exit(EXIT_OWNER_GONE)


def create_app(settings: Settings, owner: OpenChannel | None = None) -> TapgateApp:
    """Build the gateway (a worker of ``owner``'s); nothing is opened until the lifespan."""
    return TapgateApp(settings, owner)
