"""The oracle side of the external price feed: sign ticks and post them to a gateway.

An adapter that follows a real exchange needs only this: for each new price, call
``Feeder.send(price, ts_ms)`` (or pipe ``<price> [<ts_ms>]`` lines into
``tapgate feed``). The feeder numbers ticks (``seq`` strictly increasing, resumed from the
gateway's last accepted tick), signs each over
``tapgate:tick:v1\\n<market>\\n<seq>\\n<price>\\n<ts_ms>`` with the oracle key, and posts
them to ``POST /admin/markets/<market>/ticks`` from an address in the admin allowlist.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from gateway.client.wallet import Wallet
from gateway.protocol import tick_message

__all__ = ["Feeder", "signed_tick"]


def signed_tick(key: Wallet, market: str, seq: int, price: int, ts_ms: int) -> dict[str, Any]:
    """One tick as the ticks endpoint takes it."""
    return {
        "seq": seq,
        "price": price,
        "ts": ts_ms,
        "signature": key.sign(tick_message(market, seq, price, ts_ms)),
    }


class Feeder:
    """Posts signed ticks of one market; ``seq`` continues from the gateway's last tick."""

    def __init__(self, url: str, market: str, key: Wallet, *, timeout: float = 5.0) -> None:
        self.client = httpx.Client(base_url=url, timeout=timeout)
        self.market = market
        self.key = key
        self.seq: int | None = None

    def close(self) -> None:
        self.client.close()

    def _resume(self) -> int:
        markets = self.client.get("/api/markets").json()["markets"]
        found = next(m for m in markets if m["market"] == self.market)
        return int(found["seq"] or 0)

    def send(self, price: int, ts_ms: int | None = None) -> httpx.Response:
        """Sign and post one tick (``ts_ms`` defaults to now)."""
        if self.seq is None:
            self.seq = self._resume()
        seq = self.seq + 1
        ts = int(time.time() * 1000) if ts_ms is None else ts_ms
        response = self.client.post(
            f"/admin/markets/{self.market}/ticks",
            json={"ticks": [signed_tick(self.key, self.market, seq, price, ts)]},
        )
        if response.status_code == 200:
            self.seq = seq
        return response
