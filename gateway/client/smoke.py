"""``tapgate smoke``: after an install, upgrade or rollback, prove the release serves bets,
without moving any money.

Waits (up to a bound) for ``/healthz``, ``/readyz`` and an open grid, then signs a bet with
a fresh, never funded wallet on the market's likeliest open cell of its latest column. The
gateway runs the market checks (breaker, pricing, quote age, the cell) before the balance,
so the answer 409 ``insufficient_funds`` proves parsing, the signature, the market and its
pricing; nothing is credited, reserved or stored. Any other answer fails the smoke test.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from gateway.client.wallet import Wallet, bet_body, post_bet

__all__ = ["SmokeResult", "smoke"]

POLL_S = 0.5


@dataclass(frozen=True)
class SmokeResult:
    ok: bool
    detail: str


def _ready_grid(client: httpx.Client, market: str) -> list[dict[str, object]] | None:
    try:
        if client.get("/readyz").status_code != 200:
            return None
        cells: list[dict[str, object]] = client.get(f"/api/markets/{market}/grid").json()["cells"]
    except (httpx.HTTPError, ValueError, KeyError):
        return None
    return cells or None


def smoke(url: str, market: str, timeout_s: float) -> SmokeResult:
    """The smoke test against the gateway at ``url``; waits up to ``timeout_s`` for it."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=url, timeout=5) as client:
        while (cells := _ready_grid(client, market)) is None:
            if time.monotonic() > deadline:
                return SmokeResult(False, f"no ready gateway with an open {market} grid at {url}")
            time.sleep(POLL_S)
        last = max(int(str(c["col"])) for c in cells)
        cell = min(
            (c for c in cells if c["col"] == last), key=lambda c: float(str(c["multiplier"]))
        )
        body = bet_body(Wallet.generate(), market=market, cell_id=str(cell["cell_id"]), amount=1)
        answer = post_bet(client, body)
    try:
        code = answer.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = None
    if answer.status_code == 409 and code == "insufficient_funds":
        return SmokeResult(True, f"a signed bet on {cell['cell_id']} reached the balance check")
    return SmokeResult(False, f"bet answered {answer.status_code} {answer.text[:300]}")
