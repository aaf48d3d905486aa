"""Tick retention: only ticks nothing needs leave the main database, verified and recorded."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.ops import tick_retention
from gateway.ops.archive import ArchiveError, attached
from gateway.ops.check import run_check
from gateway.ops.tick_retention import PRE_QUOTE_MARGIN_MS, tick_bounds, tick_step, ticks_all
from gateway.store.database import prepare
from tests.store.rows import insert_bet

WALLET = "cd" * 32
TICK_MS = 250
KEEP = {"BTC-USD": 10}


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A migrated database with ticks 1..100 of BTC-USD (ts = seq * 250) and a funded wallet."""
    path = tmp_path / "tapgate.db"
    prepare(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.executemany(
        "INSERT INTO ticks (market, seq, price, ts, received_at, source) "
        "VALUES ('BTC-USD', ?, ?, ?, ?, 'sim')",
        [(seq, 100_000 + seq, seq * TICK_MS, seq * TICK_MS) for seq in range(1, 101)],
    )
    db.execute("INSERT INTO accounts (id, kind) VALUES (?, 'wallet')", (WALLET,))
    db.execute("INSERT INTO deposits VALUES ('dep-1', ?, 1000, 1)", (WALLET,))
    db.execute(
        "INSERT INTO postings (txn, debit, credit, amount, kind, created_at) "
        "VALUES ('deposit:dep-1', 'deposits', ?, 1000, 'deposit', 1)",
        (WALLET,),
    )
    yield db
    db.close()


def _bet(db: sqlite3.Connection, bet_id: int, quote_seq: int | None, accepted_at: int) -> None:
    """A bet priced from tick ``quote_seq`` (None: from before schema v5), staked by the
    schema's trigger."""
    p_win = None if quote_seq is None else 0.5
    insert_bet(db, WALLET, id=bet_id, nonce=f"n{bet_id}", multiplier=194, ts=accepted_at,
               accepted_at=accepted_at, quote_seq=quote_seq, quote_p=p_win)  # fmt: skip


def _seqs(db: sqlite3.Connection, table: str = "main.ticks") -> list[int]:
    assert table in ("main.ticks", "archive.ticks")
    return [s for (s,) in db.execute(f"SELECT seq FROM {table} ORDER BY seq")]  # noqa: S608


def test_the_bound_is_the_oldest_thing_still_needed(conn: sqlite3.Connection) -> None:
    """The first kept tick is the earliest of: the cutoff, the newest keep_last, and the
    quote tick of a bet still in the main database."""
    assert tick_bounds(conn, 80 * TICK_MS, KEEP) == {"BTC-USD": 80}  # the cutoff
    assert tick_bounds(conn, 99 * TICK_MS, KEEP) == {"BTC-USD": 91}  # the newest ten
    _bet(conn, 1, quote_seq=50, accepted_at=50 * TICK_MS)
    assert tick_bounds(conn, 80 * TICK_MS, KEEP) == {"BTC-USD": 50}  # the bet's quote tick
    conn.execute("UPDATE bets SET archive = 'archive.db', receipt = '', signature = ''")
    assert tick_bounds(conn, 80 * TICK_MS, KEEP) == {"BTC-USD": 80}  # archived: not needed
    assert tick_bounds(conn, 80 * TICK_MS, {"BTC-USD": 500}) == {}  # fewer than keep_last


def test_a_bet_without_a_quote_tick_keeps_a_minute_before_it(conn: sqlite3.Connection) -> None:
    """A bet from before schema v5 keeps every tick from a minute before its acceptance on."""
    _bet(conn, 1, quote_seq=None, accepted_at=90 * TICK_MS + PRE_QUOTE_MARGIN_MS)
    assert tick_bounds(conn, 99 * TICK_MS, KEEP) == {"BTC-USD": 89}  # the last before 90


def test_retention_moves_exactly_the_unneeded_ticks(
    conn: sqlite3.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ticks below the bound move, in steps, each recorded; the copies are identical and the
    database check still passes."""
    monkeypatch.setattr(tick_retention, "STEP_TICKS", 7)
    archive = tmp_path / "archive.db"
    _bet(conn, 1, quote_seq=50, accepted_at=50 * TICK_MS)
    before = conn.execute("SELECT * FROM ticks ORDER BY seq").fetchall()
    assert ticks_all(conn, archive, 80 * TICK_MS, KEEP, now_ms=1) == 49
    assert _seqs(conn) == list(range(50, 101))
    records = conn.execute("SELECT first_seq, below_seq, rows FROM tick_archives").fetchall()
    assert [r[2] for r in records] == [7] * 7 and records[-1][1] == 50
    with attached(conn, archive):
        copied = conn.execute("SELECT * FROM archive.ticks ORDER BY seq").fetchall()
    assert copied == before[:49]
    assert ticks_all(conn, archive, 80 * TICK_MS, KEEP, now_ms=2) == 0  # nothing more is due
    conn.close()
    report = run_check(tmp_path / "tapgate.db")
    assert report.ok, report.failed


def test_an_interrupted_move_resumes_and_a_bad_copy_deletes_nothing(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    """A copy left by a crash is verified on the next run; a copy that differs stops the run
    with every tick still in the main database."""
    archive = tmp_path / "archive.db"
    with attached(conn, archive):  # a run that stopped after copying ticks 1..19
        conn.execute("INSERT INTO archive.ticks SELECT * FROM main.ticks WHERE seq < 20")
        conn.execute("UPDATE archive.ticks SET price = price + 1 WHERE seq = 5")  # gone bad
    with pytest.raises(ArchiveError, match="checksums differ"):
        tick_step(conn, archive, "BTC-USD", 30, now_ms=1)
    assert _seqs(conn) == list(range(1, 101))
    assert conn.execute("SELECT count(*) FROM tick_archives").fetchone() == (0,)
    with attached(conn, archive):
        conn.execute("UPDATE archive.ticks SET price = price - 1 WHERE seq = 5")  # repaired
    assert tick_step(conn, archive, "BTC-USD", 30, now_ms=2) == 29
    assert _seqs(conn) == list(range(30, 101))
