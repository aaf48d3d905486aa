"""The README's first bet, run as written against a fresh `make run` gateway, three times."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import fastpath
from tests.gatewayproc import ROOT, shared_tls

RUNS = 3
# what `make run` sets (Makefile, DEV_MARKETS)
MAKE_RUN_ENV = {
    "TAPGATE_MARKET_BTC_USD_SIM_START_PRICE": "6500000",
    "TAPGATE_MARKET_BTC_USD_BAND": "1000",
    "TAPGATE_MARKET_ETH_USD_SIM_START_PRICE": "350000",
    "TAPGATE_MARKET_ETH_USD_BAND": "50",
}

pytestmark = pytest.mark.skipif(
    fastpath.NO_EXTENSIONS, reason="minutes of waiting: run once per CI, in the compiled pass"
)


def _first_bet_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Your first bet", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def _serve(work: Path) -> subprocess.Popen[bytes]:
    """A gateway as `make run` starts one, on 127.0.0.1:8080, data under ./var."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPGATE_")}
    env.update(MAKE_RUN_ENV, TAPGATE_DATA_DIR="var", TAPGATE_ADMIN_TOKEN_FILE="var/admin.token")
    log = (work / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--host", "127.0.0.1", "--port", "8080"],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    deadline = time.monotonic() + 60
    while True:
        try:
            health = httpx.get("http://127.0.0.1:8080/healthz", timeout=5, verify=shared_tls())
            if health.status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, (work / "server.log").read_text()[-2000:]
        assert time.monotonic() < deadline, "the gateway did not start"
        time.sleep(0.1)


def test_the_first_bet_block_works_as_written_from_a_fresh_start(tmp_path: Path) -> None:
    """Three times over, a fresh gateway and the README's block typed right after it
    answers: every command succeeds, the bet is accepted and the wallet shows it."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 8080)) == 0:
            pytest.fail("127.0.0.1:8080 is taken: the README's commands use it")
    block = _first_bet_block()
    for run in range(RUNS):
        work = tmp_path / f"run{run}"
        (work / "var").mkdir(parents=True)
        (work / "var/admin.token").write_text("readme-test-token-0123456789\n")
        (work / ".venv").symlink_to(ROOT / ".venv")
        server = _serve(work)
        try:
            result = subprocess.run(
                ["bash", "-e", "-c", block],
                cwd=work,
                capture_output=True,
                text=True,
                timeout=180,
                env={k: v for k, v in os.environ.items() if not k.startswith("TAPGATE_")},
            )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
        assert result.returncode == 0, (run, result.stdout[-3000:], result.stderr[-3000:])
        assert '"status": "accepted"' in result.stdout and '"bets": [' in result.stdout, run
