"""The house edge holds in the live game: every offered cell, in every situation.

For each situation the grid is priced by the gateway's own code (its volatility estimator
fed integer ticks, ``price_grid`` with the shipped defaults), and each offered cell's
return (multiplier x P(win)) is simulated under the true price process with the live rules
(integer ticks every 250 ms, the resolver's win rule: ``walk_wins`` in
tests/market/montecarlo.py, tested against ``cell_wins`` and ``first_win``). Every
cell's one-sided 97.5% upper bound must be at most 1 - edge/2, with enough paths that two
standard errors are at most edge/4 (7M paths: a cell near P = 0.01 needs them).

Situations (docs/PRICING.md, "The requirement"):
- steady sigma, with the estimate at the 2.5th and at the 97.5th percentile of its own
  sampling distribution (found among independent histories run through the estimator);
- sigma x2 and x0.5, 5, 15 and 30 s after the change (the history whose band is at the
  adverse 2.5th or 97.5th percentile among independent continuations);
- a player who sees the price LEAD_MS (250) before the gateway on an external feed, and the
  same player while the feed stalls, betting on a quote at its largest age (the move at its
  2.5th and 97.5th percentiles).

Slow (3.5 minutes on two cores here; the histories and the paths run on every core,
tests/edge/cores.py): marked ``edge`` and run once by ``make test-edge``, not in both
fastpath modes. TAPGATE_EDGE_PATHS lowers the path count for a quick local look
(the precision assertion then fails, by design).
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from gateway.market.config import MarketConfig
from gateway.market.grid import column_open
from gateway.market.pricing import LEAD_Z, Quote, price_grid
from gateway.market.volatility import SigmaBand
from tests.edge.cores import Situation, count_wins, estimated_bands, estimator, feed
from tests.edge.game import play
from tests.market.montecarlo import Cell

pytestmark = pytest.mark.edge

SIGMA = 1.0 / math.sqrt(365.25 * 24 * 3600)  # the simulated market's default volatility
SIM = MarketConfig("SIM-USD")  # shipped defaults, simulated feed (lead 0)
EXTERNAL = MarketConfig("EXT-USD", feed="external", oracle_key="0" * 64)  # lead 250 ms
PRICE = 100_000
TICK_MS = 1_800_000_000_130  # the last tick; not on a column edge
PATHS = int(os.environ.get("TAPGATE_EDGE_PATHS", "7000000"))
CHUNK = 250_000
HISTORIES = 120
SEED = 20261129


@dataclass(frozen=True)
class CellResult:
    cell: Cell
    multiplier: int
    priced: float
    simulated: float
    upper: float  # one-sided 97.5% bound of the return
    se: float


def _ticks(logs: np.ndarray, end_price: float) -> list[int]:
    return [int(p) for p in np.maximum(1, np.rint(end_price * np.exp(logs - logs[-1])))]


def _steps(rng: np.random.Generator, n: int, sigma: float, dt: int) -> np.ndarray:
    return rng.standard_normal(n) * (sigma * math.sqrt(dt / 1000.0))


def _offered(cfg: MarketConfig, band: SigmaBand, price: int, bet_ms: int) -> dict[Cell, Quote]:
    """The cells a bet placed at ``bet_ms`` can take, priced after the tick at TICK_MS."""
    grid = price_grid(cfg, 1, price, TICK_MS, band)
    return {Cell(r, c): q for (r, c), q in grid.items() if column_open(cfg, c, bet_ms)}


def _steady(rng: np.random.Generator) -> list[Situation]:
    dt = SIM.tick_interval_ms
    histories = [
        _ticks(np.cumsum(_steps(rng, SIM.vol_window + 1, SIGMA, dt)), PRICE)
        for _ in range(HISTORIES)
    ]
    bands = estimated_bands(SIM, histories, TICK_MS)
    k = round(0.025 * (HISTORIES - 1))
    low = sorted(bands, key=lambda b: b.high)[k]  # the estimate at its 2.5th percentile
    high = sorted(bands, key=lambda b: b.low)[-1 - k]  # ... and at its 97.5th
    return [
        Situation(f"steady, estimate low ({low.estimate / SIGMA:.3f})", SIM,
                  _offered(SIM, low, PRICE, TICK_MS), SIGMA, PRICE, TICK_MS),
        Situation(f"steady, estimate high ({high.estimate / SIGMA:.3f})", SIM,
                  _offered(SIM, high, PRICE, TICK_MS), SIGMA, PRICE, TICK_MS),
    ]  # fmt: skip


def _changes(rng: np.random.Generator) -> Iterator[Situation]:
    dt = SIM.tick_interval_ms
    base = estimator(SIM)
    base_logs = np.cumsum(_steps(rng, SIM.vol_window + 1, SIGMA, dt))
    base_ticks = _ticks(base_logs, PRICE)
    start_ms = TICK_MS - 120_000
    feed(base, base_ticks, start_ms, dt)
    snapshot = pickle.dumps(base)  # each history continues a copy (deepcopy: 13x slower)
    for factor in (2.0, 0.5):
        for seconds in (5, 15, 30):
            n = seconds * 1000 // dt
            outcomes = []
            for _ in range(HISTORIES):
                est = pickle.loads(snapshot)  # noqa: S301 # dumped just above
                logs = np.cumsum(_steps(rng, n, factor * SIGMA, dt))
                prices = [int(p) for p in np.maximum(1, np.rint(base_ticks[-1] * np.exp(logs)))]
                feed(est, prices, start_ms + n * dt, dt)
                band = est.band()
                assert band is not None
                outcomes.append((band, prices[-1]))
            k = round(0.025 * (HISTORIES - 1))
            if factor > 1:  # far cells gain from a higher sigma: the band's top at its 2.5th
                band, price = sorted(outcomes, key=lambda o: o[0].high)[k]
            else:  # the price's own band gains from a lower one: the bottom at its 97.5th
                band, price = sorted(outcomes, key=lambda o: o[0].low)[-1 - k]
            now = start_ms + n * dt
            grid = price_grid(SIM, 1, price, now, band)
            offered = {Cell(r, c): q for (r, c), q in grid.items() if column_open(SIM, c, now)}
            yield Situation(
                f"sigma x{factor:g}, {seconds} s later (band {band.low / SIGMA:.2f}"
                f"..{band.high / SIGMA:.2f} of the old sigma)",
                SIM,
                offered,
                factor * SIGMA,
                price,
                now,
            )


def _lead(rng: np.random.Generator) -> Iterator[Situation]:
    """An external feed's player sees the price ``seen_ms`` after the last tick: the lead,
    and the lead plus the largest quote age while the feed stalls."""
    cfg = EXTERNAL
    dt = cfg.tick_interval_ms
    est = estimator(cfg)
    feed(est, _ticks(np.cumsum(_steps(rng, cfg.vol_window + 1, SIGMA, dt)), PRICE), TICK_MS, dt)
    band = est.band()
    assert band is not None
    for what, seen_ms in (
        ("lead", cfg.lead),
        ("lead during a stall", cfg.lead + cfg.max_quote_age_ms),
    ):
        assert seen_ms % dt == 0, "the known price must sit on the tick grid"
        offered = _offered(cfg, band, PRICE, TICK_MS + seen_ms)
        for z in (-LEAD_Z, LEAD_Z):
            start = PRICE * math.exp(z * SIGMA * math.sqrt(seen_ms / 1000))
            yield Situation(
                f"{what} {seen_ms} ms, move {z:+.2f} sd", cfg, offered, SIGMA, start,
                TICK_MS + seen_ms,
            )  # fmt: skip


def _simulate(situations: list[Situation]) -> dict[str, list[CellResult]]:
    out = {}
    for s, wins in zip(situations, count_wins(situations, PATHS, CHUNK, SEED), strict=True):
        rows = []
        for cell, quote in s.grid.items():
            p = wins[cell] / PATHS
            m = quote.multiplier / 100
            se = m * math.sqrt(max(p * (1 - p), 1.0 / PATHS) / PATHS)
            rows.append(CellResult(cell, quote.multiplier, quote.p_win, p, m * p + 1.96 * se, se))
        out[s.name] = rows
    return out


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest) -> dict[str, tuple[MarketConfig, list[CellResult]]]:
    """Simulate the situations of the tests that were collected, sharing the paths' random
    numbers (each family's histories come from its own seed, whatever is selected)."""
    selected = {
        item.callspec.params["situation"]
        for item in request.session.items
        if hasattr(item, "callspec") and "situation" in item.callspec.params
    }
    families = (
        ("steady", _steady, SEED + 1),
        ("sigma", _changes, SEED + 2),
        ("lead", _lead, SEED + 3),
    )
    situations = [
        s
        for prefix, build, seed in families
        if any(name.startswith(prefix) for name in selected)
        for s in build(np.random.default_rng(seed))
        if any(s.name.startswith(name) for name in selected)
    ]
    simulated = _simulate(situations)
    return {s.name: (s.cfg, simulated[s.name]) for s in situations}


SITUATIONS = (
    "steady, estimate low",
    "steady, estimate high",
    "sigma x2, 5 s",
    "sigma x2, 15 s",
    "sigma x2, 30 s",
    "sigma x0.5, 5 s",
    "sigma x0.5, 15 s",
    "sigma x0.5, 30 s",
    "lead 250 ms, move -1.96",
    "lead 250 ms, move +1.96",
    "lead during a stall 750 ms, move -1.96",
    "lead during a stall 750 ms, move +1.96",
)


@pytest.mark.parametrize("situation", SITUATIONS)
def test_every_offered_cell_keeps_the_edge(
    results: dict[str, tuple[MarketConfig, list[CellResult]]], situation: str
) -> None:
    """Each offered cell's simulated return, at its 97.5% upper bound, is at most
    1 - edge/2, measured to two standard errors of at most edge/4."""
    (name,) = [n for n in results if n.startswith(situation)]
    cfg, cells = results[name]
    edge = cfg.house_edge_bps / 10_000
    assert len(cells) > 50, name
    worst = max(cells, key=lambda c: c.upper)
    print(f"{name}: {len(cells)} cells, worst {worst}")
    assert worst.upper <= 1 - edge / 2, (name, worst)
    imprecise = [c for c in cells if 2 * c.se > edge / 4]
    assert not imprecise, (name, imprecise[:3])


def test_even_stakes_under_steady_sigma_leave_the_configured_edge_plus_at_most_two_points() -> None:
    """A 10-minute game staking evenly on every offered unclamped cell after every tick:
    the expected edge is between the configured edge and two points more, and the realised
    edge agrees with it within its 95% interval."""
    game = play(SIM, SIGMA, 2400, warmup=SIM.vol_window, seed=SEED)
    tally = game.unclamped
    edge = SIM.house_edge_bps / 10_000
    low, high = tally.interval()
    print(f"unclamped: {tally.bets} bets, expected {tally.expected_edge():.4f}, "
          f"realised {tally.edge():.4f} [{low:.4f}, {high:.4f}]")  # fmt: skip
    assert tally.bets > 400_000
    assert edge <= tally.expected_edge() <= edge + 0.02
    assert low <= tally.expected_edge() <= high
