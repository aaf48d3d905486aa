"""A real browser (Debian's chromium, headless, driven by Playwright) and the gateway it
talks to: shipped market defaults, development funding on, the page served by it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.gatewayproc import ROOT, GatewayProcess

CHROMIUM = "/usr/bin/chromium"
# As root Chromium needs --no-sandbox; the rest keeps it off a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "build" / "screenshots"

# The shipped market geometry (5 s columns, 2 s lock-ahead, 21 rows of 20), over the test
# defaults of tests/gatewayproc.py; the quote age stays generous for a busy machine.
WEB_ENV = {
    "TAPGATE_DEV_FUNDING": "1",
    "TAPGATE_MARKET_TICK_INTERVAL_MS": "250",
    "TAPGATE_MARKET_COLUMN_MS": "5000",
    "TAPGATE_MARKET_LOCK_AHEAD_MS": "2000",
    "TAPGATE_MARKET_HORIZON_MS": "60000",
    "TAPGATE_MARKET_SIM_START_PRICE": "100000",
    "TAPGATE_MARKET_SIM_VOLATILITY": "0.8",
    "TAPGATE_MARKET_BAND": "20",
    "TAPGATE_MARKET_GRID_ROWS": "10",
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium; no browser download (the test fails if it is missing). Module
    scope: Playwright's sync API holds a running event loop while it lives, and later
    modules call asyncio.run()."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail("chromium is missing: apt-get install chromium (.ci/run installs it)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def web_gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    """A gateway serving the page, with development funding, stopped after the test."""
    gw = GatewayProcess(tmp_path / "data", WEB_ENV).start()
    yield gw
    if gw.proc is not None:
        gw.stop()


class Console:
    """Every console error and uncaught exception of a page: a test fails on any."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def forgive(self, *fragments: str) -> None:
        """Drop errors a test caused on purpose (a refused request, a dropped socket)."""
        self.errors = [e for e in self.errors if not any(f in e for f in fragments)]


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def frames(page: Page) -> list[dict[str, Any]]:
    """A list that collects every stream frame the page receives, as it arrives."""
    seen: list[dict[str, Any]] = []

    def on_socket(ws: Any) -> None:
        ws.on("framereceived", lambda payload: seen.append(json.loads(payload)))

    page.on("websocket", on_socket)
    return seen
