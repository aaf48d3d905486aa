"""A group of bets or a chunk of settlements is one statement: its ledger rows come with
the rows, or nothing is stored."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from fastpath import BatchQueue
from gateway.metrics import Metrics
from gateway.store.database import prepare
from gateway.store.inserts import transaction
from gateway.store.invariants import ledger_violations
from gateway.store.markets import Settlement, settle
from gateway.store.writer import GroupStored, Writer, _write_bets, group_values
from tests.store.rows import insert_bet

W = "a" * 64
V = "b" * 64


@pytest.fixture
def db(tmp_path: Path) -> sqlite3.Connection:
    prepare(tmp_path / "t.db")
    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    for wallet in (W, V):
        conn.execute("INSERT INTO accounts (id, kind) VALUES (?, 'wallet')", (wallet,))
        conn.execute(
            "INSERT INTO postings (txn, debit, credit, amount, kind, created_at) "
            "VALUES (?, 'deposits', ?, 100, 'deposit', 0)",
            (f"deposit:{wallet}", wallet),
        )
    return conn


def _row(
    bet_id: int, wallet: str, nonce: str, amount: int, receipt: str | None = None
) -> list[object]:
    """A bet's values in the writer's insert order, its receipt naming its id unless given."""
    receipt = f"receipt-{bet_id}" if receipt is None else receipt
    return [bet_id, wallet, nonce, "BTC-USD", "cell-1-1", amount, 200, 2 * amount, None, 1,
            "s", 2, receipt, 1, 0.1, 0.2, 0.5]  # fmt: skip


def _balance(db: sqlite3.Connection, account: str) -> int:
    return int(db.execute("SELECT balance FROM accounts WHERE id = ?", (account,)).fetchone()[0])


def test_a_bet_row_posts_its_stake(db: sqlite3.Connection) -> None:
    """Inserting a bet, whatever writes it, debits the wallet and credits the house."""
    insert_bet(db, W, amount=30, potential_payout=57)
    legs = db.execute("SELECT account, amount FROM ledger WHERE txn = 'stake:1' ORDER BY amount")
    assert legs.fetchall() == [(W, -30), ("house", 30)]
    assert _balance(db, W) == 70
    assert ledger_violations(db) == []


def test_a_bet_the_wallet_cannot_pay_is_not_stored(db: sqlite3.Connection) -> None:
    """A stake above the balance refuses the bet row itself, not only its ledger rows."""
    with pytest.raises(sqlite3.IntegrityError, match="balance >= 0"):
        insert_bet(db, W, amount=101, potential_payout=191)
    assert db.execute("SELECT count(*) FROM bets").fetchone() == (0,)
    assert _balance(db, W) == 100


def test_a_group_commits_by_itself(db: sqlite3.Connection) -> None:
    """The group's one statement leaves no transaction open; rows and stakes are durable."""
    rows = group_values([_row(1, W, "n1", 10), _row(2, V, "n1", 20)], 7)
    assert _write_bets(db, rows, (1, 2, 2), 7, lambda skipped: []) == set()
    assert not db.in_transaction
    assert (_balance(db, W), _balance(db, V), _balance(db, "house")) == (90, 80, 30)
    assert db.execute("SELECT count(*) FROM bets WHERE batch_id = 7").fetchone() == (2,)


def test_a_group_past_the_bound_parameter_limit_is_still_all_or_nothing(
    db: sqlite3.Connection,
) -> None:
    """A group with more values than one statement binds is written in several statements
    in one transaction: all of it, or (one row refused) none of it."""
    db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 2 * 18)  # two rows a statement
    rows = group_values([_row(1, W, "n1", 10), _row(2, V, "n1", 20), _row(3, W, "n2", 5)], 7)
    assert _write_bets(db, rows, (1, 3, 3), 7, lambda skipped: []) == set()
    assert not db.in_transaction
    assert (_balance(db, W), _balance(db, V)) == (85, 80)
    assert db.execute("SELECT count(*) FROM bets WHERE batch_id = 7").fetchone() == (3,)
    refused = group_values([_row(4, W, "n3", 1), _row(5, V, "n2", 1), _row(6, W, "n4", 99)], 8)
    with pytest.raises(sqlite3.IntegrityError):  # the third row, in the second statement
        _write_bets(db, refused, (4, 6, 3), 8, lambda skipped: [])
    assert not db.in_transaction
    assert db.execute("SELECT count(*) FROM bets WHERE batch_id = 8").fetchone() == (0,)
    assert (_balance(db, W), _balance(db, V)) == (85, 80)


def test_a_failing_row_stores_nothing_of_its_group(db: sqlite3.Connection) -> None:
    """One bet the wallet cannot pay rolls back every bet and stake of its group."""
    rows = group_values([_row(1, W, "n1", 10), _row(2, V, "n1", 101)], 7)
    with pytest.raises(sqlite3.IntegrityError):
        _write_bets(db, rows, (1, 2, 2), 7, lambda skipped: [])
    assert not db.in_transaction
    assert db.execute("SELECT count(*) FROM bets").fetchone() == (0,)
    assert (_balance(db, W), _balance(db, V)) == (100, 100)


