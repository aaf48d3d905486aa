"""Ledger invariants, checked by ``tapgate check``, the tests and the crash tests.

- every account balance equals the sum of its ledger rows;
- all ledger rows sum to zero, and so does each transaction;
- no wallet is below zero;
- every bet has exactly its two stake rows;
- every settlement has exactly the ledger rows its outcome calls for (a won bet its payout
  pair, a void bet its refund pair, both carrying the settlement's payout; a lost bet none),
  and no payout or refund row lacks its settlement.
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
    (
        "settlement without exactly its payout or refund rows",
        """SELECT s.bet_id, s.outcome, s.payout,
                  coalesce(sum(CASE WHEN l.account <> 'house' THEN l.amount END), 0) AS paid
             FROM settlements s
             LEFT JOIN ledger l ON l.bet_id = s.bet_id AND l.kind IN ('payout', 'refund')
            GROUP BY s.bet_id
           HAVING paid <> s.payout
               OR count(l.id) <> (CASE WHEN s.payout > 0 THEN 2 ELSE 0 END)
               OR sum(l.kind <> CASE s.outcome WHEN 'won' THEN 'payout' ELSE 'refund' END) > 0""",
    ),
    (
        "payout or refund without a settlement",
        """SELECT l.txn FROM ledger l LEFT JOIN settlements s ON s.bet_id = l.bet_id
            WHERE l.kind IN ('payout', 'refund') AND s.bet_id IS NULL""",
    ),
)


def ledger_violations(conn: sqlite3.Connection) -> list[str]:
    """A line per broken invariant (at most five examples each); empty when all hold."""
    problems: list[str] = []
    for what, sql in _CHECKS:
        rows = conn.execute(sql).fetchmany(5)
        problems.extend(f"{what}: {tuple(row)}" for row in rows)
    return problems
