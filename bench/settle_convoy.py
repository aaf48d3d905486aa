"""Writing on a thread while the event loop's thread runs Python: the GIL convoy.

The writer thread runs SQLite with the GIL released and takes it back after every step;
while another thread is busy that takes up to a switch interval (the gateway's 1 ms) each
time. This writes 20,000 bets in groups of 20 (what 3,000 bets/s makes) with the
writer's own group insert, then settles them 100 a chunk as the resolver does with
gateway.store.markets.settle, on a real database (`synchronous=FULL`, the schema's
triggers): first with the thread alone, then with a second thread running Python.

    python bench/settle_convoy.py [--bets 20000] [--group 20] [--chunk 100]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.store import writer  # noqa: E402
from gateway.store.markets import Settlement, settle  # noqa: E402
from gateway.store.schema import connect_pragmas, migrate  # noqa: E402

SWITCH_INTERVAL_S = 0.001  # TAPGATE_SWITCH_INTERVAL_MS's default


def database(bets: int, wallets: list[str], group: int) -> tuple[sqlite3.Connection, float]:
    """A migrated database holding ``bets`` open bets of ``wallets``, and the seconds spent
    writing them, ``group`` bets a group."""
    path = Path(tempfile.mkdtemp(prefix="tapgate-convoy-")) / "tapgate.db"
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(connect_pragmas("FULL"))
    migrate(conn)
    conn.execute("BEGIN")
    for w in wallets:
        conn.execute("INSERT INTO accounts (id, kind) VALUES (?, 'wallet')", (w,))
        conn.execute(
            "INSERT INTO postings (txn, debit, credit, amount, kind, created_at) "
            "VALUES (?, 'deposits', ?, ?, 'deposit', 0)",
            (f"deposit:{w}", w, 10**9),
        )
    conn.execute("COMMIT")
    rows = [
        (i, wallets[i % len(wallets)], f"n{i}", "BTC-USD", "cell", 10, 250, 25, None, 1,
         "0" * 128, 1000, "{}", 1, 0.1, 0.2, 0.3)
        for i in range(1, bets + 1)
    ]  # fmt: skip
    spent = 0.0
    for first in range(0, bets, group):
        chunk = rows[first : first + group]
        ids = (chunk[0][0], chunk[-1][0], len(chunk))
        started = time.perf_counter()
        batch = first // group + 1
        writer._write_bets(conn, writer.group_values(chunk, batch), ids, batch, lambda _: [])
        spent += time.perf_counter() - started
    return conn, spent


def settle_all(conn: sqlite3.Connection, bets: int, chunk: int, wallets: list[str]) -> float:
    """Seconds spent settling every bet, ``chunk`` a transaction, half of them won."""
    spent = 0.0
    for first in range(1, bets + 1, chunk):
        items = [
            Settlement(i, wallets[i % len(wallets)], *(("won", 25) if i % 2 else ("lost", 0)), None)
            for i in range(first, min(first + chunk, bets + 1))
        ]
        started = time.perf_counter()
        settle(conn, items, 2000)
        spent += time.perf_counter() - started
    return spent


def _spin(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(range(100))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bets", type=int, default=20_000)
    parser.add_argument("--group", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=100)
    args = parser.parse_args()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    wallets = [os.urandom(32).hex() for _ in range(500)]
    for busy in (False, True):
        stop = threading.Event()
        other = threading.Thread(target=_spin, args=(stop,))
        if busy:
            other.start()
        conn, written = database(args.bets, wallets, args.group)
        spent = settle_all(conn, args.bets, args.chunk, wallets)
        stop.set()
        if busy:
            other.join()
        per_group = written / (args.bets / args.group) * 1000
        per_chunk = spent / (args.bets / args.chunk) * 1000
        print(
            f"{'a busy second thread' if busy else 'alone':>20}: "
            f"write {per_group:6.2f} ms a group of {args.group}, "
            f"settle {per_chunk:6.2f} ms a chunk of {args.chunk}"
        )


if __name__ == "__main__":
    main()
