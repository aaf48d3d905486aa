"""Bounded FIFO batch queue (the specification; ``_queue_c.pyx`` mirrors it)."""

from __future__ import annotations

from collections import deque
from typing import Any

__all__ = ["BatchQueue"]


class BatchQueue:
    """A FIFO of at most ``capacity`` items, drained in groups of up to ``n``."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = int(capacity)
        self._items: deque[Any] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def push(self, item: Any) -> int:
        """Append ``item``; return the new length, or 0 when the queue is full."""
        items = self._items
        if len(items) >= self.capacity:
            return 0
        items.append(item)
        return len(items)

    def head(self) -> Any:
        """The oldest item, or None when empty."""
        return self._items[0] if self._items else None

    def drain(self, n: int) -> list[Any]:
        """Remove and return up to ``n`` oldest items, in order."""
        items = self._items
        count = min(n, len(items))
        if count <= 0:
            return []
        return [items.popleft() for _ in range(count)]
