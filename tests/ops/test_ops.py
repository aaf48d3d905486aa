"""Readiness and the database check."""

from __future__ import annotations

from pathlib import Path

from anyio.from_thread import BlockingPortal
from starlette.testclient import TestClient

from gateway.client.wallet import Wallet
from gateway.ops.check import run_check
from tests.gatewayproc import (
    client_markets_priced,
    opened,
    tapgate,
)
from tests.inprocess import app_client, bet, fund


def _portal(client: TestClient) -> BlockingPortal:
    """The TestClient's portal into the app's event loop (set while the client is open)."""
    assert client.portal is not None
    return client.portal


def test_readyz_follows_the_database(tmp_path: Path) -> None:
    """/readyz is 503 while writes fail and 200 again once one succeeds; it lists each
    market's state."""
    wallet = Wallet.generate()
    with app_client(tmp_path) as client:
        client_markets_priced(client)
        ready = client.get("/readyz").json()
        assert ready["status"] == "ready"
        assert ready["checks"] == {"writer": "ok", "database": "ok", "markets": "ok"}
        assert {m["state"] for m in ready["markets"].values()} == {"open"}
        fund(client, wallet, 1000)
        writer = client.app.runtime.writer  # type: ignore[attr-defined]
        ((pages,),) = _portal(client).call(writer.execute, "PRAGMA page_count")
        _portal(client).call(writer.execute, f"PRAGMA max_page_count = {pages}")
        codes = [bet(client, wallet, 10) for _ in range(15)]  # until the free pages run out
        assert 503 in codes
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["database"] != "ok"
        assert "Error" not in r.text  # details stay in the logs
        _portal(client).call(writer.execute, "PRAGMA max_page_count = 1073741823")
        assert bet(client, wallet, 10) == 202
        assert client.get("/readyz").status_code == 200


def test_readyz_is_503_while_no_market_takes_bets(tmp_path: Path) -> None:
    """While every market is halted /readyz is 503 and names each market's state; one
    open market makes it 200 again."""
    with app_client(tmp_path) as client:
        client_markets_priced(client)
        runtime = client.app.runtime  # type: ignore[attr-defined]
        symbols = [m.symbol for m in runtime.markets]
        for symbol in symbols:
            _portal(client).call(runtime.markets.halt, symbol, "maintenance")
        halted = client.get("/readyz")
        assert halted.status_code == 503
        assert halted.json()["checks"]["markets"] == "no market is taking bets"
        assert {m["state"] for m in halted.json()["markets"].values()} == {"halted"}
        _portal(client).call(runtime.markets.halt, symbols[0], None)
        resumed = client.get("/readyz")
        assert resumed.status_code == 200, resumed.json()
        assert resumed.json()["markets"][symbols[0]]["state"] == "open"


def test_readyz_when_the_writer_stopped(tmp_path: Path) -> None:
    """A stopped writer makes /readyz 503 and bets 503."""
    wallet = Wallet.generate()
    with app_client(tmp_path) as client:
        client_markets_priced(client)
        runtime = client.app.runtime  # type: ignore[attr-defined]
        _portal(client).call(runtime.writer.stop)
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["writer"] == "not running"
        assert bet(client, wallet, 10) == 503


def test_check_passes_then_catches_a_forged_balance(tmp_path: Path) -> None:
    """tapgate check passes on a healthy database and fails, exit 1, on a balance forged
    with the database's own guard dropped (as an older release or a hand edit could)."""
    wallet = Wallet.generate()
    with app_client(tmp_path) as client:
        client_markets_priced(client)
        fund(client, wallet, 1000)
        assert bet(client, wallet, 100) == 202
    report = run_check(tmp_path / "tapgate.db")
    assert report.ok, report.failed
    assert "ledger invariants" in report.passed
    run = tapgate("check", data=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    with opened(tmp_path / "tapgate.db") as conn:
        conn.execute("DROP TRIGGER accounts_balance_by_ledger")
        conn.execute("UPDATE accounts SET balance = balance + 1 WHERE id = ?", (wallet.address,))
    run = tapgate("check", data=tmp_path)
    assert run.returncode == 1
    assert "FAILED  ledger invariants" in run.stdout


def test_check_on_missing_database(tmp_path: Path) -> None:
    """A missing database is a failed check, not a crash."""
    report = run_check(tmp_path / "none.db")
    assert not report.ok
