"""Forward-only migrations from a fixture database of every earlier schema version."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.ops.check import run_check
from gateway.store.database import prepare
from gateway.store.invariants import ledger_violations
from gateway.store.schema import MIGRATIONS, SCHEMA_VERSION
from tests.gatewayproc import opened
from tests.store.make_fixtures import FIXTURES, WALLET

EARLIER = range(1, SCHEMA_VERSION)


def test_every_earlier_version_has_a_fixture() -> None:
    """A new migration comes with the fixture of the version before it."""
    assert sorted(p.name for p in FIXTURES.glob("v*.sql")) == sorted(f"v{v}.sql" for v in EARLIER)
    assert len(MIGRATIONS) == SCHEMA_VERSION


@pytest.mark.parametrize("version", EARLIER)
def test_fixture_migrates_to_the_current_schema(tmp_path: Path, version: int) -> None:
    """Data of an old release survives the upgrade; invariants and checks still hold."""
    path = tmp_path / "tapgate.db"
    with opened(path) as conn:
        conn.executescript((FIXTURES / f"v{version}.sql").read_text())
        assert conn.execute("PRAGMA user_version").fetchone() == (version,)
        balance = conn.execute("SELECT balance FROM accounts WHERE id = ?", (WALLET,)).fetchone()
        bets = conn.execute("SELECT count(*) FROM bets").fetchone()
    conn.close()
    assert prepare(path) == version
    with opened(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert (
            conn.execute("SELECT balance FROM accounts WHERE id = ?", (WALLET,)).fetchone()
            == balance
        )
        assert conn.execute("SELECT count(*) FROM bets").fetchone() == bets
        assert ledger_violations(conn) == []
        # the newest rules apply to old rows: bet 2 settles once, through its settlement
        conn.execute(
            "INSERT INTO settlements (bet_id, outcome, payout, settled_at) "
            "VALUES (2, 'lost', 0, 99)"
        )
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE bets SET status = 'void' WHERE id = 2")
        assert conn.execute("SELECT status, archive FROM bets WHERE id = 2").fetchone() == (
            "lost",
            None,
        )
    conn.close()
    report = run_check(path)
    assert report.ok, report.failed
    assert prepare(path) == SCHEMA_VERSION  # a second start migrates nothing
