"""Measure the recovery time: restore a backup of N bets, start, wait until bets are priced.

    .venv/bin/python bench/rto.py --bets 1000000

Builds a database with N settled-size bets (synthetic rows through the real schema and its
triggers), backs it up with `tapgate backup`, deletes the database, then times
`tapgate restore` and `tapgate serve` until /readyz is 200 and the grid is open.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.store.database import prepare  # noqa: E402

WALLET = "cd" * 32


def build(db: Path, bets: int) -> None:
    import sqlite3

    prepare(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript(
        f"""
        BEGIN;
        INSERT INTO accounts (id, kind) VALUES ('{WALLET}', 'wallet');
        INSERT INTO deposits VALUES ('d', '{WALLET}', {bets * 10}, 0);
        INSERT INTO postings (txn, debit, credit, amount, kind, created_at)
        VALUES ('deposit:d', 'deposits', '{WALLET}', {bets * 10}, 'deposit', 0);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {bets})
        INSERT INTO bets (id, wallet, nonce, market, cell_id, amount, multiplier,
                          potential_payout, ts, signature, accepted_at, batch_id, receipt)
        SELECT i, '{WALLET}', 'n' || i, 'BTC-USD', 'cell-650-' || (i / 100), 10, 190, 19,
               i, '{"0" * 128}', i, i / 256 + 1, printf('%.330c', 'x') FROM n;
        INSERT INTO settlements (bet_id, outcome, payout, settled_at)
        SELECT id, 'lost', 0, id FROM bets;
        COMMIT;
        """  # noqa: S608 - a benchmark fixture built from constants
    )
    conn.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bets", type=int, default=1_000_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tapgate-rto-"))
    data = work / "data"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TAPGATE_")},
        "TAPGATE_DATA_DIR": str(data),
        "TAPGATE_LOG_LEVEL": "warning",
    }
    tapgate = [sys.executable, "-m", "gateway"]
    try:
        started = time.perf_counter()
        build(data / "tapgate.db", args.bets)
        print(f"built {args.bets} bets in {time.perf_counter() - started:.1f} s")
        size = (data / "tapgate.db").stat().st_size
        backup = subprocess.run(
            [*tapgate, "backup", "--dir", str(work / "b")],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{data / 'tapgate.db'}{suffix}").unlink(missing_ok=True)
        t0 = time.perf_counter()
        subprocess.run(
            [*tapgate, "restore", backup], env=env, cwd=ROOT, check=True, capture_output=True
        )
        t_restore = time.perf_counter() - t0
        server = subprocess.Popen([*tapgate, "serve", "--port", "8097"], env=env, cwd=ROOT)
        try:
            while True:
                try:
                    ready = httpx.get("http://127.0.0.1:8097/readyz", timeout=1).status_code
                    cells = httpx.get(
                        "http://127.0.0.1:8097/api/markets/BTC-USD/grid", timeout=1
                    ).json()["cells"]
                    if ready == 200 and cells:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
            total = time.perf_counter() - t0
        finally:
            server.terminate()
            server.wait(30)
        print(
            f"database {size / 1e6:.0f} MB: restore {t_restore:.2f} s, "
            f"restore to priced and ready {total:.2f} s"
        )
    finally:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
