"""The house-edge simulation's two heavy loops, spread over every core: the volatility
estimator fed long histories, and the random walks counted chunk by chunk.

Each chunk of paths draws from its own seed, spawned from one ``SeedSequence``, so the
counts are the same whichever process counts a chunk and however many processes there are.
Every situation is counted on the same walks (``walk_wins`` shares their window extremes).
Kept free of pytest: the worker processes are spawned (no fork of the pytest process) and
import this module, not the test's.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import repeat

import numpy as np

from gateway.market.config import MarketConfig
from gateway.market.grid import window
from gateway.market.pricing import Quote
from gateway.market.volatility import SigmaBand, VolEstimator
from tests.market.montecarlo import Cell, walk_wins

__all__ = ["Situation", "count_wins", "estimated_bands", "estimator", "feed"]


@dataclass(frozen=True)
class Situation:
    name: str
    cfg: MarketConfig
    grid: dict[Cell, Quote]  # the cells offered when the bet is placed
    sigma: float  # of the true process from here on
    start: float  # the price the true process starts from ...
    start_ms: int  # ... at this time (ticks follow every tick interval)


def estimator(cfg: MarketConfig) -> VolEstimator:
    return VolEstimator(cfg.vol_window, cfg.vol_short_window, cfg.min_ticks - 1)


def feed(est: VolEstimator, prices: list[int], last_ms: int, dt: int) -> None:
    """Ticks at ``dt`` apart, the last at ``last_ms``."""
    for i, price in enumerate(prices):
        est.add(last_ms - dt * (len(prices) - 1 - i), price)


def _pool(tasks: int) -> ProcessPoolExecutor:
    workers = min(tasks, len(os.sched_getaffinity(0)))
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def _band(cfg: MarketConfig, prices: list[int], last_ms: int) -> SigmaBand:
    est = estimator(cfg)
    feed(est, prices, last_ms, cfg.tick_interval_ms)
    band = est.band()
    assert band is not None, "a history shorter than the estimator's minimum"
    return band


def estimated_bands(cfg: MarketConfig, histories: list[list[int]], last_ms: int) -> list[SigmaBand]:
    """The band a fresh estimator gives after each history of ticks (the last at ``last_ms``)."""
    with _pool(len(histories)) as pool:
        return list(pool.map(_band, repeat(cfg), histories, repeat(last_ms)))


def _ticks(situations: Sequence[Situation]) -> int:
    """Ticks each walk needs: up to the end of the last offered column of any situation."""
    return max(
        (window(s.cfg, max(c.col for c in s.grid))[1] - s.start_ms) // s.cfg.tick_interval_ms + 1
        for s in situations
    )


def _count_chunk(
    situations: Sequence[Situation], seed: np.random.SeedSequence, paths: int, ticks: int
) -> list[list[int]]:
    """Wins of each situation's cells (in ``grid`` order) on ``paths`` fresh walks."""
    walks = np.random.default_rng(seed).standard_normal((paths, ticks), dtype=np.float32)
    np.cumsum(walks, axis=1, out=walks)
    extremes: dict[tuple[int, int, int], tuple[np.ndarray, ...]] = {}
    counts = []
    for s in situations:
        won = dict(walk_wins(s.cfg, walks, s.start, s.sigma, s.start_ms, s.grid, extremes))
        counts.append([won[cell] for cell in s.grid])
    return counts


def count_wins(
    situations: Sequence[Situation], paths: int, chunk: int, seed: int
) -> list[dict[Cell, int]]:
    """On how many of ``paths`` walks each offered cell wins, per situation."""
    sizes = [min(chunk, paths - done) for done in range(0, paths, chunk)]
    seeds = np.random.SeedSequence(seed).spawn(len(sizes))
    ticks = _ticks(situations)
    totals = [[0] * len(s.grid) for s in situations]
    with _pool(len(sizes)) as pool:
        chunks = pool.map(_count_chunk, repeat(situations), seeds, sizes, repeat(ticks))
        for counts in chunks:
            for total, part in zip(totals, counts, strict=True):
                total[:] = [a + b for a, b in zip(total, part, strict=True)]
    return [
        dict(zip(s.grid, total, strict=True)) for s, total in zip(situations, totals, strict=True)
    ]
