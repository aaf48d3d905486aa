"""The client module (gateway/static/tapgate.mjs) under Node's test runner against a live
gateway, and its types against /openapi.json."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.client.wallet import Wallet
from gateway.http.openapi import openapi
from gateway.http.stream import subscribe_message
from gateway.protocol import bet_message, read_message
from tests.gatewayproc import ROOT, GatewayProcess

pytestmark = pytest.mark.browser

NODE_BIN = ROOT / "node_modules" / ".bin"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js 20+ is needed (Debian: apt-get install nodejs; .ci/run does)")
    return node


def _vectors(tmp_path: Path) -> dict[str, object]:
    """What the Python side says the messages and a CLI key are."""
    fields = {"wallet": "ab" * 32, "market": "BTC-USD", "cell_id": "cell-3-7", "amount": 100,
              "nonce": "n-1", "timestamp": 1795348021520, "min_multiplier": "1.50"}  # fmt: skip
    key = Wallet.generate()
    key.save(tmp_path / "player.key")
    return {
        "bet": {
            "fields": fields,
            "message": bet_message(
                "ab" * 32, "BTC-USD", "cell-3-7", 100, "n-1", 1795348021520, "1.50"
            ).decode(),  # fmt: skip
            "message_without_min": bet_message(
                "ab" * 32, "BTC-USD", "cell-3-7", 100, "n-1", 1795348021520, None
            ).decode(),  # fmt: skip
        },
        "read": read_message("GET", "/api/wallets/ab?limit=5", 42).decode(),
        "subscribe": subscribe_message("c" * 32, "ab" * 32, 42).decode(),
        "key_file": (tmp_path / "player.key").read_text(),
        "key_address": key.address,
    }


def test_the_module_passes_its_node_tests_against_a_live_gateway(
    web_gateway: GatewayProcess, tmp_path: Path
) -> None:
    """Keys, messages, bets with idempotent retries, signed reads and the stream."""
    gw = web_gateway
    result = subprocess.run(
        [
            _node(),
            "--experimental-websocket",
            "--test",
            "--test-timeout=90000",  # a stuck test fails by name, the rest still run
            "--test-reporter=tap",
            str(ROOT / "tests" / "js" / "tapgate.test.mjs"),
        ],  # fmt: skip
        env={
            "PATH": "/usr/bin:/bin",
            "TAPGATE_URL": gw.url,
            "TAPGATE_VECTORS": json.dumps(_vectors(tmp_path)),
        },  # fmt: skip
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout and "# pass 10" in result.stdout, result.stdout[-2000:]


def test_the_committed_types_are_generated_from_the_current_schema(tmp_path: Path) -> None:
    """gateway/static/openapi.d.ts is what the pinned openapi-typescript makes of
    /openapi.json now (make types regenerates it)."""
    generator = NODE_BIN / "openapi-typescript"
    if not generator.exists():
        pytest.fail("node_modules is missing: make install-js")
    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(openapi()))
    fresh = tmp_path / "openapi.d.ts"
    subprocess.run([str(generator), str(schema), "-o", str(fresh)], check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    assert fresh.read_text() == (ROOT / "gateway" / "static" / "openapi.d.ts").read_text()
