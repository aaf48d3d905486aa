"""The resolution rule: when a cell is won, lost or void, from committed ticks.

Pure functions over (ts_ms, price) ticks in source-timestamp order. The pricing check
(tests/market/test_pricing_check.py) imports ``first_win`` from here, so the simulation
applies exactly the rule the resolver applies.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["Outcome", "cell_outcome", "first_win", "largest_gap"]

Outcome = str  # "won" | "lost" | "void"


def first_win(prices: Sequence[int], low: int, high: int) -> int | None:
    """Index of the tick that wins the band [low, high), or None.

    A tick inside the band wins; so does a tick on the opposite side of the band from the
    tick before it (the path crossed the band between them). ``prices`` are the ticks
    inside the cell's window, in order.
    """
    previous: int | None = None
    for i, price in enumerate(prices):
        if low <= price < high:
            return i
        if previous is not None and (
            (previous < low and price >= high) or (previous >= high and price < low)
        ):
            return i
        previous = price
    return None


def largest_gap(timestamps: Sequence[int], start: int, end: int) -> int:
    """The longest stretch of [start, end) without a tick, edges included."""
    if not timestamps:
        return end - start
    gap = max(timestamps[0] - start, end - timestamps[-1])
    for before, after in zip(timestamps, timestamps[1:], strict=False):
        gap = max(gap, after - before)
    return gap


def cell_outcome(
    ticks: Sequence[tuple[int, int]],
    low: int,
    high: int,
    start: int,
    end: int,
    *,
    now_ms: int,
    grace_ms: int,
    gap_limit_ms: int,
) -> tuple[Outcome, int | None] | None:
    """The cell's outcome from the committed ticks inside [start, end), or None if open.

    Returns (outcome, index of the winning tick or None). won: at the first winning tick
    (final). Otherwise, once ``end + grace_ms`` has passed: void if any gap in the window
    exceeds ``gap_limit_ms`` (its stake is refunded), else lost.
    """
    index = first_win([price for _, price in ticks], low, high)
    if index is not None:
        return "won", index
    if now_ms < end + grace_ms:
        return None
    if largest_gap([ts for ts, _ in ticks], start, end) > gap_limit_ms:
        return "void", None
    return "lost", None
