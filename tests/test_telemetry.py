"""Logging: JSON lines off a terminal, readable lines on one."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import structlog

from gateway.telemetry import configure_logging


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def test_json_lines_when_stdout_is_not_a_terminal(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    """Under systemd (no terminal) each event is one JSON object with level and timestamp."""
    configure_logging("info", console=False)
    structlog.get_logger("t").info("listening", url="http://127.0.0.1:8080")
    line = json.loads(capsysbinary.readouterr().out.decode().strip())
    assert line["event"] == "listening" and line["level"] == "info" and "timestamp" in line


def test_readable_lines_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    """On a terminal an event is one readable line, not JSON; debug is filtered at info."""
    configure_logging("info", console=True)
    log = structlog.get_logger("t")
    log.debug("hidden")
    log.info("listening", url="http://127.0.0.1:8080")
    out = capsys.readouterr().out
    assert "listening" in out and "http://127.0.0.1:8080" in out and "hidden" not in out
    assert not out.lstrip().startswith("{") and len(out.strip().splitlines()) == 1
