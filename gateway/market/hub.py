"""Fan-out of live events to stream subscribers, without ever waiting for one.

Public events travel on one channel per market: a subscriber receives a market's ticks,
grid changes and breaker transitions only while it watches that market. Every message on
a market's channel carries ``stream_seq``, one more than the previous message of that
market, so a client sees a gap; ``watch`` answers with a ``snapshot`` (the market's state
and the whole grid at the current ``stream_seq``) that the following ``grid_delta``
messages apply to. The hub keeps one grid per watched market as the base of the deltas,
computed once per tick whatever the number of watchers.

Each subscriber has a bounded buffer of serialised messages. Publishing only appends; a
subscriber whose buffer is full is marked ``overflowed`` and its connection is closed
(close code 1013, "slow consumer") by its own sender task. A slow consumer therefore
costs the gateway one dropped connection, never a wait.
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["Hub", "Subscriber", "grid_delta"]


class Subscriber:
    __slots__ = (
        "address",
        "challenge",
        "done",
        "markets",
        "overflowed",
        "queue",
        "subscribes",
        "wallet",
    )

    def __init__(self, buffer: int) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(buffer)
        self.wallet: str | None = None
        self.markets: set[str] = set()
        self.address = ""
        self.challenge = os.urandom(16).hex()  # what this connection's subscribe must sign
        self.subscribes = 0
        self.overflowed = False
        self.done = asyncio.Event()

    def offer(self, text: str) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.overflowed = True
            self.done.set()


def grid_delta(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What turns grid ``old`` into grid ``new``: cells that appeared (whole), multipliers
    that changed (by cell id), cells that left (by id), and the price and breaker."""
    before = {c["cell_id"]: c for c in old["cells"]}
    after = {c["cell_id"]: c for c in new["cells"]}
    return {
        "price": new["price"],
        "price_ts": new["price_ts"],
        "breaker": new["breaker"],
        "added": [c for k, c in after.items() if k not in before],
        "changed": {
            k: c["multiplier"]
            for k, c in after.items()
            if k in before and before[k]["multiplier"] != c["multiplier"]
        },
        "removed": [k for k in before if k not in after],
    }


class Hub:
    def __init__(self, buffer: int) -> None:
        self.buffer = buffer
        self.subscribers: set[Subscriber] = set()
        self._by_wallet: dict[str, set[Subscriber]] = defaultdict(set)
        self._by_market: dict[str, set[Subscriber]] = defaultdict(set)
        self._by_address: dict[str, int] = defaultdict(int)
        self._stream_seq: dict[str, int] = defaultdict(int)
        self._grids: dict[str, dict[str, Any]] = {}  # the deltas' base, per watched market
        self.dropped = 0

    def __len__(self) -> int:
        return len(self.subscribers)

    def connections_from(self, address: str) -> int:
        """Open connections from one client address (its rate-limit key)."""
        return self._by_address.get(address, 0)

    def join(self, address: str) -> Subscriber:
        sub = Subscriber(self.buffer)
        sub.address = address
        self._by_address[address] += 1
        self.subscribers.add(sub)
        return sub

    def follow(self, sub: Subscriber, wallet: str) -> None:
        """Send this subscriber ``wallet``'s own bet results from now on."""
        if sub.wallet is not None:
            self._forget_wallet(sub)
        sub.wallet = wallet
        self._by_wallet[wallet].add(sub)

    def watching(self, market: str) -> bool:
        """Whether anybody watches ``market`` (no grid is computed for nobody)."""
        return bool(self._by_market.get(market))

    def watch(
        self,
        sub: Subscriber,
        market: str,
        summary: dict[str, Any],
        grid_now: Callable[[], dict[str, Any]],
    ) -> None:
        """Put ``sub`` on ``market``'s channel and send it a snapshot to apply deltas to.

        The snapshot's grid is the deltas' base, so the next delta fits it; ``grid_now``
        makes that base when nobody watched the market before.
        """
        base = self._grids.get(market)
        if base is None:
            base = self._grids[market] = grid_now()
        sub.markets.add(market)
        self._by_market[market].add(sub)
        snapshot = {
            "type": "snapshot",
            "market": market,
            "stream_seq": self._stream_seq[market],
            "summary": summary,
            "grid": base,
        }
        sub.offer(orjson.dumps(snapshot).decode())

    def unwatch(self, sub: Subscriber, market: str) -> None:
        sub.markets.discard(market)
        subs = self._by_market.get(market)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._by_market[market]
                self._grids.pop(market, None)  # no watcher: the base would go stale

    def _forget_wallet(self, sub: Subscriber) -> None:
        wallet = sub.wallet or ""
        subs = self._by_wallet.get(wallet)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._by_wallet[wallet]

    def leave(self, sub: Subscriber) -> None:
        if sub in self.subscribers:
            self._by_address[sub.address] -= 1
            if not self._by_address[sub.address]:
                del self._by_address[sub.address]
        self.subscribers.discard(sub)
        if sub.wallet is not None:
            self._forget_wallet(sub)
        for market in list(sub.markets):
            self.unwatch(sub, market)
        if sub.overflowed:
            self.dropped += 1

    def publish(self, market: str, message: dict[str, Any]) -> None:
        """A public event of ``market`` (tick, breaker) to its watchers, numbered."""
        subs = self._by_market.get(market)
        self._stream_seq[market] += 1
        if not subs:
            return
        text = orjson.dumps({**message, "stream_seq": self._stream_seq[market]}).decode()
        for sub in list(subs):
            sub.offer(text)

    def publish_grid(self, market: str, grid: dict[str, Any]) -> None:
        """The market's new grid, to its watchers as the change against the last one."""
        base = self._grids.get(market)
        if base is None or not self._by_market.get(market):
            return
        self._grids[market] = grid
        self.publish(market, {"type": "grid_delta", "market": market, **grid_delta(base, grid)})

    def follows(self, wallet: str) -> bool:
        """Whether anybody follows ``wallet``'s bet results (no message is built for nobody)."""
        return bool(self._by_wallet.get(wallet))

    def publish_to(self, wallet: str, message: dict[str, Any]) -> None:
        """A private event (a bet result) to the subscribers following ``wallet``."""
        subs = self._by_wallet.get(wallet)
        if not subs:
            return
        text = orjson.dumps(message).decode()
        for sub in list(subs):
            sub.offer(text)
