"""The Monte-Carlo's vectorised win rule is the resolver's own rule."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from gateway.market.config import MarketConfig
from gateway.market.resolution import first_win
from tests.market.montecarlo import Cell, Paths, cell_wins, tick_paths, walk_wins


@given(
    st.lists(st.integers(1, 60), min_size=1, max_size=12),
    st.integers(0, 12),
    st.integers(1, 20),
)
def test_cell_wins_equals_first_win(prices: list[int], row: int, band: int) -> None:
    """cell_wins counts a path exactly when first_win finds a winning tick in its window."""
    cfg = MarketConfig("T-USD", band=band, column_ms=100)
    paths = Paths(np.asarray([prices], dtype=np.int64), tick_ms=0, dt_ms=1)  # ticks at 1..n ms
    ((_, wins),) = cell_wins(cfg, paths, [Cell(row, 0)])
    low, high = row * band, (row + 1) * band
    assert wins == (first_win(prices, low, high) is not None)


def test_walk_wins_equals_cell_wins_on_the_rounded_paths() -> None:
    """The threshold shortcut counts exactly the wins of the integer-tick paths it stands
    for, on cells near and far of a price with a fractional start."""
    cfg = MarketConfig("T-USD", band=20, column_ms=1000, tick_interval_ms=250)
    rng = np.random.default_rng(5)
    walks = np.cumsum(rng.standard_normal((20_000, 16)), axis=1)
    start, sigma = 1003.3, 0.02
    increments = np.diff(np.concatenate([np.zeros((20_000, 1)), walks], axis=1), axis=1)
    paths = tick_paths(increments, start, sigma, 250, 0)
    cells = [Cell(row, col) for row in range(45, 56) for col in range(1, 4)]
    exact = dict(cell_wins(cfg, paths, cells))
    shortcut = dict(walk_wins(cfg, walks.astype(np.float32), start, sigma, 0, cells))
    assert exact == shortcut
    assert 0 < min(exact.values()) and max(exact.values()) < 20_000
