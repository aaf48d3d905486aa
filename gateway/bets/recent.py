"""Bets seen inside the receive window: idempotent replays and in-flight duplicates.

A bet is keyed by (wallet, nonce). While its timestamp is inside the receive window
a replay of the same canonical message is answered from here: with the stored
receipt once committed, or with the first request's outcome while it is in flight.
After the window the timestamp check refuses a replay before it gets here, and a
new message reusing the nonce is caught by the database's UNIQUE (wallet, nonce).
Memory is bounded by the bet rate times the window.
"""

from __future__ import annotations

import asyncio
import itertools

__all__ = ["RecentBets", "RecentEntry"]


class RecentEntry:
    """In flight: ``future`` is set. Committed: ``future`` is None and ``receipt`` is set."""

    __slots__ = ("expires_ms", "future", "message", "receipt")

    def __init__(self, message: bytes, future: asyncio.Future[bytes] | None) -> None:
        self.message = message
        self.future = future
        self.receipt = b""
        self.expires_ms = 0


class RecentBets:
    """(wallet, nonce) -> entry, for the bets whose timestamps are still inside the window."""

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self._entries: dict[str, RecentEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(wallet: str, nonce: str) -> str:
        return f"{wallet}:{nonce}"

    def get(self, key: str, now_ms: int) -> RecentEntry | None:
        entry = self._entries.get(key)
        if entry is not None and entry.future is None and entry.expires_ms < now_ms:
            del self._entries[key]
            return None
        return entry

    def begin(self, key: str, message: bytes, future: asyncio.Future[bytes]) -> RecentEntry:
        """Record a bet in flight."""
        entry = self._entries[key] = RecentEntry(message, future)
        return entry

    def committed(self, key: str, receipt: bytes, timestamp: int) -> None:
        """The bet committed: replays inside its window get ``receipt``."""
        entry = self._entries[key]
        entry.receipt = receipt
        entry.future = None
        entry.expires_ms = timestamp + self.window_ms

    def remember(self, key: str, message: bytes, receipt: bytes, timestamp: int) -> None:
        """Load a committed bet (at start-up)."""
        entry = self._entries[key] = RecentEntry(message, None)
        entry.receipt = receipt
        entry.expires_ms = timestamp + self.window_ms

    def forget(self, key: str) -> None:
        """The bet was refused: its nonce stays unused."""
        self._entries.pop(key, None)

    def prune(self, now_ms: int) -> int:
        """Drop expired entries from the oldest on, up to the first live one; return how many.

        Entries are in admission order and expire within window + future skew of it, so
        an expired entry behind a live one waits at most that long; ``get`` never
        returns an expired entry meanwhile.
        """
        entries = self._entries
        dropped = 0
        for entry in entries.values():
            if entry.future is not None or entry.expires_ms >= now_ms:
                break
            dropped += 1
        for key in list(itertools.islice(entries, dropped)):
            del entries[key]
        return dropped
