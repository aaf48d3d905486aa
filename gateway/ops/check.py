"""``tapgate check``: is the database sound and the ledger balanced?

Runs on a read-only connection, so it is safe while the gateway serves (WAL readers do not
block the writer). Checks: SQLite's integrity and foreign keys, the ledger invariants, and
that no API query scans the bets table in full, that no bet is left unresolved long
after its window and grace, and that each bet's multiplier is the one its recorded quote
gives (every bet), with the quote itself recomputed from its tick for a random sample
(``QUOTE_SAMPLE`` bets: docs/PRICING.md, "Disputes").
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.market.config import MarketConfig
from gateway.market.grid import window
from gateway.market.pricing import cell_probability, multiplier, ticks_in
from gateway.market.volatility import SigmaBand
from gateway.protocol import parse_cell
from gateway.store.invariants import ledger_violations
from gateway.store.reader import QUERIES

__all__ = ["CheckReport", "run_check"]

_EXAMPLE_PARAMS: dict[str, tuple[object, ...]] = {
    "bet": (1,),
    "wallet_open": ("0" * 64,),
    "wallet_bets": ("0" * 64, 1, None, None, 1),
    "wallet_nonce": ("0" * 64, "n"),
    "open_bets": ("BTC-USD",),
}
# How long after its window and grace an open bet counts as overdue (the resolver runs
# every TAPGATE_RESOLVE_INTERVAL_MS; a minute leaves room for a restart).
OVERDUE_SLACK_MS = 60_000
# How many bets per market have their quote recomputed from the tick it names.
QUOTE_SAMPLE = 200
# Recomputation runs the same code on the same inputs: only float noise may differ.
QUOTE_TOLERANCE = 1e-9


@dataclass
class CheckReport:
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def _overdue(conn: sqlite3.Connection, markets: Sequence[MarketConfig], now_ms: int) -> list[str]:
    """Open bets whose window and grace ended long ago: the resolver is not keeping up."""
    out = []
    for cfg in markets:
        rows = conn.execute(QUERIES["open_bets"], (cfg.symbol,))
        for bet_id, _wallet, cell, _amount, _payout in rows:
            end = window(cfg, parse_cell(str(cell))[1])[1]
            if end + cfg.grace_ms + OVERDUE_SLACK_MS < now_ms:
                out.append(f"bet {bet_id} ({cfg.symbol} {cell}) is still open")
                if len(out) >= 10:
                    return out
    return out


def _quotes(conn: sqlite3.Connection, markets: Sequence[MarketConfig]) -> list[str]:
    """Bets whose multiplier is not what their quote gives, or whose quote is not what
    their tick, cell and sigma band give under the market's current settings."""
    out: list[str] = []
    for cfg in markets:
        rows = conn.execute(
            "SELECT id, multiplier, quote_p FROM bets WHERE market = ? AND quote_p IS NOT NULL",
            (cfg.symbol,),
        )
        for bet_id, paid, p_win in rows:
            expected = min(cfg.max_multiplier, multiplier(p_win, cfg.house_edge_bps))
            if paid != expected:
                out.append(f"bet {bet_id}: multiplier {paid}, its quote gives {expected}")
        sample = conn.execute(
            "SELECT b.id, b.cell_id, b.quote_p, b.quote_sigma_low, b.quote_sigma_high, "
            "t.price, t.ts FROM bets b JOIN ticks t ON t.market = b.market AND t.seq = b.quote_seq "
            "WHERE b.market = ? AND b.quote_p IS NOT NULL ORDER BY random() LIMIT ?",
            (cfg.symbol, QUOTE_SAMPLE),
        )
        for bet_id, cell, p_win, low, high, price, ts in sample:
            row, col = parse_cell(str(cell))
            first_s, n_ticks = ticks_in(ts, cfg.tick_interval_ms, *window(cfg, col))
            band = SigmaBand(high, low, high, 0, None)
            again = cell_probability(
                price,
                row * cfg.band,
                (row + 1) * cfg.band,
                first_s,
                n_ticks,
                band,
                cfg.tick_interval_ms / 1000.0,
                cfg.quote_lead_s,
            )
            if abs(again - p_win) > QUOTE_TOLERANCE * max(p_win, 1e-12):
                out.append(f"bet {bet_id}: quote P {p_win}, recomputed {again}")
    return out[:10]


def run_check(
    db_path: Path, markets: Sequence[MarketConfig] = (), now_ms: int | None = None
) -> CheckReport:
    """Every check, each recorded as passed or failed with its details."""
    report = CheckReport()
    if not db_path.exists():
        report.failed.append(f"database: {db_path} does not exist")
        return report
    conn = sqlite3.connect(f"{db_path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        _record(report, "integrity_check", [] if rows == ["ok"] else rows[:10])
        bad_keys = [str(tuple(r)) for r in conn.execute("PRAGMA foreign_key_check").fetchmany(10)]
        _record(report, "foreign_key_check", bad_keys)
        _record(report, "ledger invariants", ledger_violations(conn))
        scans: list[str] = []
        for name, sql in QUERIES.items():
            plan = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, _EXAMPLE_PARAMS[name])]
            scans.extend(f"{name}: {step}" for step in plan if step.startswith("SCAN"))
        _record(report, "API queries use indexes", scans)
        now = int(time.time() * 1000) if now_ms is None else now_ms
        _record(report, "no bet unresolved past its window", _overdue(conn, markets, now))
        _record(report, "multipliers match their quotes", _quotes(conn, markets))
    except sqlite3.DatabaseError as exc:
        report.failed.append(f"database: {exc}")
    finally:
        conn.close()
    return report


def _record(report: CheckReport, name: str, problems: list[str]) -> None:
    if problems:
        report.failed.append(f"{name}: " + "; ".join(problems))
    else:
        report.passed.append(name)
