"""Fan-out of live events to stream subscribers, without ever waiting for one.

Each subscriber has a bounded buffer of serialised messages. ``publish`` only appends;
a subscriber whose buffer is full is marked ``overflowed`` and its connection is closed
(close code 1013, "slow consumer") by its own sender task. A slow consumer therefore
costs the gateway one dropped connection, never a wait.
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from typing import Any

import orjson

__all__ = ["Hub", "Subscriber"]


class Subscriber:
    __slots__ = ("address", "challenge", "done", "overflowed", "queue", "subscribes", "wallet")

    def __init__(self, buffer: int) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(buffer)
        self.wallet: str | None = None
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


class Hub:
    def __init__(self, buffer: int) -> None:
        self.buffer = buffer
        self.subscribers: set[Subscriber] = set()
        self._by_wallet: dict[str, set[Subscriber]] = defaultdict(set)
        self._by_address: dict[str, int] = defaultdict(int)
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
        if sub.overflowed:
            self.dropped += 1

    def publish(self, message: dict[str, Any]) -> None:
        """A public event (ticks, grids, breaker changes) to everybody."""
        if not self.subscribers:
            return
        text = orjson.dumps(message).decode()
        for sub in list(self.subscribers):
            sub.offer(text)

    def publish_to(self, wallet: str, message: dict[str, Any]) -> None:
        """A private event (a bet result) to the subscribers following ``wallet``."""
        subs = self._by_wallet.get(wallet)
        if not subs:
            return
        text = orjson.dumps(message).decode()
        for sub in list(subs):
            sub.offer(text)
