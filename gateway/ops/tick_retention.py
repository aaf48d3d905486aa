"""Tick retention: ticks that nothing in the main database needs move to ``archive.db``.

A market writes a tick every 250 ms (about 345,600 rows a day), so ``ticks`` would grow
without bound. A tick stays in the main database while any of these needs it:
- it is newer than the archive cutoff (the same age as ``tapgate archive --older-than``);
- it is among the newest ``keep_last`` of its market (the volatility estimator's window,
  read back at start: ``TAPGATE_MARKET_VOL_WINDOW``);
- a bet still in the main database (open, or settled and not yet archived, so still
  disputable there) priced from it or from an earlier one: everything from the oldest such
  bet's quote tick on (its window, and the tick before the window, come later still).
  Bets from before schema v5 name no quote tick: for them, everything from a minute before
  the oldest one was accepted.

A step moves at most STEP_TICKS ticks of one market, in two transactions as the bet archive
does: copy into ``archive.ticks`` (``INSERT OR IGNORE``) and commit; then compare count and
checksum of the range in both databases, record the move in ``tick_archives`` and delete
the range. The ``ticks_no_delete`` trigger refuses to delete a tick that no record covers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path

from gateway.ops.archive import ArchiveError, attached, checksum, in_transaction

__all__ = ["PRE_QUOTE_MARGIN_MS", "STEP_TICKS", "tick_bounds", "tick_step", "ticks_all"]

# A step of 1,000 holds the writer about 10 ms (10,000: about 95 ms), measured 2026-11-29 on
# the EPYC machine with oracle signatures, synchronous=FULL; bet groups run between steps.
STEP_TICKS = 1_000
# Bets from before schema v5 name no quote tick: keep ticks from this long before acceptance.
PRE_QUOTE_MARGIN_MS = 60_000

# The tick columns, spelled out in each statement as the bet archive does: no SQL is assembled.
_COPY = """
INSERT OR IGNORE INTO archive.ticks (market, seq, price, ts, received_at, source, signature)
SELECT market, seq, price, ts, received_at, source, signature
  FROM main.ticks WHERE market = ? AND seq >= ? AND seq < ?
"""
_MAIN_RANGE = """
SELECT market, seq, price, ts, received_at, source, signature
  FROM main.ticks WHERE market = ? AND seq >= ? AND seq < ? ORDER BY seq
"""
_ARCHIVED_RANGE = """
SELECT market, seq, price, ts, received_at, source, signature
  FROM archive.ticks WHERE market = ? AND seq >= ? AND seq < ? ORDER BY seq
"""


def _first_seq(conn: sqlite3.Connection, sql: str, *args: object) -> int | None:
    row = conn.execute(sql, args).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def tick_bounds(
    conn: sqlite3.Connection, cutoff_ms: int, keep_last: Mapping[str, int]
) -> dict[str, int]:
    """Per market, the first seq to keep: every tick below it may move to the archive.

    A market no longer configured (absent from ``keep_last``) keeps only its newest tick.
    """
    bounds: dict[str, int] = {}
    markets = [str(m) for (m,) in conn.execute("SELECT DISTINCT market FROM ticks")]
    for market in markets:
        keep = max(1, keep_last.get(market, 1))
        candidates = [
            # the newest tick is always kept: new ticks must exceed it (ticks_increase)
            _first_seq(conn, "SELECT max(seq) FROM ticks WHERE market = ?", market),
            _first_seq(
                conn, "SELECT min(seq) FROM ticks WHERE market = ? AND ts >= ?", market, cutoff_ms
            ),
            _first_seq(
                conn,
                "SELECT seq FROM ticks WHERE market = ? ORDER BY seq DESC LIMIT 1 OFFSET ?",
                market,
                keep - 1,
            ),
            _first_seq(
                conn,
                "SELECT min(quote_seq) FROM bets WHERE market = ? AND archive IS NULL",
                market,
            ),
        ]
        oldest_unquoted = _first_seq(
            conn,
            "SELECT min(accepted_at) FROM bets "
            "WHERE market = ? AND archive IS NULL AND quote_seq IS NULL",
            market,
        )
        if oldest_unquoted is not None:
            since = oldest_unquoted - PRE_QUOTE_MARGIN_MS
            candidates.append(
                _first_seq(
                    conn, "SELECT max(seq) FROM ticks WHERE market = ? AND ts < ?", market, since
                )
                or 0
            )
        if candidates[2] is None:  # fewer than keep_last ticks: keep them all
            continue
        bounds[market] = min(c for c in candidates if c is not None)
    return bounds


def tick_step(
    conn: sqlite3.Connection, archive_path: Path, market: str, below_seq: int, now_ms: int
) -> int:
    """Move up to STEP_TICKS of ``market``'s ticks with seq < ``below_seq``; how many moved.

    ``conn`` is in autocommit mode (``isolation_level=None``) on the main database.
    """
    with attached(conn, archive_path):
        seqs = [
            int(s)
            for (s,) in conn.execute(
                "SELECT seq FROM main.ticks WHERE market = ? AND seq < ? ORDER BY seq LIMIT ?",
                (market, below_seq, STEP_TICKS),
            )
        ]
        if not seqs:
            return 0
        first, below = seqs[0], seqs[-1] + 1
        in_transaction(conn, lambda: conn.execute(_COPY, (market, first, below)))

        def verify_then_delete() -> None:
            original = conn.execute(_MAIN_RANGE, (market, first, below)).fetchall()
            copied = conn.execute(_ARCHIVED_RANGE, (market, first, below)).fetchall()
            digest = checksum(original)
            if len(copied) != len(original) or checksum(copied) != digest:
                raise ArchiveError(
                    f"tick archive check failed for {market} {first}..{below - 1}: "
                    f"{len(copied)} of {len(original)} rows, checksums differ"
                )
            conn.execute(
                "INSERT INTO main.tick_archives "
                "(market, first_seq, below_seq, archive, rows, checksum, archived_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (market, first, below, archive_path.name, len(original), digest, now_ms),
            )
            conn.execute(
                "DELETE FROM main.ticks WHERE market = ? AND seq >= ? AND seq < ?",
                (market, first, below),
            )

        in_transaction(conn, verify_then_delete)
        return len(seqs)


def ticks_all(
    conn: sqlite3.Connection,
    archive_path: Path,
    cutoff_ms: int,
    keep_last: Mapping[str, int],
    now_ms: int,
) -> int:
    """Every step for every market until nothing is due; the number of ticks moved."""
    moved = 0
    for market, below in tick_bounds(conn, cutoff_ms, keep_last).items():
        while step := tick_step(conn, archive_path, market, below, now_ms):
            moved += step
    return moved
