from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gatewayproc import GatewayProcess


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One real gateway shared by a module's tests (default limits)."""
    proc = GatewayProcess(tmp_path_factory.mktemp("gw") / "data").start()
    yield proc
    proc.stop()


@pytest.fixture
def make_gateway(tmp_path: Path) -> Iterator[object]:
    """Factory for a gateway with its own settings; stopped after the test."""
    started: list[GatewayProcess] = []

    def make(env: dict[str, str] | None = None, name: str = "data") -> GatewayProcess:
        proc = GatewayProcess(tmp_path / name, env)
        started.append(proc)
        return proc

    yield make
    for proc in started:
        if proc.proc is not None:
            proc.stop()
