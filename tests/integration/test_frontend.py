"""The browser example of docs/FRONTEND.md, run under Node against a live gateway."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.gatewayproc import ROOT, GatewayProcess

EXAMPLE = ROOT / "docs" / "frontend" / "place-bet.mjs"


def test_frontend_doc_shows_the_tested_example() -> None:
    """docs/FRONTEND.md contains the example file verbatim, so the doc cannot drift."""
    doc = (ROOT / "docs" / "FRONTEND.md").read_text()
    assert EXAMPLE.read_text().strip() in doc


def test_node_signs_and_places_a_bet_with_a_fresh_key(gateway: GatewayProcess) -> None:
    """WebCrypto Ed25519 under Node: a fresh wallet's signed bet is accepted (202)."""
    node = shutil.which("node")
    assert node, "Node.js 20+ is needed for this test (Debian: apt-get install nodejs)"
    proc = subprocess.Popen(
        [node, str(EXAMPLE), gateway.url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(EXAMPLE).parent,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        wallet = json.loads(proc.stdout.readline())["wallet"]
        gateway.fund(_Address(wallet), 1000)  # type: ignore[arg-type]
        proc.stdin.write("funded\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, (out, err)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == 202
    assert result["body"]["wallet"] == wallet and result["body"]["status"] == "accepted"


class _Address:
    """Just enough of a Wallet for GatewayProcess.fund: the address."""

    def __init__(self, address: str) -> None:
        self.address = address
