"""Rows written straight into a tapgate database, for tests of the schema and the jobs."""

from __future__ import annotations

import sqlite3

__all__ = ["insert_bet"]


def insert_bet(conn: sqlite3.Connection, wallet: str, **over: object) -> None:
    """A ``bets`` row of ``wallet`` (10 at 1.90 on cell-1-1 unless ``over`` says otherwise)."""
    row = {
        "id": 1,
        "wallet": wallet,
        "nonce": "n",
        "market": "BTC-USD",
        "cell_id": "cell-1-1",
        "amount": 10,
        "multiplier": 190,
        "potential_payout": 19,
        "ts": 0,
        "signature": "s",
        "accepted_at": 0,
        "batch_id": 1,
        "receipt": "{}",
    }
    row.update(over)
    columns = ", ".join(row)  # the keys are this function's and its callers' literals
    conn.execute(
        f"INSERT INTO bets ({columns}) VALUES ({', '.join('?' * len(row))})",  # noqa: S608
        tuple(row.values()),
    )
