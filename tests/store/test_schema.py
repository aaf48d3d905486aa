"""The database refuses rows that break the invariants, whatever code writes them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.store.database import prepare
from gateway.store.invariants import ledger_violations
from gateway.store.schema import SCHEMA_VERSION
from tests.store.rows import insert_bet

W = "a" * 64


@pytest.fixture
def db(tmp_path: Path) -> sqlite3.Connection:
    prepare(tmp_path / "t.db")
    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("INSERT INTO accounts (id, kind) VALUES (?, 'wallet')", (W,))
    _post(conn, "d1", "deposits", W, 100, "deposit")
    return conn


def _post(
    conn: sqlite3.Connection, txn: str, debit: str, credit: str, amount: int, kind: str
) -> None:
    conn.execute(
        "INSERT INTO postings (txn, debit, credit, amount, kind, created_at) "
        "VALUES (?, ?, ?, ?, ?, 0)",
        (txn, debit, credit, amount, kind),
    )


def test_migrated_to_current_version(db: sqlite3.Connection) -> None:
    """A new database is at the current schema version, in WAL mode."""
    assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_balances_follow_ledger(db: sqlite3.Connection) -> None:
    """Ledger rows move balances through the trigger; the invariants hold."""
    assert db.execute("SELECT balance FROM accounts WHERE id = ?", (W,)).fetchone() == (100,)
    assert ledger_violations(db) == []


def test_wallet_cannot_go_negative(db: sqlite3.Connection) -> None:
    """A posting that would overdraw a wallet is refused, both legs."""
    with pytest.raises(sqlite3.IntegrityError, match="balance >= 0"):
        _post(db, "x", W, "house", 101, "stake")
    assert db.execute("SELECT count(*) FROM ledger WHERE txn = 'x'").fetchone() == (0,)


def test_ledger_is_append_only(db: sqlite3.Connection) -> None:
    """Ledger rows can be neither changed nor deleted."""
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):
        db.execute("UPDATE ledger SET amount = 1")
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):
        db.execute("DELETE FROM ledger")


def test_no_double_posting(db: sqlite3.Connection) -> None:
    """The same transaction cannot post to the same account twice."""
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        _post(db, "d1", "deposits", W, 5, "deposit")


def test_ledger_rows_only_in_balanced_pairs(db: sqlite3.Connection) -> None:
    """A lone ledger row is refused; a posting writes both legs of one amount."""
    with pytest.raises(sqlite3.IntegrityError, match="balanced pairs"):
        db.execute(
            "INSERT INTO ledger (txn, account, amount, kind, created_at) "
            "VALUES ('x', ?, 5, 'deposit', 0)",
            (W,),
        )
    legs = db.execute("SELECT account, amount FROM ledger WHERE txn = 'd1' ORDER BY amount")
    assert legs.fetchall() == [("deposits", -100), (W, 100)]
    assert db.execute("SELECT count(*) FROM ledger_pairing").fetchone() == (0,)


def test_direct_balance_edit_is_refused(db: sqlite3.Connection) -> None:
    """A balance changes only by its ledger row: a direct UPDATE is refused, even one that
    names the last ledger row it claims to apply."""
    with pytest.raises(sqlite3.IntegrityError, match="only through its ledger row"):
        db.execute("UPDATE accounts SET balance = 5 WHERE id = ?", (W,))
    with pytest.raises(sqlite3.IntegrityError, match="only through its ledger row"):
        db.execute(
            "UPDATE accounts SET balance = balance + 100, last_ledger = last_ledger WHERE id = ?",
            (W,),
        )
    with pytest.raises(sqlite3.IntegrityError, match="only through its ledger row"):
        db.execute(
            "UPDATE accounts SET balance = balance + 100, last_ledger = last_ledger + 1 "
            "WHERE id = ?",
            (W,),
        )
    assert db.execute("SELECT balance FROM accounts WHERE id = ?", (W,)).fetchone() == (100,)


def test_direct_balance_edit_is_detected(db: sqlite3.Connection) -> None:
    """A balance changed with the database rules off is reported by the invariant check."""
    db.execute("DROP TRIGGER accounts_balance_by_ledger")
    db.execute("UPDATE accounts SET balance = 5 WHERE id = ?", (W,))
    assert any("ledger sum" in p for p in ledger_violations(db))


def test_ticks_and_settlements_are_never_deleted(db: sqlite3.Connection) -> None:
    """DELETE of a tick or of a settlement is refused by the database."""
    insert_bet(db, W)
    db.execute(
        "INSERT INTO ticks (market, seq, price, ts, received_at, source) "
        "VALUES ('BTC-USD', 1, 100, 1, 1, 'sim')"
    )
    db.execute(
        "INSERT INTO settlements (bet_id, outcome, payout, settled_at) VALUES (1, 'lost', 0, 1)"
    )
    with pytest.raises(sqlite3.IntegrityError, match="deleted only once its archived copy"):
        db.execute("DELETE FROM ticks")
    with pytest.raises(sqlite3.IntegrityError, match="settlements are never deleted"):
        db.execute("DELETE FROM settlements")


def test_a_tick_is_deleted_only_in_a_recorded_archive_range(db: sqlite3.Connection) -> None:
    """Retention may delete the ticks a tick_archives record covers, and no others; the
    records themselves are immutable."""
    for seq in (1, 2, 3):
        db.execute(
            "INSERT INTO ticks (market, seq, price, ts, received_at, source) "
            "VALUES ('BTC-USD', ?, 100, ?, 1, 'sim')",
            (seq, seq),
        )
    db.execute(
        "INSERT INTO tick_archives (market, first_seq, below_seq, archive, rows, checksum, "
        "archived_at) VALUES ('BTC-USD', 1, 3, 'archive.db', 2, 'x', 1)"
    )
    db.execute("DELETE FROM ticks WHERE seq < 3")
    with pytest.raises(sqlite3.IntegrityError, match="deleted only once its archived copy"):
        db.execute("DELETE FROM ticks WHERE seq = 3")
    with pytest.raises(sqlite3.IntegrityError, match="records are immutable"):
        db.execute("UPDATE tick_archives SET below_seq = 4")
    with pytest.raises(sqlite3.IntegrityError, match="records are never deleted"):
        db.execute("DELETE FROM tick_archives")


def test_nonce_unique_per_wallet(db: sqlite3.Connection) -> None:
    """A wallet cannot store the same nonce twice."""
    insert_bet(db, W)
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        insert_bet(db, W, id=2)


@pytest.mark.parametrize(
    "over",
    [
        {"amount": 0},
        {"amount": 10**12 + 1},
        {"amount": 1.5},
        {"multiplier": 100},
        {"potential_payout": 20},
        {"status": "pending"},
        {"wallet": "b" * 64},
    ],
)
def test_bad_bet_rows_refused(db: sqlite3.Connection, over: dict[str, object]) -> None:
    """Out-of-range amounts, wrong payouts, unknown statuses and unknown wallets are refused."""
    with pytest.raises(sqlite3.IntegrityError):
        row = dict(over)
        insert_bet(db, str(row.pop("wallet", W)), **row)


def _settle(db: sqlite3.Connection, outcome: str, payout: int, bet_id: int = 1) -> None:
    db.execute(
        "INSERT INTO settlements (bet_id, outcome, payout, settled_at) VALUES (?, ?, ?, 0)",
        (bet_id, outcome, payout),
    )


def test_status_moves_only_through_one_settlement(db: sqlite3.Connection) -> None:
    """A settlement moves accepted -> won; a second one, or a bare status update, is refused."""
    insert_bet(db, W)
    with pytest.raises(sqlite3.IntegrityError, match="only through its settlement"):
        db.execute("UPDATE bets SET status = 'won' WHERE id = 1")
    payout = db.execute("SELECT potential_payout FROM bets WHERE id = 1").fetchone()[0]
    _settle(db, "won", payout)
    assert db.execute("SELECT status FROM bets WHERE id = 1").fetchone() == ("won",)
    with pytest.raises(sqlite3.IntegrityError):
        _settle(db, "lost", 0)
    with pytest.raises(sqlite3.IntegrityError, match="status"):
        db.execute("UPDATE bets SET status = 'lost' WHERE id = 1")


@pytest.mark.parametrize(("outcome", "payout"), [("won", 1), ("void", 0), ("lost", 5)])
def test_settlement_payout_must_match_the_bet(
    db: sqlite3.Connection, outcome: str, payout: int
) -> None:
    """won pays the potential payout, void the stake, lost nothing; anything else is refused."""
    insert_bet(db, W)
    with pytest.raises(sqlite3.IntegrityError, match="does not match"):
        _settle(db, outcome, payout)
    assert db.execute("SELECT status FROM bets WHERE id = 1").fetchone() == ("accepted",)


def test_ticks_only_increase(db: sqlite3.Connection) -> None:
    """Per market, a tick's seq and timestamp must exceed the last; ticks never change."""
    insert = "INSERT INTO ticks VALUES (?, ?, ?, ?, 0, 'sim', NULL)"
    db.execute(insert, ("BTC-USD", 5, 100, 1000))
    db.execute(insert, ("ETH-USD", 1, 100, 10))  # another market has its own sequence
    for seq, ts in ((5, 2000), (4, 2000), (6, 1000), (6, 999)):
        with pytest.raises(sqlite3.IntegrityError, match="increase|UNIQUE"):
            db.execute(insert, ("BTC-USD", seq, 100, ts))
    db.execute(insert, ("BTC-USD", 6, 101, 1001))
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):
        db.execute("UPDATE ticks SET price = 1 WHERE seq = 6")


def test_newer_schema_refused(tmp_path: Path) -> None:
    """A database from a newer release is not opened by an older one."""
    path = tmp_path / "new.db"
    sqlite3.connect(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="newer"):
        prepare(path)


def test_api_queries_use_indexes(db: sqlite3.Connection) -> None:
    """No API read scans the bets table in full (EXPLAIN QUERY PLAN)."""
    from gateway.store.reader import QUERIES

    params = {
        "bet": (1,),
        "wallet_open": (W,),
        "wallet_bets": (W, 10, None, None, 5),
        "wallet_nonce": (W, "n"),
        "open_bets": ("BTC-USD",),
    }
    assert set(params) == set(QUERIES)
    for name, sql in QUERIES.items():
        plan = " | ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params[name]))
        assert "SCAN" not in plan, (name, plan)
