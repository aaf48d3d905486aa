"""The house edge over a long simulated game, per class of cell, and its plot.

    .venv/bin/python bench/edge.py [--minutes 100] [--seed 1] [--plot docs/pricing-returns.png]

In process with the gateway's own parts (tests/edge/game.py): integer ticks of a
log-normal price at the simulated market's default volatility go through the gateway's
volatility estimator; after every tick the grid is priced by ``price_grid`` with the
shipped defaults and one stake goes on every offered cell; every bet is settled by the
resolver's ``cell_outcome`` with the gateway's payout rounding. Prints, per class (near:
priced P >= 0.2; far: the other unclamped cells; clamped: paying the maximum multiplier),
the realised edge with its 95% interval (batch means over blocks of 20 columns) and the
expected edge (each bet's outcome replaced by its probability under the true process).
The plot shows the expected return (payout x P(win) / stake) by row and column offset.
Results, with the command and date, go in docs/PRICING.md.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.market.config import MarketConfig
from tests.edge.game import CLASSES, Game, play

SIGMA = 1.0 / math.sqrt(365.25 * 24 * 3600)


def report(game: Game, seconds: float) -> str:
    cfg = game.cfg
    minutes = game.ticks * cfg.tick_interval_ms / 60_000
    lines = [
        f"{game.ticks} ticks of play ({minutes:.0f} min simulated, "
        f"{seconds:.0f} s), house edge configured {cfg.house_edge_bps / 100:.2f}%",
        f"{'class':<10} {'bets':>10} {'realised edge [95% interval]':>36} {'expected edge':>14}",
    ]
    for name, tally in [*((c, game.classes[c]) for c in CLASSES), ("unclamped", game.unclamped)]:
        low, high = tally.interval()
        lines.append(
            f"{name:<10} {tally.bets:>10,} {tally.edge():>12.2%} "
            f"[{low:>8.2%}, {high:>8.2%}] {tally.expected_edge():>14.2%}"
        )
    return "\n".join(lines)


def plot(game: Game, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = sorted({r for r, _ in game.by_offset})
    cols = sorted({c for _, c in game.by_offset})
    grid = np.full((len(rows), len(cols)), np.nan)
    for (r, c), (stake, _, expected) in game.by_offset.items():
        grid[rows.index(r), cols.index(c)] = expected / stake
    fig, ax = plt.subplots(figsize=(9, 6))
    extent = (cols[0] - 0.5, cols[-1] + 0.5, rows[0] - 0.5, rows[-1] + 0.5)
    image = ax.imshow(
        grid, origin="lower", aspect="auto", cmap="viridis", vmin=0.5, vmax=1.0, extent=extent
    )
    fig.colorbar(image, label="expected return per unit staked")
    edge = game.cfg.house_edge_bps / 10_000
    ax.set_title(f"Expected return by cell (1 - edge = {1 - edge:.2f}); max {np.nanmax(grid):.3f}")
    ax.set_xlabel("column, counted from the first open column")
    ax.set_ylabel("row, counted from the price's row")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=100.0, help="simulated play")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    cfg = MarketConfig("SIM-USD")
    ticks = int(args.minutes * 60_000 / cfg.tick_interval_ms)
    started = time.monotonic()
    game = play(cfg, SIGMA, ticks, warmup=cfg.vol_window, seed=args.seed)
    print(report(game, time.monotonic() - started))
    if args.plot is not None:
        plot(game, args.plot)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
