"""Ops jobs' results and the gateway's metrics, scraped from a live server."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from gateway.client.wallet import Wallet
from tests.gatewayproc import GatewayProcess, opened, signed, tapgate


def _scrape(gw: GatewayProcess) -> str:
    with gw.client() as c:
        r = c.get("/metrics")
    assert r.status_code == 200
    return r.text


def _sample(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_ops_runs_are_recorded_and_exported(tmp_path: Path) -> None:
    """backup and check record their results; the gateway exports the last success per job."""
    gw = GatewayProcess(tmp_path / "data").start()
    gw.stop()
    before = time.time()
    assert tapgate("check", data=gw.data_dir).returncode == 0
    assert tapgate("backup", "--dir", str(tmp_path / "b"), data=gw.data_dir).returncode == 0
    gw.start()
    try:
        deadline = time.monotonic() + 5
        text = _scrape(gw)
        while 'job="backup"' not in text and time.monotonic() < deadline:
            time.sleep(0.2)
            text = _scrape(gw)
    finally:
        gw.stop()
    for job in ("backup", "check"):
        line = f'tapgate_ops_last_success_timestamp_seconds{{job="{job}"}}'
        stamp = _sample(text, line.split("{")[0] + '{job="' + job + '"}')
        assert stamp is not None and stamp >= before - 1, (job, text[:200])
        assert f'tapgate_ops_last_run_ok{{job="{job}"}} 1.0' in text
    assert (_sample(text, "tapgate_sqlite_wal_bytes") or 0) >= 0
    assert "tapgate_event_loop_lag_seconds_count" in text


def test_failed_check_is_recorded_as_failed(tmp_path: Path) -> None:
    """A check that finds a problem exits 1 and records ok = 0."""

    gw = GatewayProcess(tmp_path / "data").start()
    gw.stop()
    db = gw.data_dir / "tapgate.db"
    with opened(db) as conn:
        conn.execute("DROP TRIGGER ledger_immutable_update")
        conn.execute(
            "INSERT INTO accounts (id, kind, balance) VALUES (?, 'wallet', 5)", ("a" * 64,)
        )
    result = tapgate("check", data=gw.data_dir)
    assert result.returncode == 1 and "FAILED" in result.stdout
    with opened(db) as conn:
        assert conn.execute("SELECT job, ok FROM ops_runs").fetchall() == [("check", 0)]


def test_promtool_accepts_a_live_scrape(gateway: GatewayProcess) -> None:
    """promtool check metrics finds no naming or format problem in a real scrape."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is needed (Debian: apt-get install prometheus)")
    wallet = Wallet.generate()
    gateway.fund(wallet, 1000)
    with gateway.client() as c:
        assert c.post("/api/bets", json=signed(wallet)).status_code == 202
    text = _scrape(gateway)
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name in (
        "tapgate_http_requests_total",
        "tapgate_market_breaker_state",
        "tapgate_market_feed_age_seconds",
        "tapgate_fastpath_implementation",
        "process_resident_memory_bytes",
    ):
        assert name in text
