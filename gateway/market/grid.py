"""Grid geometry: which prices and times a cell covers, and whether it takes bets now.

``cell-<row>-<col>`` covers prices [row*band, (row+1)*band) during
[col*column_ms, (col+1)*column_ms) in unix milliseconds. No I/O, no clock: ``now_ms``
is always passed in.
"""

from __future__ import annotations

from gateway.market.config import MarketConfig

__all__ = ["band_bounds", "column_open", "open_columns", "window"]


def band_bounds(cfg: MarketConfig, row: int) -> tuple[int, int]:
    """[low, high) of the row's price band."""
    return row * cfg.band, (row + 1) * cfg.band


def window(cfg: MarketConfig, col: int) -> tuple[int, int]:
    """[start, end) of the column's time window in unix ms."""
    return col * cfg.column_ms, (col + 1) * cfg.column_ms


def column_open(cfg: MarketConfig, col: int, now_ms: int) -> bool:
    """A column takes bets while it starts at least lock-ahead and at most horizon after now."""
    lead = col * cfg.column_ms - now_ms
    return cfg.lock_ahead_ms <= lead <= cfg.horizon_ms


def open_columns(cfg: MarketConfig, now_ms: int) -> range:
    """Every column open at ``now_ms``, earliest first."""
    first = -(-(now_ms + cfg.lock_ahead_ms) // cfg.column_ms)  # ceiling division
    last = (now_ms + cfg.horizon_ms) // cfg.column_ms
    return range(first, last + 1)
