"""``tapgate archive --older-than <age>``: move settled bets into an archive database.

Each step moves at most 1,000 bets settled before the cutoff, in two transactions so that
no interruption can lose a bet:
1. copy the full rows (with their settlement) into ``archive.db`` (``INSERT OR IGNORE``:
   a re-run after an interruption finds them there) and commit;
2. compare count and checksum of the rows in both databases, then turn the bets into
   stubs: the row stays in ``bets`` (ledger rows, lookups and UNIQUE (wallet, nonce) keep
   using it) without its receipt and signature, naming the archive in ``archive``.
A mismatch stops the run before anything is stubbed. Ledger rows are never archived.

While the gateway runs, steps go through its writer (``POST /admin/archive``); otherwise
the CLI holds the data directory's lock and runs them on its own connection.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.config import Settings

__all__ = [
    "ARCHIVE_NAME",
    "STEP_ROWS",
    "ArchiveError",
    "archive_all",
    "archive_cutoff",
    "archive_step",
    "attached",
    "checksum",
    "in_transaction",
    "parse_age",
]

ARCHIVE_NAME = "archive.db"
STEP_ROWS = 1000

# The bet columns both copies hold, spelled out in each statement: no SQL is assembled.
_COPY = """
INSERT OR IGNORE INTO archive.bets
SELECT bets.id, wallet, nonce, market, cell_id, amount, multiplier, potential_payout,
       min_multiplier, ts, signature, status, accepted_at, batch_id, receipt,
       s.outcome, s.payout, s.settled_at
  FROM main.bets JOIN settlements AS s ON s.bet_id = bets.id
 WHERE bets.id IN (SELECT value FROM json_each(?))
"""
_MAIN_ROWS = """
SELECT id, wallet, nonce, market, cell_id, amount, multiplier, potential_payout,
       min_multiplier, ts, signature, status, accepted_at, batch_id, receipt
  FROM main.bets WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id
"""
_ARCHIVED_ROWS = """
SELECT id, wallet, nonce, market, cell_id, amount, multiplier, potential_payout,
       min_multiplier, ts, signature, status, accepted_at, batch_id, receipt
  FROM archive.bets WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id
"""
_STUB = """
UPDATE main.bets SET receipt = '', signature = '', archive = ?
 WHERE id IN (SELECT value FROM json_each(?))
"""
_ARCHIVE_SCHEMA = """
CREATE TABLE IF NOT EXISTS archive.bets (
    id INTEGER PRIMARY KEY, wallet TEXT NOT NULL, nonce TEXT NOT NULL, market TEXT NOT NULL,
    cell_id TEXT NOT NULL, amount INTEGER NOT NULL, multiplier INTEGER NOT NULL,
    potential_payout INTEGER NOT NULL, min_multiplier TEXT, ts INTEGER NOT NULL,
    signature TEXT NOT NULL, status TEXT NOT NULL, accepted_at INTEGER NOT NULL,
    batch_id INTEGER NOT NULL, receipt TEXT NOT NULL,
    outcome TEXT NOT NULL, payout INTEGER NOT NULL, settled_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS archive.ticks (
    market TEXT NOT NULL, seq INTEGER NOT NULL, price INTEGER NOT NULL, ts INTEGER NOT NULL,
    received_at INTEGER NOT NULL, source TEXT NOT NULL, signature TEXT,
    PRIMARY KEY (market, seq)
) WITHOUT ROWID;
"""


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(text: str) -> int:
    """``30d``, ``12h``, ``90m``, ``3600s`` -> seconds; ValueError otherwise."""
    number, unit = text[:-1], text[-1:]
    if unit not in _UNITS or not (number.isascii() and number.isdigit()):
        raise ValueError(f"{text!r} is not an age like 30d, 12h, 90m or 3600s")
    return int(number) * _UNITS[unit]


class ArchiveError(RuntimeError):
    """The archive does not hold what the database says was moved; nothing was stubbed."""


def checksum(rows: Sequence[Sequence[object]]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


def archive_cutoff(now_ms: int, older_than_s: int, settings: Settings) -> int:
    """Bets settled before this are archived; never a bet still inside the replay window
    (its stored receipt answers replays after a restart)."""
    floor_ms = settings.receive_window_ms + settings.future_skew_ms
    return now_ms - max(older_than_s * 1000, floor_ms)


@contextlib.contextmanager
def attached(conn: sqlite3.Connection, archive_path: Path) -> Iterator[None]:
    """The archive database attached to ``conn`` as ``archive`` (created if new)."""
    conn.execute("ATTACH DATABASE ? AS archive", (str(archive_path),))
    try:
        conn.executescript(_ARCHIVE_SCHEMA)
        yield
    finally:
        conn.execute("DETACH DATABASE archive")


def in_transaction(conn: sqlite3.Connection, work: Callable[[], object]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        work()
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def copy_to_archive(conn: sqlite3.Connection, ids: list[int]) -> None:
    """Phase 1: the full rows and their settlements into the archive, committed."""
    in_transaction(
        conn,
        lambda: conn.execute(_COPY, (str(ids),)),
    )


def stub_verified(conn: sqlite3.Connection, ids: list[int], name: str) -> None:
    """Phase 2: compare both copies (count and checksum), then turn the bets into stubs."""

    def work() -> None:
        original = conn.execute(_MAIN_ROWS, (str(ids),)).fetchall()
        copied = conn.execute(_ARCHIVED_ROWS, (str(ids),)).fetchall()
        if len(copied) != len(ids) or checksum(original) != checksum(copied):
            raise ArchiveError(
                f"archive check failed for bets {ids[0]}..{ids[-1]}: "
                f"{len(copied)} of {len(ids)} rows, checksums differ"
            )
        conn.execute(_STUB, (name, str(ids)))

    in_transaction(conn, work)


def due_ids(conn: sqlite3.Connection, cutoff_ms: int, after_id: int) -> list[int]:
    """Up to STEP_ROWS unarchived bets settled before ``cutoff_ms``, after ``after_id``."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT b.id FROM bets AS b JOIN settlements AS s ON s.bet_id = b.id "
            "WHERE b.id > ? AND b.archive IS NULL AND s.settled_at < ? ORDER BY b.id LIMIT ?",
            (after_id, cutoff_ms, STEP_ROWS),
        )
    ]


def archive_step(
    conn: sqlite3.Connection, archive_path: Path, cutoff_ms: int, after_id: int
) -> tuple[int, int]:
    """Move up to STEP_ROWS bets settled before ``cutoff_ms`` with id > ``after_id``.

    ``conn`` is a connection in autocommit mode (``isolation_level=None``) to the main
    database. Returns (bets moved, the last id looked at); (0, after_id) when done.
    """
    with attached(conn, archive_path):
        ids = due_ids(conn, cutoff_ms, after_id)
        if not ids:
            return 0, after_id
        copy_to_archive(conn, ids)
        stub_verified(conn, ids, archive_path.name)
        return len(ids), ids[-1]


def archive_all(conn: sqlite3.Connection, archive_path: Path, cutoff_ms: int) -> int:
    """Every step until nothing is left; return the number of bets moved."""
    total = 0
    after = 0
    while True:
        moved, after = archive_step(conn, archive_path, cutoff_ms, after)
        if not moved:
            return total
        total += moved
