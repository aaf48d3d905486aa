"""``tapgate backup`` and ``tapgate restore``.

A backup is one ``VACUUM INTO`` (a consistent snapshot in one step, safe while the gateway
writes: it is a reader), checked with ``quick_check``, fsynced, and renamed into place, so a
backup file either is complete and checked or does not exist. Restore refuses while a
gateway holds the data directory, verifies the file, and keeps the replaced database aside.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import subprocess  # nosec B404
import time
from pathlib import Path

from gateway.lockfile import hold_lock
from gateway.store.invariants import ledger_violations
from gateway.store.schema import SCHEMA_VERSION

__all__ = ["BackupError", "backup", "restore", "verify_database"]

PREFIX = "tapgate-"


class BackupError(RuntimeError):
    """A backup or restore could not be done; nothing was replaced."""


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def verify_database(path: Path) -> None:
    """Raise BackupError unless ``path`` is a sound tapgate database this release can open."""
    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
        try:
            if conn.execute("PRAGMA quick_check").fetchone() != ("ok",):
                raise BackupError(f"{path}: quick_check failed")
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if not 1 <= version <= SCHEMA_VERSION:
                raise BackupError(f"{path}: schema version {version} is not one this release reads")
            problems = ledger_violations(conn)
            if problems:
                raise BackupError(f"{path}: ledger invariants broken: {problems[0]}")
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path}: not a readable database: {exc}") from exc


def backup(db_path: Path, directory: Path, keep: int, post_command: str | None = None) -> Path:
    """Write a checked backup of ``db_path`` into ``directory``; keep the newest ``keep``."""
    if not db_path.exists():
        raise BackupError(f"{db_path} does not exist")
    directory.mkdir(parents=True, exist_ok=True)
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now * 1e6) % 10**6:06d}Z"
    final = directory / f"{PREFIX}{stamp}.db"
    partial = directory / f".{final.name}.partial"
    partial.unlink(missing_ok=True)
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("VACUUM INTO ?", (str(partial),))
    except sqlite3.DatabaseError as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"VACUUM INTO failed: {exc}") from exc
    finally:
        conn.close()
    try:
        verify_database(partial)
        _fsync_path(partial)
        os.replace(partial, final)
        _fsync_path(directory)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    for old in sorted(directory.glob(f"{PREFIX}*.db"))[:-keep]:
        old.unlink()
    if post_command:  # the operator's own command line, from the CLI, never from a request
        subprocess.run([*shlex.split(post_command), str(final)], check=True, timeout=3600)  # noqa: S603 # nosec B603
    return final


def restore(source: Path, db_path: Path, lock_path: Path) -> Path | None:
    """Put ``source`` in place of the database; return where the old one was kept aside."""
    verify_database(source)
    fd = hold_lock(lock_path)  # raises DataDirLocked while a gateway serves
    try:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside: Path | None = None
        if db_path.exists():
            aside = db_path.with_name(f"{db_path.name}.replaced-{stamp}")
            for suffix in ("", "-wal", "-shm"):
                old = Path(f"{db_path}{suffix}")
                if old.exists():
                    os.replace(old, Path(f"{aside}{suffix}"))
        partial = db_path.with_name(f".{db_path.name}.restoring")
        shutil.copyfile(source, partial)
        _fsync_path(partial)
        os.replace(partial, db_path)
        _fsync_path(db_path.parent)
        return aside
    finally:
        os.close(fd)
