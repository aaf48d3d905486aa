"""Reads: start-up state for the in-memory rules, and the API's lookups.

Each query here is served by an index (``tapgate check`` runs EXPLAIN QUERY PLAN on them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiosqlite

from gateway.protocol import bet_message, format_multiplier

__all__ = ["QUERIES", "Reader", "StartState", "bet_view"]

_SELECT_BET = (
    "SELECT id, wallet, nonce, market, cell_id, amount, multiplier, potential_payout, "
    "min_multiplier, ts, status, accepted_at, s.payout, s.settled_at, "
    "quote_seq, quote_sigma_low, quote_sigma_high, quote_p "
    "FROM bets LEFT JOIN settlements AS s ON s.bet_id = bets.id"
)

QUERIES = {
    "bet": _SELECT_BET + " WHERE id = ?",
    "wallet_open": (
        "SELECT count(*), coalesce(sum(amount), 0), coalesce(sum(potential_payout), 0) "
        "FROM bets WHERE wallet = ? AND status = 'accepted'"
    ),
    "wallet_bets": (
        _SELECT_BET + " WHERE wallet = ? AND id < ? "
        "AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR nonce = ?4) ORDER BY id DESC LIMIT ?5"
    ),
    "wallet_nonce": _SELECT_BET + " WHERE wallet = ? AND nonce = ?",
    "open_bets": (
        "SELECT id, wallet, cell_id, amount, potential_payout FROM bets "
        "WHERE market = ? AND status = 'accepted' ORDER BY id"
    ),
}


def bet_view(row: Any) -> dict[str, Any]:
    """A bet row as the API shows it."""
    (id_, wallet, nonce, market, cell_id, amount, mult, payout, min_mult, ts, status, at) = row[:12]
    paid, settled_at, quote_seq, sigma_low, sigma_high, p_win = row[12:18]
    return {
        "bet_id": str(id_),
        "wallet": wallet,
        "market": market,
        "cell_id": cell_id,
        "amount": amount,
        "nonce": nonce,
        "timestamp": ts,
        "min_multiplier": min_mult,
        "multiplier": format_multiplier(mult),
        "potential_payout": payout,
        "status": status,
        "accepted_at": at,
        "payout": paid,
        "settled_at": settled_at,
        # what the multiplier was priced on (docs/PRICING.md, "Disputes"); null before v5
        "quote": None
        if quote_seq is None
        else {
            "tick_seq": quote_seq,
            "sigma_low": sigma_low,
            "sigma_high": sigma_high,
            "p_win": p_win,
        },
    }


@dataclass(frozen=True)
class StartState:
    balances: list[tuple[str, int]]
    recent: list[tuple[str, str, bytes, bytes, int]]
    next_bet_id: int
    next_batch_id: int


class Reader:
    """Short read transactions on a read-only connection of their own."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def start_state(self, since_ms: int) -> StartState:
        """Balances, the bets still inside the receive window, and the next ids."""
        conn = self.conn
        balances = [
            (str(w), int(b))
            for w, b in await conn.execute_fetchall(
                "SELECT id, balance FROM accounts WHERE kind = 'wallet'"
            )
        ]
        recent = []
        rows = await conn.execute_fetchall(
            "SELECT wallet, market, cell_id, amount, nonce, ts, min_multiplier, receipt "
            "FROM bets WHERE accepted_at >= ?",
            (since_ms,),
        )
        for wallet, market, cell_id, amount, nonce, ts, min_mult, receipt in rows:
            message = bet_message(wallet, market, cell_id, amount, nonce, ts, min_mult)
            recent.append((wallet, nonce, message, str(receipt).encode(), int(ts)))
        ((max_bet, max_batch),) = await conn.execute_fetchall(
            "SELECT coalesce(max(id), 0), coalesce(max(batch_id), 0) FROM bets"
        )
        return StartState(balances, recent, int(max_bet) + 1, int(max_batch) + 1)

    async def market_history(self, market: str, since_ms: int, last: int) -> list[Any]:
        """Ticks (seq, price, ts) from ``since_ms`` on, and at least the ``last`` ones."""
        rows = await self.conn.execute_fetchall(
            "SELECT seq, price, ts FROM ticks WHERE market = ? AND ts >= ? "
            "UNION SELECT * FROM (SELECT seq, price, ts FROM ticks WHERE market = ? "
            "ORDER BY seq DESC LIMIT ?) ORDER BY seq",
            (market, since_ms, market, last),
        )
        return list(rows)

    async def open_bets(self, market: str) -> list[Any]:
        """(id, wallet, cell_id, amount, potential_payout) of the market's open bets."""
        rows = await self.conn.execute_fetchall(QUERIES["open_bets"], (market,))
        return list(rows)

    async def halts(self) -> dict[str, str]:
        rows = await self.conn.execute_fetchall("SELECT market, reason FROM market_halts")
        return {str(m): str(r) for m, r in rows}

    async def bet(self, bet_id: int) -> dict[str, Any] | None:
        rows = list(await self.conn.execute_fetchall(QUERIES["bet"], (bet_id,)))
        return bet_view(rows[0]) if rows else None

    async def wallet_open(self, wallet: str) -> tuple[int, int, int]:
        ((count, stake, payout),) = await self.conn.execute_fetchall(
            QUERIES["wallet_open"], (wallet,)
        )
        return int(count), int(stake), int(payout)

    async def wallet_bets(
        self, wallet: str, *, status: str | None, nonce: str | None, limit: int, before: int
    ) -> list[dict[str, Any]]:
        if nonce is not None:
            rows = await self.conn.execute_fetchall(QUERIES["wallet_nonce"], (wallet, nonce))
            return [bet_view(r) for r in rows if status is None or r[10] == status]
        rows = await self.conn.execute_fetchall(
            QUERIES["wallet_bets"], (wallet, before, status, nonce, limit)
        )
        return [bet_view(r) for r in rows]
