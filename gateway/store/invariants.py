"""Ledger invariants, checked by ``tapgate check``, the tests and the crash tests.

- every account balance equals the sum of its ledger rows;
- all ledger rows sum to zero, and so does each transaction;
- no wallet is below zero;
- every bet has exactly its two stake rows.
"""

from __future__ import annotations

import sqlite3

__all__ = ["ledger_violations"]

_CHECKS = (
    (
        "balance differs from its ledger sum",
        """SELECT a.id, a.balance, coalesce(sum(l.amount), 0) AS total
             FROM accounts a LEFT JOIN ledger l ON l.account = a.id
            GROUP BY a.id HAVING a.balance <> total""",
    ),
    ("ledger does not sum to zero", "SELECT sum(amount) FROM ledger HAVING sum(amount) <> 0"),
    (
        "transaction does not balance",
        "SELECT txn, sum(amount) FROM ledger GROUP BY txn HAVING sum(amount) <> 0",
    ),
    ("wallet below zero", "SELECT id, balance FROM accounts WHERE kind = 'wallet' AND balance < 0"),
    (
        "bet without exactly two stake rows",
        """SELECT b.id, count(l.id) FROM bets b
             LEFT JOIN ledger l ON l.bet_id = b.id AND l.kind = 'stake'
            GROUP BY b.id HAVING count(l.id) <> 2""",
    ),
)


def ledger_violations(conn: sqlite3.Connection) -> list[str]:
    """A line per broken invariant (at most five examples each); empty when all hold."""
    problems: list[str] = []
    for what, sql in _CHECKS:
        rows = conn.execute(sql).fetchmany(5)
        problems.extend(f"{what}: {tuple(row)}" for row in rows)
    return problems
