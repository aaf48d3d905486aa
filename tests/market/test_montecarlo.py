"""The Monte-Carlo's vectorised win rule is the resolver's own rule."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from gateway.market.config import MarketConfig
from gateway.market.resolution import first_win
from tests.market.montecarlo import Cell, Paths, cell_wins


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
