"""The writer's group statement, and the resolver's settlement chunk: their rows bound as
parameters of a VALUES list (as shipped since 2026-11-30) or read out of one JSON array (as
before). Same schema, same triggers, same rows.

The owner alone is bound by this statement (bench/RESULTS.md, 2026-11-30 08:38). This
writes ``--rounds`` groups of ``--group`` bets with each variant, alternated, on a fresh
database (WAL, the v7 schema, 4,000 funded wallets) and prints the median CPU of the
writing thread per bet; the VALUES variant's statement is prepared once and then comes
from the connection's cache, as a group of ``batch_max`` bets would at saturation.

Then it settles every bet, ``--chunk`` a chunk (a third won, the rest lost), alternating
``gateway.store.markets.settle`` with the JSON statement it replaced.

    python bench/group_statement.py [--synchronous OFF|FULL] [--group 256] [--rounds 30]
                                    [--chunk 100]
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.store.markets import Settlement, settle  # noqa: E402
from gateway.store.schema import connect_pragmas, migrate  # noqa: E402
from gateway.store.writer import _write_bets, group_values, write_credit  # noqa: E402

# the group statement as shipped until 2026-11-30 (schema v7, ADR 14)
JSON_ROWS = """
INSERT INTO bets (id, wallet, nonce, market, cell_id, amount, multiplier, potential_payout,
                  min_multiplier, ts, signature, accepted_at, batch_id, receipt,
                  quote_seq, quote_sigma_low, quote_sigma_high, quote_p)
SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5,
       value ->> 6, value ->> 7, value ->> 8, value ->> 9, value ->> 10, value ->> 11,
       ?2, value ->> 12, value ->> 13, value ->> 14, value ->> 15, value ->> 16
  FROM json_each(?1) WHERE true
ON CONFLICT (wallet, nonce) DO NOTHING
"""
# the settlement chunk as shipped until 2026-11-30 (its open-bets read is unchanged)
JSON_SETTLEMENTS = """
INSERT INTO settlements (bet_id, outcome, payout, tick_seq, settled_at)
SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, ?2 FROM json_each(?1)
"""
STILL_OPEN = """
SELECT json_group_array(id) FROM bets
 WHERE status = 'accepted' AND id IN (SELECT value FROM json_each(?1))
"""
RECEIPT = orjson.dumps(
    {
        "bet_id": "123456",
        "wallet": "a" * 64,
        "market": "BTC-USD",
        "cell_id": "cell-101-123",
        "amount": 100,
        "nonce": "n" * 20,
        "timestamp": 1,
        "multiplier": "2.50",
        "potential_payout": 250,
        "balance": 10**12,
        "status": "accepted",
        "accepted_at": 1,
    }
).decode()


class Bets:
    """Rows in the writer's order (batch id aside), for random funded wallets."""

    def __init__(self, wallets: list[str]) -> None:
        self.wallets = wallets
        self.rng = random.Random(1)
        self.next_id = 1

    def group(self, size: int) -> list[tuple[Any, ...]]:
        rows = []
        for _ in range(size):
            i = self.next_id
            self.next_id += 1
            wallet = self.rng.choice(self.wallets)
            rows.append(
                (i, wallet, f"n{i}", "BTC-USD", f"cell-101-{i % 50}", 100, 250, 250, None, 1,
                 "ab" * 64, 1, RECEIPT, 5, 0.01, 0.02, 0.3)
            )  # fmt: skip
        return rows


def json_rows(conn: sqlite3.Connection, batch_id: int, rows: list[tuple[Any, ...]]) -> None:
    conn.execute(JSON_ROWS, (orjson.dumps(rows), batch_id))


def bound_values(conn: sqlite3.Connection, batch_id: int, rows: list[tuple[Any, ...]]) -> None:
    """The writer's own: its values, its statement (its checks included)."""
    ids = (rows[0][0], rows[-1][0], len(rows))
    _write_bets(conn, group_values(rows, batch_id), ids, batch_id, lambda _: [])


