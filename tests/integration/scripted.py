"""A scripted oracle for market tests: a thread that posts signed ticks every 50 ms.

The price at each moment comes from a script (a function of the tick's timestamp), and
``pause`` intervals send nothing, so a test knows exactly which cells must win, lose or
be voided.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx

from gateway.client.feeder import Feeder
from gateway.client.wallet import Wallet
from tests.gatewayproc import GatewayProcess

ORACLE = Wallet.from_seed_hex("0f" * 32)
BAND = 100
COLUMN_MS = 500

MARKET_ENV = {
    "TAPGATE_MARKETS": "BTC-USD",
    "TAPGATE_MARKET_FEED": "external",
    "TAPGATE_MARKET_ORACLE_KEY": ORACLE.address,
    "TAPGATE_MARKET_BAND": str(BAND),
    "TAPGATE_MARKET_COLUMN_MS": str(COLUMN_MS),
    "TAPGATE_MARKET_LOCK_AHEAD_MS": "200",
    "TAPGATE_MARKET_TICK_FUTURE_MS": "150",  # below the lock-ahead (a start-up rule)
    "TAPGATE_MARKET_HORIZON_MS": "4000",
    "TAPGATE_MARKET_GRID_ROWS": "6",
    "TAPGATE_MARKET_TICK_INTERVAL_MS": "50",
    "TAPGATE_MARKET_MIN_TICKS": "10",
    "TAPGATE_MARKET_GAP_LIMIT_MS": "350",
    "TAPGATE_MARKET_GRACE_MS": "300",
    "TAPGATE_MARKET_OUTLIER_FRACTION": "0.1",
    "TAPGATE_MARKET_RECOVER_MS": "300",
    "TAPGATE_MARKET_FEED_WARNING_MS": "1000",
    "TAPGATE_MARKET_FEED_CRITICAL_MS": "1500",
    "TAPGATE_MARKET_MAX_QUOTE_AGE_MS": "1400",
    "TAPGATE_MARKET_LEAD_MS": "0",  # the scripted oracle is the only source of its prices
    "TAPGATE_MARKET_MIN_MULTIPLIER": "1.01",
    "TAPGATE_RESOLVE_INTERVAL_MS": "20",
    "TAPGATE_WALLET_RATE": "1000",
    "TAPGATE_WALLET_BURST": "1000",
}


def zigzag(ts_ms: int) -> int:
    """Around 10,050 (row 100), never leaving it: 10,030 / 10,070 alternately."""
    return 10_030 if (ts_ms // 50) % 2 else 10_070


class ScriptedFeed:
    """Posts ``script(ts)`` every 50 ms to whatever URL the gateway has now."""

    def __init__(self, gateway: GatewayProcess, script: Callable[[int], int | None] = zigzag):
        self.gateway = gateway
        self.script = script
        self.sent: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.seq = 0

    def start(self) -> ScriptedFeed:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        feeder: Feeder | None = None
        try:
            while not self._stop.is_set():
                ts = int(time.time() * 1000)
                price = self.script(ts)
                if price is not None:
                    try:
                        url = str(feeder.client.base_url).rstrip("/") if feeder else None
                        if url != self.gateway.url:
                            if feeder is not None:
                                feeder.close()
                            feeder = Feeder(self.gateway.url, "BTC-USD", ORACLE, timeout=2)
                        assert feeder is not None
                        if feeder.send(price, ts).status_code == 200:
                            self.sent.append((ts, price))
                    except httpx.HTTPError:
                        feeder.close()  # type: ignore[union-attr]  # the gateway is restarting
                        feeder = None
                self._stop.wait(0.05 - (time.time() % 0.05))
        finally:
            if feeder is not None:
                feeder.close()


def priced(gateway: GatewayProcess, timeout: float = 10.0) -> None:
    """Wait until the market is priced and its breaker normal."""
    deadline = time.monotonic() + timeout
    while not gateway.markets_ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"market not ready: {gateway.logs()[-1500:]}")
        time.sleep(0.05)
