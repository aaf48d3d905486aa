"""A start that fails: the gateway exits at once with uvicorn's startup status, in both modes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.store.database import prepare
from tests.gatewayproc import GatewayProcess

pytestmark = pytest.mark.integration


def _damage(database: Path, table: str) -> None:
    """Overwrite the root page of ``table``: the file opens, its header and schema read
    back, and the first query of that table fails as "malformed"."""
    with sqlite3.connect(database) as conn:
        ((root,),) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,))
        ((size,),) = conn.execute("PRAGMA page_size")
    conn.close()
    with database.open("r+b") as f:
        f.seek((root - 1) * size)
        f.write(b"\xff" * size)


def _workers_serving(port: int) -> list[str]:
    """Worker processes (anyone's child or an orphan) started for ``port``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"gateway.server.workers" in argv and str(port).encode() in argv:
            found.append(cmdline.parent.name)
    return found


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_database_that_cannot_be_read_back_ends_the_start(tmp_path: Path, workers: str) -> None:
    """The runtime fails to open after its connections did: they are closed, so the process
    exits 3 instead of waiting on their threads forever, and its workers go with it."""
    data = tmp_path / "data"
    database = Settings(data_dir=data).db_path
    prepare(database)
    _damage(database, "accounts")
    gw = GatewayProcess(data, {"TAPGATE_WORKERS": workers})
    with pytest.raises(RuntimeError, match="gateway exited with 3"):
        gw.start(markets_ready=False)
    logs = gw.logs()
    assert '"startup_failed"' in logs and "database disk image is malformed" in logs
    assert _workers_serving(gw.port) == []