def test_a_reused_nonce_is_skipped_and_later_receipts_rebuilt(db: sqlite3.Connection) -> None:
    """A nonce used long ago is skipped (no stake); the wallet's later bets in the group
    get the receipts rebuilt without it."""
    insert_bet(db, W, id=1, nonce="old", amount=5, potential_payout=9)
    rows = group_values([_row(2, W, "old", 10), _row(3, W, "new", 20), _row(4, V, "n", 1)], 9)
    asked: list[set[int]] = []

    def rebuild(skipped: set[int]) -> list[tuple[str, int]]:
        asked.append(skipped)
        return [("rebuilt-3", 3), ("rebuilt-4", 4)]

    assert _write_bets(db, rows, (2, 4, 3), 9, rebuild) == {2}
    assert asked == [{2}]
    stored = db.execute("SELECT id, receipt FROM bets WHERE batch_id = 9 ORDER BY id")
    assert stored.fetchall() == [(3, "rebuilt-3"), (4, "rebuilt-4")]
    assert _balance(db, W) == 100 - 5 - 20
    assert db.execute("SELECT count(*) FROM ledger WHERE txn = 'stake:2'").fetchone() == (0,)
    assert not db.in_transaction


def test_a_stored_group_whose_read_back_fails_is_not_reported_refused(
    db: sqlite3.Connection,
) -> None:
    """When the group committed but its reused-nonce fix-up fails, the writer says the group
    is stored (GroupStored), never that the database refused it: its stakes are taken."""
    insert_bet(db, W, id=1, nonce="old", amount=5, potential_payout=9)
    rows = group_values([_row(2, W, "old", 10), _row(3, W, "new", 20)], 9)

    def failing(skipped: set[int]) -> list[tuple[str, int]]:
        raise sqlite3.OperationalError("disk I/O error")

    with pytest.raises(GroupStored, match="group 9 is stored"):
        _write_bets(db, rows, (2, 3, 2), 9, failing)
    assert not db.in_transaction
    assert db.execute("SELECT id FROM bets WHERE batch_id = 9").fetchall() == [(3,)]
    assert _balance(db, W) == 100 - 5 - 20


def test_a_failed_transaction_is_rolled_back_before_the_next_group(
    db: sqlite3.Connection,
) -> None:
    """A transaction that fails half-way (a deposit, a fix-up) leaves nothing behind, and
    the next group is written on its own."""

    def half_then_fail() -> None:
        db.execute("INSERT INTO deposits VALUES ('late', ?, 5, 0)", (W,))
        raise sqlite3.OperationalError("database or disk is full")

    with pytest.raises(sqlite3.OperationalError, match="full"):
        transaction(db, half_then_fail)
    assert not db.in_transaction
    assert (
        _write_bets(db, group_values([_row(1, W, "n1", 10)], 1), (1, 1, 1), 1, lambda s: [])
        == set()
    )
    assert db.execute("SELECT count(*) FROM deposits WHERE reference = 'late'").fetchone() == (0,)
    assert _balance(db, W) == 90


def test_a_transaction_left_open_is_not_committed_with_a_group(db: sqlite3.Connection) -> None:
    """The writer refuses to write a group into someone else's open transaction."""
    db.execute("BEGIN")
    with pytest.raises(sqlite3.OperationalError, match="left open"):
        _write_bets(db, group_values([_row(1, W, "n1", 10)], 1), (1, 1, 1), 1, lambda s: [])
    db.execute("ROLLBACK")
    assert db.execute("SELECT count(*) FROM bets").fetchone() == (0,)


@pytest.mark.parametrize(
    ("outcome", "payout", "legs"),
    [("won", 19, [(W, "payout", 19)]), ("void", 10, [(W, "refund", 10)]), ("lost", 0, [])],
)
def test_a_settlement_posts_its_payout(
    db: sqlite3.Connection, outcome: str, payout: int, legs: list[tuple[str, str, int]]
) -> None:
    """Inserting a won or void settlement, whatever writes it, pays the wallet from the
    house; a lost one posts nothing."""
    insert_bet(db, W)
    db.execute(
        "INSERT INTO settlements (bet_id, outcome, payout, settled_at) VALUES (1, ?, ?, 5)",
        (outcome, payout),
    )
    rows = db.execute(
        "SELECT account, kind, amount FROM ledger WHERE bet_id = 1 AND kind <> 'stake' "
        "AND amount > 0"
    )
    assert rows.fetchall() == legs
    assert _balance(db, W) == 90 + payout
    assert ledger_violations(db) == []


