"""Market writes, run on the writer connection.

- ticks: committed before the market uses them (audit and replay);
- settlements: a bet's outcome, its status change (the ``settlements_apply`` trigger) and
  its payout or refund ledger rows (``settlements_pay``), many bets in one statement;
- operator halts, so that a halt survives a restart.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
import structlog

from gateway.store.inserts import Insert

__all__ = ["Settlement", "TickRow", "insert_ticks", "set_halt", "settle"]

log = structlog.get_logger("tapgate.settlement")


class TickRow(NamedTuple):
    """A committed tick as the ``ticks`` table holds it (the market is the call's)."""

    seq: int
    price: int
    ts: int
    received_at: int
    source: str  # 'sim' or 'oracle'
    signature: str | None


class Settlement(NamedTuple):
    """One bet's outcome and what it pays; ``tick_seq`` names the deciding tick, if any."""

    bet_id: int
    wallet: str
    outcome: str  # 'won', 'lost' or 'void'
    payout: int
    tick_seq: int | None


def insert_ticks(conn: sqlite3.Connection, market: str, rows: Sequence[TickRow]) -> None:
    conn.executemany(
        "INSERT INTO ticks (market, seq, price, ts, received_at, source, signature) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(market, *row) for row in rows],
    )


# One read and one write for a whole chunk: the ids as one JSON array, the settlements as
# one INSERT (gateway/store/inserts.py). executemany, or reading a result row by row, steps
# once per row, and at every step the writer thread hands the GIL back and waits for it
# again, up to a switch interval each while the event loop is busy: 226 ms for 100 bets
# that way, 9 ms with a statement per table in a transaction, less with the write as one
# statement that commits by itself (bench/settle_convoy.py, ADR 14).
_STILL_OPEN = """
SELECT json_group_array(id) FROM bets
 WHERE status = 'accepted' AND id IN (SELECT value FROM json_each(?1))
"""
_SETTLEMENTS = Insert("settlements", ("bet_id", "outcome", "payout", "tick_seq", "settled_at"))


def settle(conn: sqlite3.Connection, items: Sequence[Settlement], now_ms: int) -> list[int]:
    """Settle the bets still open among ``items``, with their payouts and refunds, in one
    statement that commits by itself (outside any transaction); return the ids settled.

    A bet that is no longer open (settled already, by this process before a crash or by
    another path) is refused and logged, never settled twice. Only the writer connection
    writes, one call at a time, so nothing settles a bet between the read and the write;
    if something did, the status trigger would refuse the whole statement.
    """
    ids = orjson.dumps([item.bet_id for item in items])
    (found,) = conn.execute(_STILL_OPEN, (ids,)).fetchone()
    open_ids = set(orjson.loads(found))
    settled = []
    values: list[Any] = []
    for bet_id, _wallet, outcome, payout, tick_seq in items:
        if bet_id not in open_ids:
            log.warning("settlement_refused", bet_id=bet_id, outcome=outcome, reason="not open")
            continue
        values += (bet_id, outcome, payout, tick_seq, now_ms)
        settled.append(bet_id)
    if values:
        _SETTLEMENTS.run(conn, values)
    return settled


def set_halt(conn: sqlite3.Connection, market: str, reason: str | None, now_ms: int) -> None:
    """Record an operator halt (``reason``) or its end (None)."""
    if reason is None:
        conn.execute("DELETE FROM market_halts WHERE market = ?", (market,))
    else:
        conn.execute(
            "INSERT INTO market_halts (market, reason, halted_at) VALUES (?, ?, ?) "
            "ON CONFLICT (market) DO UPDATE SET reason = excluded.reason",
            (market, reason, now_ms),
        )
