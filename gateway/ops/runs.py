"""The ``ops_runs`` table: every backup, archive and check records its result.

The gateway exports the newest success of each job as
``tapgate_ops_last_success_timestamp_seconds{job}`` and alerts fire when it grows old.
Recording is one short write transaction with a busy timeout, the one write that does not
go through the gateway's writer (ADR 2): it must work while the gateway is stopped too, and
it never holds the write lock for more than one insert.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

__all__ = ["JOBS", "last_runs", "record_run"]

JOBS = ("backup", "archive", "check")


def record_run(db_path: Path, job: str, started: float, ok: bool, detail: str) -> None:
    """Append one result; a database that cannot take it is reported, not fatal."""
    try:
        conn = sqlite3.connect(db_path, timeout=10)
        try:
            with conn:
                conn.execute(
                    "INSERT INTO ops_runs (job, started_at, finished_at, ok, detail) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (job, int(started * 1000), int(time.time() * 1000), int(ok), detail[:2000]),
                )
        finally:
            conn.close()
    except sqlite3.Error as exc:
        print(f"tapgate: could not record the {job} result: {exc}", file=sys.stderr)


def last_runs(conn: sqlite3.Connection) -> dict[str, tuple[int | None, int | None]]:
    """job -> (newest success ms, newest run's ok flag)."""
    out: dict[str, tuple[int | None, int | None]] = {}
    for job in JOBS:
        (success,) = conn.execute(
            "SELECT max(finished_at) FROM ops_runs WHERE job = ? AND ok = 1", (job,)
        ).fetchone()
        last = conn.execute(
            "SELECT ok FROM ops_runs WHERE job = ? ORDER BY finished_at DESC LIMIT 1", (job,)
        ).fetchone()
        out[job] = (success, None if last is None else int(last[0]))
    return out