def json_settle(conn: sqlite3.Connection, items: list[Settlement], now_ms: int) -> list[int]:
    """settle() as it was: the same read, the rows as one JSON array."""
    (found,) = conn.execute(STILL_OPEN, (orjson.dumps([i.bet_id for i in items]),)).fetchone()
    open_ids = set(orjson.loads(found))
    rows = [(i.bet_id, i.outcome, i.payout, i.tick_seq) for i in items if i.bet_id in open_ids]
    conn.execute(JSON_SETTLEMENTS, (orjson.dumps(rows), now_ms))
    return [row[0] for row in rows]


def settle_all(conn: sqlite3.Connection, wallets: dict[int, str], chunk: int) -> None:
    """Settle every bet ``chunk`` at a time, the two variants alternating; print the median
    CPU of the thread per settled bet."""
    variants = {"JSON rows (before)": json_settle, "bound VALUES (shipped)": settle}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    ids = sorted(wallets)
    for k, at in enumerate(range(0, len(ids) - len(ids) % chunk, chunk)):
        name = list(variants)[k % 2]
        items = [Settlement(i, wallets[i], "won" if i % 3 == 0 else "lost",
                            250 if i % 3 == 0 else 0, 7) for i in ids[at : at + chunk]]  # fmt: skip
        thread = time.thread_time()
        assert len(variants[name](conn, items, 9)) == chunk
        cpu[name].append((time.thread_time() - thread) * 1e6 / chunk)
    settled = conn.execute("SELECT count(*) FROM settlements").fetchone()[0]
    payouts = conn.execute("SELECT count(*) FROM ledger WHERE kind = 'payout'").fetchone()[0]
    assert settled == len(ids) - len(ids) % chunk, settled
    assert payouts == 2 * len([i for i in ids[:settled] if i % 3 == 0]), payouts
    print(f"settlement chunks of {chunk} (a third won), {settled} bets")
    for name in variants:
        print(f"{name:24s} CPU {statistics.median(cpu[name][2:]):6.1f} us a bet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synchronous", default="FULL", choices=["OFF", "NORMAL", "FULL"])
    parser.add_argument("--group", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--chunk", type=int, default=100)
    args = parser.parse_args()
    path = Path(tempfile.mkdtemp(prefix="tapgate-stmt-")) / "tapgate.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript("PRAGMA journal_mode=WAL;" + connect_pragmas(args.synchronous))
    migrate(conn)
    wallets = [os.urandom(32).hex() for _ in range(4000)]
    for wallet in wallets:
        write_credit(conn, wallet, 10**12, f"bench-{wallet[:20]}", 1)
    bets = Bets(wallets)
    variants: dict[str, Callable[[sqlite3.Connection, int, list[tuple[Any, ...]]], None]] = {
        "JSON rows (before)": json_rows,
        "bound VALUES (shipped)": bound_values,
    }
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    wall: dict[str, list[float]] = {name: [] for name in variants}
    for k in range(args.rounds):
        order = list(variants.items())
        for name, write in order if k % 2 else reversed(order):
            rows = bets.group(args.group)
            thread, clock = time.thread_time(), time.perf_counter()
            write(conn, k, rows)
            cpu[name].append((time.thread_time() - thread) * 1e6 / args.group)
            wall[name].append((time.perf_counter() - clock) * 1e6 / args.group)
    stored = conn.execute("SELECT count(*) FROM bets").fetchone()[0]
    postings = conn.execute("SELECT count(*) FROM ledger WHERE kind = 'stake'").fetchone()[0]
    # every bet stored, each with its stake's two ledger rows (the trigger ran for both)
    assert stored == args.rounds * args.group * len(variants), stored
    assert postings == 2 * stored, (postings, stored)
    print(f"synchronous={args.synchronous}, groups of {args.group}, {args.rounds} rounds")
    for name in variants:  # the first two rounds warm the caches
        print(
            f"{name:24s} CPU {statistics.median(cpu[name][2:]):6.1f} us a bet, "
            f"wall {statistics.median(wall[name][2:]):6.1f} us"
        )
    settle_all(conn, dict(conn.execute("SELECT id, wallet FROM bets")), args.chunk)


if __name__ == "__main__":
    main()