def test_settle_writes_the_open_bets_in_one_statement(db: sqlite3.Connection) -> None:
    """settle() settles the bets still open, skips the others, and commits by itself."""
    insert_bet(db, W, id=1, nonce="n1")
    insert_bet(db, W, id=2, nonce="n2")
    settle(db, [Settlement(2, W, "lost", 0, None)], 5)
    items = [Settlement(1, W, "won", 19, 7), Settlement(2, W, "won", 19, 7)]
    assert settle(db, items, 9) == [1]
    assert not db.in_transaction
    statuses = db.execute("SELECT id, status FROM bets ORDER BY id").fetchall()
    assert statuses == [(1, "won"), (2, "lost")]
    assert _balance(db, W) == 100 - 10 - 10 + 19
    assert db.execute("SELECT count(*) FROM ledger WHERE txn = 'payout:2'").fetchone() == (0,)


def test_a_settlement_chunk_past_the_bound_parameter_limit_is_still_all_or_nothing(
    db: sqlite3.Connection,
) -> None:
    """settle() with more values than one statement binds writes several statements in one
    transaction: no bet settled when the database refuses one, every bet otherwise."""
    for bet_id in (1, 2, 3):
        insert_bet(db, W, id=bet_id, nonce=f"n{bet_id}")
    db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 2 * 5)  # two settlements a statement
    wrong = [Settlement(1, W, "won", 19, 7), Settlement(2, W, "lost", 0, 7),
             Settlement(3, W, "won", 18, 7)]  # fmt: skip
    with pytest.raises(sqlite3.IntegrityError):  # the third row, in the second statement
        settle(db, wrong, 9)
    assert not db.in_transaction
    assert db.execute("SELECT count(*) FROM settlements").fetchone() == (0,)
    assert _balance(db, W) == 70
    right = [*wrong[:2], Settlement(3, W, "void", 10, None)]
    assert settle(db, right, 9) == [1, 2, 3]
    statuses = db.execute("SELECT id, status FROM bets ORDER BY id").fetchall()
    assert statuses == [(1, "won"), (2, "lost"), (3, "void")]
    assert _balance(db, W) == 70 + 19 + 10
    assert ledger_violations(db) == []


class _Bet:
    """A queued bet as the writer sees it (store.writer.Queued)."""

    def __init__(self, wallet: str, nonce: str, amount: int) -> None:
        self.bet_id = 0
        self.batch_id = 0
        self.enqueued_at = 0.0
        self.values = (wallet, nonce, amount)

    def row(self, receipt: bytes) -> tuple[object, ...]:
        return tuple(_row(self.bet_id, *self.values, receipt=receipt.decode()))


class _Outcomes:
    """Records each bet's outcome; fails to rebuild receipts, as a bug would."""

    def __init__(self) -> None:
        self.seen: dict[str, list[int]] = {"committed": [], "refused": [], "unknown": []}

    def receipts(self, group: list[_Bet], skipped: set[int]) -> list[bytes]:
        if skipped:
            raise RuntimeError("a bug while rebuilding receipts")
        return [f"receipt-{bet.bet_id}".encode() for bet in group]

    def committed(self, bets: list[_Bet], receipts: list[bytes]) -> None:
        self.seen["committed"] += [bet.bet_id for bet in bets]

    def refused(self, bet: _Bet, refusal: object) -> None:
        self.seen["refused"].append(bet.bet_id)

    def unknown(self, bets: list[_Bet]) -> None:
        self.seen["unknown"] += [bet.bet_id for bet in bets]


def test_the_writer_never_refuses_a_stored_group(db: sqlite3.Connection, tmp_path: Path) -> None:
    """A group stored whose read-back fails is answered 'unknown' (reservations kept) and
    the flusher stops; none of its bets is reported refused."""
    insert_bet(db, W, id=1, nonce="old", amount=5, potential_payout=9)
    outcomes = _Outcomes()

    async def scenario() -> bool:
        writer: Writer[_Bet] = Writer(
            tmp_path / "t.db", "FULL", BatchQueue(64), batch_max=2, batch_wait_ms=1,
            next_bet_id=2, next_batch_id=5, metrics=Metrics(CollectorRegistry(), process=False),
        )  # fmt: skip
        writer.outcomes = outcomes  # type: ignore[assignment]
        writer.start()
        for bet in (_Bet(W, "old", 10), _Bet(V, "new", 20)):
            assert writer.submit(bet, asyncio.get_running_loop().time())
        for _ in range(3000):  # bounded, not timed: a group answered either way ends it
            if not writer.alive or outcomes.seen["refused"] or outcomes.seen["committed"]:
                break
            await asyncio.sleep(0.01)
        alive = writer.alive
        await writer.stop()
        return alive

    assert asyncio.run(scenario()) is False
    assert outcomes.seen == {"committed": [], "refused": [], "unknown": [2, 3]}
    assert db.execute("SELECT id FROM bets WHERE batch_id = 5").fetchall() == [(3,)]
