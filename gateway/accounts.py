"""In-memory wallet balances and reservations: the authoritative admission rules.

``balance`` is what the database holds (committed); ``reserved`` is the sum of bets
admitted but not yet committed. A bet is admitted only while ``balance - reserved``
covers it, so two concurrent bets can never spend the same funds. Only the writer
moves money from reserved to committed, after its transaction commits.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.errors import ErrorCode, Rejection

__all__ = ["Accounts"]


class _Wallet:
    __slots__ = ("balance", "reserved")

    def __init__(self, balance: int) -> None:
        self.balance = balance
        self.reserved = 0


class Accounts:
    """Balances of every wallet, loaded from the database at start-up."""

    def __init__(self, balances: Iterable[tuple[str, int]] = ()) -> None:
        self._wallets: dict[str, _Wallet] = {w: _Wallet(b) for w, b in balances}

    def __len__(self) -> int:
        return len(self._wallets)

    def balance(self, wallet: str) -> int:
        """Committed balance (0 for a wallet never funded)."""
        entry = self._wallets.get(wallet)
        return 0 if entry is None else entry.balance

    def reserved(self, wallet: str) -> int:
        entry = self._wallets.get(wallet)
        return 0 if entry is None else entry.reserved

    def reserve(self, wallet: str, amount: int) -> None:
        """Hold ``amount`` for a bet in flight, or refuse with ``insufficient_funds``."""
        entry = self._wallets.get(wallet)
        if entry is None or entry.balance - entry.reserved < amount:
            raise Rejection(ErrorCode.INSUFFICIENT_FUNDS, "wallet balance is below the bet amount")
        entry.reserved += amount

    def release(self, wallet: str, amount: int) -> None:
        """Give back a reservation whose bet was refused."""
        entry = self._wallets[wallet]
        if amount > entry.reserved:
            raise AssertionError(f"release of {amount} exceeds reservation {entry.reserved}")
        entry.reserved -= amount

    def settle_debit(self, wallet: str, amount: int) -> None:
        """The bet holding this reservation committed: the debit is now in the database."""
        entry = self._wallets[wallet]
        if amount > entry.reserved:
            raise AssertionError(f"debit of {amount} exceeds reservation {entry.reserved}")
        entry.reserved -= amount
        entry.balance -= amount

    def credit(self, wallet: str, amount: int) -> int:
        """A committed credit (deposit, payout, refund); returns the new balance."""
        entry = self._wallets.get(wallet)
        if entry is None:
            entry = self._wallets[wallet] = _Wallet(0)
        entry.balance += amount
        return entry.balance
