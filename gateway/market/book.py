"""The house's book of one market: open bets and the exposure they carry.

Admission reserves a bet's stake and potential payout here, together with the wallet's
balance, before the bet is queued; a refusal at any later step releases it. Committed
bets stay in the book until they are settled. The limits:
- a bet's amount within [min_bet, max_bet];
- a wallet's total stake in one cell up to ``wallet_cell_cap``;
- the sum of potential payouts of open bets per cell up to ``cell_liability_cap`` and
  per market up to ``market_liability_cap``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from gateway.errors import ErrorCode, Rejection
from gateway.market.config import MarketConfig

__all__ = ["Book", "OpenBet"]


@dataclass(frozen=True, slots=True)
class OpenBet:
    """A committed bet waiting for its cell to resolve."""

    bet_id: int
    wallet: str
    row: int
    col: int
    amount: int
    payout: int


def _limit(message: str, field: str | None = None) -> Rejection:
    return Rejection(ErrorCode.EXPOSURE_LIMIT, message, field=field)


class Book:
    """Exposure reservations and open bets of one market."""

    def __init__(self, cfg: MarketConfig) -> None:
        self.cfg = cfg
        self.liability = 0
        self._cells: dict[tuple[int, int], int] = defaultdict(int)
        self._stakes: dict[tuple[str, int, int], int] = defaultdict(int)
        # column -> row -> bet id -> bet: a cell's bets settle together, and removing a
        # settled bet costs the same however many bets its column holds
        self._open: dict[int, dict[int, dict[int, OpenBet]]] = {}
        self.open_count = 0

    def cell_liability(self, row: int, col: int) -> int:
        return self._cells.get((row, col), 0)

    def reserve(self, wallet: str, row: int, col: int, amount: int, payout: int) -> None:
        """Hold the bet's exposure, or refuse with ``exposure_limit`` naming the limit."""
        cfg = self.cfg
        if amount < cfg.min_bet or amount > cfg.max_bet:
            raise _limit(f"amount must be between {cfg.min_bet} and {cfg.max_bet}", "amount")
        stake_key = (wallet, row, col)
        if self._stakes.get(stake_key, 0) + amount > cfg.wallet_cell_cap:
            raise _limit(f"a wallet may stake at most {cfg.wallet_cell_cap} on one cell")
        cell = (row, col)
        if self._cells.get(cell, 0) + payout > cfg.cell_liability_cap:
            raise _limit("this cell has reached the house's liability limit")
        if self.liability + payout > cfg.market_liability_cap:
            raise _limit("this market has reached the house's liability limit")
        self._stakes[stake_key] += amount
        self._cells[cell] += payout
        self.liability += payout

    def release(self, wallet: str, row: int, col: int, amount: int, payout: int) -> None:
        """Give back a reservation (bet refused) or an open bet's exposure (bet settled)."""
        stake_key = (wallet, row, col)
        cell = (row, col)
        if self._stakes[stake_key] < amount or self._cells[cell] < payout:
            raise AssertionError(f"release beyond the reservation of {stake_key}")
        self._stakes[stake_key] -= amount
        if not self._stakes[stake_key]:
            del self._stakes[stake_key]
        self._cells[cell] -= payout
        if not self._cells[cell]:
            del self._cells[cell]
        self.liability -= payout

    def add_open(self, bet: OpenBet) -> None:
        """A reserved bet committed: it waits for its cell's outcome."""
        rows = self._open.get(bet.col)
        if rows is None:
            rows = self._open[bet.col] = {}
        cell = rows.get(bet.row)
        if cell is None:
            cell = rows[bet.row] = {}
        cell[bet.bet_id] = bet
        self.open_count += 1

    def load_open(self, bet: OpenBet) -> None:
        """Start-up: a committed open bet read back from the database."""
        self._stakes[(bet.wallet, bet.row, bet.col)] += bet.amount
        self._cells[(bet.row, bet.col)] += bet.payout
        self.liability += bet.payout
        self.add_open(bet)

    def open_columns(self) -> list[int]:
        return sorted(self._open)

    def open_cells(self, col: int) -> dict[int, dict[int, OpenBet]]:
        """The open bets of column ``col``: row -> bet id -> bet."""
        return self._open.get(col, {})

    def settled(self, bets: list[OpenBet]) -> None:
        """Remove settled bets and release their exposure."""
        for bet in bets:
            rows = self._open[bet.col]
            cell = rows[bet.row]
            del cell[bet.bet_id]
            if not cell:
                del rows[bet.row]
                if not rows:
                    del self._open[bet.col]
            self.open_count -= 1
            self.release(bet.wallet, bet.row, bet.col, bet.amount, bet.payout)
