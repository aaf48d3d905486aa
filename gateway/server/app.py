"""``create_app(settings)``: the ASGI application, wired by its lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

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

__all__ = ["CORS_EXPOSED_HEADERS", "CORS_REQUEST_HEADERS", "TapgateApp", "create_app"]

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
    """Routes ``POST /api/bets`` to the raw-ASGI hot path and the rest to Starlette."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime: Runtime | None = None
        self.metrics = Metrics()
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
        inner: ASGIApp = self._dispatch
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

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/api/bets":
            if scope["method"] != "POST":
                await send_rejection(
                    send,
                    Rejection(
                        ErrorCode.METHOD_NOT_ALLOWED,
                        "use POST /api/bets",
                        headers=((b"allow", b"POST"),),
                    ),
                    request_id(scope),
                )
            elif self._place_bet is None:
                await send_rejection(
                    send,
                    Rejection(ErrorCode.OVERLOADED, "the gateway is starting", retry_after=1.0),
                    request_id(scope),
                )
            else:
                await self._place_bet(scope, receive, send)
            return
        await self.starlette(scope, receive, send)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        runtime = await open_runtime(self.settings, self.metrics)
        runtime.start()
        self.runtime = runtime
        app.state.runtime = runtime
        self._place_bet = PlaceBet(
            runtime.admission, frozenset(self.settings.symbols), self.metrics
        )
        try:
            yield
        finally:
            await runtime.close()


def create_app(settings: Settings) -> TapgateApp:
    """Build the gateway; nothing is opened until the lifespan starts."""
    return TapgateApp(settings)
