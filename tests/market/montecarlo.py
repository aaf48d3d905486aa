"""Monte-Carlo of the live game's rules: integer ticks every dt, the resolver's win rule.

Shared by the pricing checks (tests/market, tests/edge) and bench/edge.py. A cell wins
iff the largest tick of its window is at or above ``low`` and the smallest is below
``high`` (equivalent to ``gateway.market.resolution.first_win``: a tick in the band, or two
consecutive ticks on opposite sides of it; ``test_montecarlo.py`` checks the equivalence).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gateway.market.config import MarketConfig
from gateway.market.grid import band_bounds, window

__all__ = ["Cell", "Paths", "cell_wins", "tick_paths", "window_extremes"]

Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Cell:
    row: int
    col: int


@dataclass(frozen=True, slots=True)
class Paths:
    """Integer ticks of many paths: ``prices[path, k]`` at ``tick_ms + (k + 1) * dt``."""

    prices: Ints
    tick_ms: int
    dt_ms: int

    def times(self) -> Ints:
        return self.tick_ms + self.dt_ms * np.arange(1, self.prices.shape[1] + 1)


def tick_paths(
    normals: npt.NDArray[np.float64], start: float, sigma: float, dt_ms: int, tick_ms: int
) -> Paths:
    """Driftless log-normal paths from ``start`` driven by standard ``normals`` (paths x
    ticks), rounded to integer ticks the way an exchange quotes them."""
    steps = normals * (sigma * math.sqrt(dt_ms / 1000.0))
    logs = np.cumsum(steps, axis=1)
    prices = np.maximum(1, np.rint(start * np.exp(logs))).astype(np.int64)
    return Paths(prices, tick_ms, dt_ms)


def window_extremes(paths: Paths, start_ms: int, end_ms: int) -> tuple[Ints, Ints] | None:
    """(max, min) of each path's ticks inside [start, end), or None if none falls in it."""
    times = paths.times()
    inside = np.nonzero((times >= start_ms) & (times < end_ms))[0]
    if inside.size == 0:
        return None
    block = paths.prices[:, inside[0] : inside[-1] + 1]
    return block.max(axis=1), block.min(axis=1)


def cell_wins(cfg: MarketConfig, paths: Paths, cells: Iterable[Cell]) -> Iterator[tuple[Cell, int]]:
    """(cell, number of paths on which it wins) under the resolver's rule."""
    by_col: dict[int, list[Cell]] = {}
    for cell in cells:
        by_col.setdefault(cell.col, []).append(cell)
    for col, group in by_col.items():
        extremes = window_extremes(paths, *window(cfg, col))
        for cell in group:
            if extremes is None:
                yield cell, 0
                continue
            low, high = band_bounds(cfg, cell.row)
            high_tick, low_tick = extremes
            yield cell, int(np.count_nonzero((high_tick >= low) & (low_tick < high)))
