"""The reference client in a real browser: from an empty browser to a settled bet, on a
phone and a desk, through a dropped stream, and the API explorer."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from gateway.http.web import PAGE_POLICY
from tests.browser.conftest import Console, frames, screenshot
from tests.browser.proxy import CuttableProxy
from tests.gatewayproc import GatewayProcess, wait_for

pytestmark = pytest.mark.browser

STAKE = 100
FUNDING = 1000
# bounds for a busy machine, not speeds: a 5 s column settles about 7 s after a tap
SETTLED_WITHIN_MS = 90_000
_MOVED = ("multiplier_below_minimum", "cell_closed")  # the price moved between show and tap


def _open(
    browser: Browser, gw: GatewayProcess, base: str = "", **context: Any
) -> tuple[Page, Console, list[dict[str, Any]]]:
    """The page loaded (from ``base``, the gateway's own URL unless given) and live; its
    console and the stream frames it receives."""
    page = browser.new_context(**context).new_page()
    console = Console(page)
    seen = frames(page)
    page.goto((base or gw.url) + "/")
    expect(page.locator("#link")).to_have_text("live", timeout=30_000)
    expect(page.locator("button.cell:not([disabled])").first).to_be_visible(timeout=30_000)
    return page, console, seen


def _fund(page: Page) -> None:
    page.click("#fund")
    expect(page.locator("#balance")).to_have_text(f"{FUNDING:,}", timeout=30_000)


def _price_row_cell(page: Page) -> Any:
    """The open cell on the price's row in the second column: a likely win, and one that
    stays open for seconds after it is picked (the first column may lock meanwhile). The
    locator names the cell, so a redraw that moves the price row does not change it."""
    cells = page.locator("button.cell.price-row:not([disabled])")
    expect(cells.nth(1)).to_be_visible(timeout=30_000)
    return page.locator(f'button.cell[data-cell="{cells.nth(1).get_attribute("data-cell")}"]')


def _tap(page: Page, touch: bool, console: Console) -> tuple[str, dict[str, Any]]:
    """Tap a likely cell until the gateway takes the bet (a player taps again when the
    multiplier moved below the one shown, as the page tells them); the id of the cell the
    page bet on and the 202 receipt."""
    for _ in range(5):
        cell = _price_row_cell(page)
        with page.expect_response(lambda r: r.url.endswith("/api/bets")) as placed:
            cell.tap() if touch else cell.click()
        response = placed.value
        # the cell the page bet on: the grid redraws at the tick rate (20 Hz here), so a
        # tap can land on the neighbour that moved under the finger between aim and touch
        cell_id = str((response.request.post_data_json or {})["cell_id"])
        if response.status == 409 and response.json()["error"]["code"] in _MOVED:
            expect(page.locator("#toast")).to_have_text(re.compile("Tap again|closed"))
            console.forgive("status of 409")  # Chromium logs the refused request it handled
            continue
        assert response.status == 202, response.text()
        return cell_id, response.json()
    raise AssertionError("five taps in a row found the price moved")


def _settled(gw: GatewayProcess, bet_id: str) -> str:
    """The bet's status in the database once the resolver has decided it."""
    status = ""

    def decided() -> bool:
        nonlocal status
        with gw.database() as db:
            row = db.execute("SELECT status FROM bets WHERE id = ?", (int(bet_id),)).fetchone()
        status = str(row[0])
        return status != "accepted"

    wait_for(decided, SETTLED_WITHIN_MS / 1000, f"bet {bet_id} to settle")
    return status


def test_a_player_funds_taps_a_cell_and_sees_the_result(
    browser: Browser, web_gateway: GatewayProcess
) -> None:
    """Fund from the page, tap the grid (202), the result arrives on the stream, the cell
    and the balance show it; no console error on the way."""
    page, console, seen = _open(browser, web_gateway, viewport={"width": 1280, "height": 800})
    _fund(page)
    cell_id, receipt = _tap(page, touch=False, console=console)
    assert receipt["amount"] == STAKE and receipt["balance"] == FUNDING - STAKE
    marked = page.locator(f'button.cell[data-cell="{cell_id}"]')
    expect(marked).to_have_attribute("data-state", re.compile("accepted|won|lost|void"))
    status = _settled(web_gateway, receipt["bet_id"])
    expect(marked).to_have_attribute("data-state", status, timeout=30_000)
    payout = receipt["potential_payout"] if status == "won" else STAKE if status == "void" else 0
    expect(page.locator("#balance")).to_have_text(f"{FUNDING - STAKE + payout:,}")
    results = [f for f in seen if f.get("type") == "bet_result"]
    assert [(r["bet_id"], r["status"]) for r in results] == [(receipt["bet_id"], status)]
    screenshot(page, "client-1280x800")
    assert console.errors == []


def test_the_page_fits_a_phone_and_every_target_takes_a_thumb(
    browser: Browser, web_gateway: GatewayProcess
) -> None:
    """At 390x844 with touch: no horizontal scroll, every control at least 44 x 44 px,
    and a tap on a cell places a bet."""
    page, console, _ = _open(
        browser, web_gateway, viewport={"width": 390, "height": 844}, has_touch=True,
        is_mobile=True, device_scale_factor=2,
    )  # fmt: skip
    _fund(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    small = page.evaluate(
        """() => [...document.querySelectorAll('button, summary, textarea')]
            .filter((el) => el.getClientRects().length)
            .map((el) => ({what: el.dataset.cell || el.id || el.textContent.trim(),
                           w: el.getBoundingClientRect().width,
                           h: el.getBoundingClientRect().height}))
            .filter((box) => box.w < 44 || box.h < 44)"""
    )
    assert small == []
    cell_id, receipt = _tap(page, touch=True, console=console)
    assert receipt["cell_id"] == cell_id
    screenshot(page, "client-390x844")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert console.errors == []


def test_the_page_recovers_a_result_settled_while_its_stream_was_down(
    browser: Browser, web_gateway: GatewayProcess
) -> None:
    """The page's network drops after the tap (a proxy cuts every connection and refuses
    new ones) until the bet has settled, so the result can never arrive on the stream; once
    the network is back the page reconnects by itself and shows the result, as the API
    reports it."""
    proxy = CuttableProxy(web_gateway.port)
    try:
        page, console, seen = _open(
            browser, web_gateway, base=proxy.url, viewport={"width": 1280, "height": 800}
        )
        _fund(page)
        _, receipt = _tap(page, touch=False, console=console)
        proxy.cut()
        expect(page.locator("#link")).to_have_text("reconnecting", timeout=30_000)
        status = _settled(web_gateway, receipt["bet_id"])
        assert proxy.refused > 0  # the page kept trying while the network was down
        proxy.restore()
        expect(page.locator("#link")).to_have_text("live", timeout=60_000)
        result = page.locator(f'#bets [data-bet="{receipt["bet_id"]}"]')
        expect(result).to_have_class(status, timeout=30_000)
        assert not [f for f in seen if f.get("type") == "bet_result"]  # not from the stream
    finally:
        proxy.close()
    console.forgive("WebSocket", "net::ERR_", "Failed to fetch")  # the cut network
    assert console.errors == []


def test_the_explorer_shows_every_operation_under_the_page_policy(
    browser: Browser, web_gateway: GatewayProcess
) -> None:
    """/docs renders Swagger UI from the package's files with no console error (its
    policy forbids inline scripts), one entry per operation of /openapi.json."""
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    console = Console(page)
    response = page.goto(web_gateway.url + "/docs")
    assert response is not None and PAGE_POLICY in response.headers["content-security-policy"]
    operations = httpx.get(web_gateway.url + "/openapi.json").json()["paths"]
    count = sum(len(ops) for ops in operations.values())
    expect(page.locator(".opblock")).to_have_count(count, timeout=30_000)
    screenshot(page, "docs-1280x800")
    assert console.errors == []
