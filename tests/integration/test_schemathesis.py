"""schemathesis against a live gateway: no 5xx, every response matches /openapi.json."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.gatewayproc import GatewayProcess

CONFIG = Path(__file__).with_name("schemathesis.toml")


def _schemathesis() -> str:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("schemathesis is missing from the venv: make install")
    return found


def test_schemathesis_finds_no_failure(make_gateway: Any, tmp_path: Path) -> None:
    """Every check (schemathesis's default), a fixed seed, bounded examples per operation."""
    gateway: GatewayProcess = make_gateway(
        {
            f"TAPGATE_{kind}_{p}": "100000"
            for kind in ("READ", "ADMIN", "ADDRESS", "FEED")
            for p in ("RATE", "BURST")
        }
    )
    gateway.start()
    result = subprocess.run(
        [
            _schemathesis(),
            "--config-file",
            str(CONFIG),
            "run",
            f"{gateway.url}/openapi.json",
            "--max-examples",
            "25",
            "--seed",
            "20261122",
            "--request-timeout",
            "10",
            "--max-failures",
            "5",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # its cache and reports stay out of the repository
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "generated" in result.stdout and "failures" not in result.stdout
