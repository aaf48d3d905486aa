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
from typing import Any

import numpy as np
import numpy.typing as npt

from gateway.market.config import MarketConfig
from gateway.market.grid import band_bounds, window

__all__ = ["Cell", "Paths", "cell_wins", "tick_paths", "walk_wins", "window_extremes"]

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Cell:
    row: int
    col: int


@dataclass(frozen=True, slots=True)
class Paths:
    """Integer ticks of many paths: ``prices[path, k]`` at ``tick_ms + (k + 1) * dt``
    (whole numbers held as floats: exact below 2**53, and no copy to convert)."""

    prices: Floats
    tick_ms: int
    dt_ms: int

    def times(self) -> Ints:
        return self.tick_ms + self.dt_ms * np.arange(1, self.prices.shape[1] + 1)


def tick_paths(
    normals: npt.NDArray[np.floating[Any]],
    start: float,
    sigma: float,
    dt_ms: int,
    tick_ms: int,
    out: Floats | None = None,
) -> Paths:
    """Driftless log-normal paths from ``start`` driven by standard ``normals`` (paths x
    ticks), rounded to integer ticks the way an exchange quotes them. ``out`` (the shape of
    ``normals``) is reused for the prices: no temporaries the size of the paths."""
    prices = np.empty(normals.shape) if out is None else out
    np.cumsum(normals, axis=1, out=prices)
    prices *= sigma * math.sqrt(dt_ms / 1000.0)
    np.exp(prices, out=prices)
    prices *= start
    np.rint(prices, out=prices)
    np.maximum(prices, 1.0, out=prices)
    return Paths(prices, tick_ms, dt_ms)


def window_extremes(paths: Paths, start_ms: int, end_ms: int) -> tuple[Floats, Floats] | None:
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


def walk_wins(
    cfg: MarketConfig,
    walks: npt.NDArray[np.float32],
    start: float,
    sigma: float,
    start_ms: int,
    cells: Iterable[Cell],
    extremes: dict[tuple[int, int, int], tuple[npt.NDArray[np.float32], ...]] | None = None,
) -> Iterator[tuple[Cell, int]]:
    """``cell_wins`` for the paths ``start * exp(sigma sqrt(dt) * walks)`` rounded to integer
    ticks, without building them: ``walks`` are cumulative sums of standard normals (paths x
    ticks, the first tick at ``start_ms + dt``). A rounded tick is at or above an integer b
    exactly when the price is at or above b - 0.5, so each bound becomes a threshold on the
    walk; ``test_montecarlo.py`` checks the result against ``cell_wins`` on the rounded
    paths. Bounds rise with the row, so the cells a path wins in one column are a run of
    rows, counted for all rows at once. ``extremes`` caches each window's walk maxima and
    minima for other calls on the same walks."""
    dt = cfg.tick_interval_ms
    scale = sigma * math.sqrt(dt / 1000.0)
    times = start_ms + dt * np.arange(1, walks.shape[1] + 1)
    by_col: dict[int, list[Cell]] = {}
    for cell in cells:
        by_col.setdefault(cell.col, []).append(cell)
    cache = {} if extremes is None else extremes
    for col, group in by_col.items():
        first, last = window(cfg, col)
        inside = np.nonzero((times >= first) & (times < last))[0]
        if inside.size == 0:
            yield from ((cell, 0) for cell in group)
            continue
        key = (int(inside[0]), int(inside[-1]) + 1, id(walks))
        if key not in cache:
            block = walks[:, key[0] : key[1]]
            cache[key] = (block.max(axis=1), block.min(axis=1))
        top, bottom = cache[key]
        group.sort(key=lambda c: c.row)
        bounds = [band_bounds(cfg, c.row) for c in group]
        log_start = math.log(start)
        at_least = np.asarray(
            [-np.inf if lo <= 0 else (math.log(lo - 0.5) - log_start) / scale for lo, _ in bounds]
        )
        below = np.asarray([(math.log(hi - 0.5) - log_start) / scale for _, hi in bounds])
        # a path wins cell j iff at_least[j] <= top and below[j] > bottom: j in [lo, hi)
        hi_idx = np.searchsorted(at_least, top, side="right")
        lo_idx = np.searchsorted(below, bottom, side="right")
        some = lo_idx < hi_idx
        size = len(group) + 1
        runs = np.bincount(lo_idx[some], minlength=size) - np.bincount(hi_idx[some], minlength=size)
        for cell, count in zip(group, np.cumsum(runs)[:-1].tolist(), strict=True):
            yield cell, int(count)
