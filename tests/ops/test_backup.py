"""The backup drill: traffic, backup, database lost, restore, restart."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.client.wallet import Wallet
from gateway.lockfile import DataDirLocked, hold_lock
from gateway.ops.backup import BackupError, backup, restore
from gateway.store.invariants import ledger_violations
from tests.gatewayproc import client_markets_priced, opened, tapgate
from tests.inprocess import app_client, bet, fund


def _count(db: Path) -> tuple[int, int]:
    with opened(db) as conn:
        (bets,) = conn.execute("SELECT count(*) FROM bets").fetchone()
        (ledger,) = conn.execute("SELECT count(*) FROM ledger").fetchone()
    return int(bets), int(ledger)


def test_drill_restores_everything_up_to_the_backup(tmp_path: Path) -> None:
    """Bets before the backup come back after a restore; the ledger still balances."""
    data = tmp_path / "data"
    wallet = Wallet.generate()
    with app_client(data) as client:
        client_markets_priced(client)
        fund(client, wallet, 1000)
        assert [bet(client, wallet, 10) for _ in range(5)] == [202] * 5
        saved = backup(data / "tapgate.db", tmp_path / "backups", keep=5)  # while serving
        assert [bet(client, wallet, 10) for _ in range(2)] == [202] * 2
    for suffix in ("", "-wal", "-shm"):
        Path(f"{data / 'tapgate.db'}{suffix}").unlink(missing_ok=True)
    assert restore(saved, data / "tapgate.db", data / "lock") is None
    with app_client(data) as client:
        client_markets_priced(client)
        assert client.get("/readyz").status_code == 200
        assert bet(client, wallet, 10) == 202
        runtime = client.app.runtime  # type: ignore[attr-defined]
        assert runtime.accounts.balance(wallet.address) == 1000 - 6 * 10
    assert _count(data / "tapgate.db") == (6, 1 * 2 + 6 * 2)
    with opened(data / "tapgate.db") as conn:
        assert ledger_violations(conn) == []


def test_restore_keeps_the_old_database_and_refuses_while_locked(tmp_path: Path) -> None:
    """The replaced database is kept aside; a held lock or a bad file refuses the restore."""
    data = tmp_path / "data"
    with app_client(data):
        pass
    saved = backup(data / "tapgate.db", tmp_path / "b", keep=1)
    fd = hold_lock(data / "lock")
    try:
        with pytest.raises(DataDirLocked):
            restore(saved, data / "tapgate.db", data / "lock")
    finally:
        os.close(fd)
    aside = restore(saved, data / "tapgate.db", data / "lock")
    assert aside is not None and aside.exists()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(BackupError):
        restore(junk, data / "tapgate.db", data / "lock")


def test_cli_backup_keeps_the_newest_and_restore_obeys_the_lock(tmp_path: Path) -> None:
    """tapgate backup --keep 2 leaves the two newest copies; restore waits for the lock."""
    data = tmp_path / "data"
    with app_client(data):
        pass
    made = []
    for _ in range(3):
        run = tapgate("backup", "--keep", "2", data=data)
        assert run.returncode == 0, run.stderr
        made.append(Path(run.stdout.strip()))
    assert sorted((data / "backups").glob("tapgate-*.db")) == sorted(made[1:])
    assert not list((data / "backups").glob(".*partial"))
    fd = hold_lock(data / "lock")
    try:
        refused = tapgate("restore", str(made[-1]), data=data)
    finally:
        os.close(fd)
    assert refused.returncode == 1 and "stop the gateway" in refused.stderr
    done = tapgate("restore", str(made[-1]), data=data)
    assert done.returncode == 0, done.stderr
    assert "kept at" in done.stdout
    assert tapgate("check", data=data).returncode == 0
    bad = tapgate("restore", str(tmp_path / "missing.db"), data=data)
    assert bad.returncode == 1 and "refused" in bad.stderr
