"""What a browser meets: the reference client at ``/``, the API explorer at ``/docs``,
and, in development only, ``POST /dev/fund``.

The page and the explorer are static files from the package (``gateway/static``) and from
the pinned ``swagger-ui-bundle-v2`` package: no CDN, no build step. Both HTML documents
carry a strict Content-Security-Policy (scripts, styles and connections from this origin
only), because keys live in the browser. ``/dev/fund`` answers 404 unless
``TAPGATE_DEV_FUNDING`` is on, and even then only to a loopback peer (never a forwarded
address), up to ``TAPGATE_DEV_FUNDING_CAP`` per wallet balance; every funding is logged.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import time
from importlib import resources
from pathlib import Path
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from gateway.bets.pending import credit
from gateway.config import Settings
from gateway.errors import ErrorCode, Rejection
from gateway.http.responses import JSON, json_body
from gateway.runtime import Runtime
from gateway.wire import DEV_FUNDING, invalid

__all__ = ["PAGE_POLICY", "routes"]

log = structlog.get_logger("tapgate.web")

STATIC = Path(str(resources.files("gateway") / "static"))
# Keys live in this page: nothing but this origin's scripts, styles and connections.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HTML_HEADERS = {"content-security-policy": PAGE_POLICY}


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html", headers=_HTML_HEADERS)


class _Static(StaticFiles):
    """Package files, each answer with the page policy (an HTML file opened directly
    gets the same protection as ``/``)."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["content-security-policy"] = PAGE_POLICY
        return response


_FUND_HIDDEN = b'<button id="fund" class="fund" type="button" hidden>'


@functools.cache
def _client_html(fund_button: bool) -> bytes:
    """index.html; its development funding button shown only where it would work."""
    html = (STATIC / "index.html").read_bytes()
    if html.count(_FUND_HIDDEN) != 1:
        raise RuntimeError("index.html: the fund button is not where web.py expects it")
    return (
        html.replace(_FUND_HIDDEN, _FUND_HIDDEN.replace(b" hidden", b"")) if fund_button else html
    )


async def client_page(request: Request) -> Response:
    """The reference client; its Fund button only for a loopback peer when development
    funding is on (elsewhere ``/dev/fund`` answers 404: the button would only fail)."""
    fund = request.app.state.runtime.settings.dev_funding and _loopback_peer(request)
    return Response(_client_html(fund), media_type="text/html", headers=_HTML_HEADERS)


async def docs_page(request: Request) -> Response:
    """The API explorer (Swagger UI) on /openapi.json."""
    return _page("docs.html")


def _loopback_peer(request: Request) -> bool:
    peer = request.scope.get("client")
    try:
        return peer is not None and ipaddress.ip_address(peer[0]).is_loopback
    except ValueError:
        return False


async def dev_fund(request: Request) -> Response:
    """Development only: credit a wallet from the page, up to the cap, from loopback."""
    rt: Runtime = request.app.state.runtime
    s = rt.settings
    if not s.dev_funding or not _loopback_peer(request):
        raise Rejection(ErrorCode.NOT_FOUND, "no such resource")
    data = DEV_FUNDING.parse(await json_body(request, 1024))
    wallet, amount = data["wallet"], data["amount"]
    room = max(s.dev_funding_cap - rt.accounts.balance(wallet), 0)
    if amount > room:
        raise invalid(
            "amount",
            f"must be at most {room} here: development balances are capped at "
            f"{s.dev_funding_cap} (TAPGATE_DEV_FUNDING_CAP)",
        )
    now_ms = int(time.time() * 1000)
    reference = f"dev:{os.urandom(8).hex()}"
    balance, _ = await credit(rt.writer, rt.accounts, wallet, amount, reference, now_ms)
    log.warning("dev_funding", wallet=wallet, amount=amount, reference=reference)
    return JSON({"wallet": wallet, "amount": amount, "reference": reference, "balance": balance})


def routes(settings: Settings) -> list[BaseRoute]:
    """The browser routes that ``settings`` switch on (``/dev/fund`` always exists and
    answers 404 when funding is off, so the answer does not tell the setting apart from a
    typo)."""
    out: list[BaseRoute] = [Route("/dev/fund", dev_fund, methods=["POST"])]
    if settings.web_client:
        out += [
            Route("/", client_page, methods=["GET"]),
            Mount("/static", _Static(directory=STATIC), name="static"),
        ]
    if settings.api_docs:
        out += [
            Route("/docs", docs_page, methods=["GET"]),
            Mount("/docs/assets", _Static(directory=str(swagger_ui_path)), name="docs"),
        ]
    return out
