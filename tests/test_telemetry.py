"""Logging: JSON lines off a terminal, readable lines on one."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog

from gateway.telemetry import EventLog, JsonLines, Timestamper, configure_logging


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


def test_timestamps_are_utc_with_microseconds_across_seconds() -> None:
    """Each line's time is its own, to the microsecond, also after the second changes."""
    times = iter([1_764_511_199.999_999, 1_764_511_200.000_0004, 1_764_511_200.250_5])
    stamp = Timestamper(clock=lambda: next(times))
    texts = [stamp(None, "info", {})["timestamp"] for _ in range(3)]
    assert texts == [
        "2025-11-30T13:59:59.999999Z",
        "2025-11-30T14:00:00.000000Z",
        "2025-11-30T14:00:00.250500Z",
    ]


def test_timestamps_read_as_the_clock_that_made_them() -> None:
    """A timestamp parses back to its clock reading (to the microsecond) as UTC."""
    now = 1_764_511_234.567_891
    text = Timestamper(clock=lambda: now)(None, "info", {})["timestamp"]
    parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert parsed.tzinfo is not None and parsed.utcoffset() == datetime.timedelta(0)
    assert abs(parsed.timestamp() - now) < 1e-6


def _events() -> list[tuple[str, dict[str, Any]]]:
    """Events of every level name, with and without an exception, and values JSON
    cannot hold."""
    try:
        raise ValueError("boom")
    except ValueError as exc:
        error = exc
    return [
        ("info", {"event": "request", "status": 202, "duration_ms": 1.234, "trace_id": None}),
        ("debug", {"event": "d"}),
        ("warn", {"event": "w"}),
        ("warning", {"event": "w"}),
        ("error", {"event": "e", "exc_info": error}),
        ("critical", {"event": "c", "exc_info": False}),
        ("exception", {"event": "x"}),
        ("info", {"event": "odd", "path": Path("/var/lib/tapgate"), "ids": {1}}),
    ]


def test_json_lines_are_the_bytes_of_structlog_s_four_processors() -> None:
    """JsonLines writes what add_log_level, Timestamper, format_exc_info and orjson's
    JSONRenderer write one after another: level names, tracebacks, a repr for the rest."""
    clock = lambda: 1_764_511_234.567_891  # noqa: E731
    chain: list[Any] = [
        structlog.processors.add_log_level,
        Timestamper(clock),
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(serializer=orjson.dumps),
    ]
    ours = JsonLines(clock)
    for method, event in _events():
        theirs: Any = dict(event)
        for processor in chain:
            theirs = processor(None, method, theirs)
        assert ours(None, method, dict(event)) == theirs, (method, event)


def test_event_log_writes_through_the_configured_chain(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    """The request line's writer gives the same JSON line a bound logger would."""
    configure_logging("info", console=False)
    EventLog("t").write("info", {"event": "request", "status": 202, "wallet": "ab" * 32})
    structlog.get_logger("t").info("request", status=202, wallet="ab" * 32)
    ours, theirs = (json.loads(line) for line in capsysbinary.readouterr().out.splitlines())
    assert ours.pop("timestamp") and theirs.pop("timestamp")
    assert ours == theirs == {"event": "request", "status": 202, "wallet": "ab" * 32,
                              "level": "info"}  # fmt: skip


def test_event_log_honours_the_level(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """At TAPGATE_LOG_LEVEL=warning no request line is written; a warning still is."""
    configure_logging("warning", console=False)
    log = EventLog("t")
    log.write("info", {"event": "request"})
    log.write("warning", {"event": "slow"})
    lines = capsysbinary.readouterr().out.splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["slow"]


def test_event_log_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    """On a terminal the request line is the console renderer's readable line."""
    configure_logging("info", console=True)
    EventLog("t").write("info", {"event": "request", "route": "place_bet"})
    out = capsys.readouterr().out
    assert "request" in out and "place_bet" in out and not out.lstrip().startswith("{")


class _Writes:
    """A log file that keeps each write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def flush(self) -> None:
        pass


@pytest.fixture
def json_file() -> _Writes:
    """structlog configured for JSON lines into a file that keeps each write."""
    file = _Writes()
    structlog.configure(
        processors=[structlog.processors.JSONRenderer(serializer=orjson.dumps)],
        logger_factory=structlog.BytesLoggerFactory(file),  # type: ignore[arg-type]
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
    return file


def test_request_lines_of_one_loop_turn_leave_in_one_write(json_file: _Writes) -> None:
    """On an event loop, the lines of one turn are written together as the turn ends."""
    log = EventLog("t")

    async def turns() -> None:
        log.write("info", {"event": "a"})
        log.write("info", {"event": "b"})
        assert json_file.writes == []
        await asyncio.sleep(0)
        assert json_file.writes == [b'{"event":"a"}\n{"event":"b"}\n']
        log.write("info", {"event": "c"})
        await asyncio.sleep(0)

    asyncio.run(turns())
    assert json_file.writes[1:] == [b'{"event":"c"}\n']


def test_flush_writes_the_turn_so_far_at_once(json_file: _Writes) -> None:
    """flush (what a worker calls before os._exit) writes the waiting lines now, once."""
    log = EventLog("t")

    async def turn() -> None:
        log.write("info", {"event": "a"})
        log.flush()
        assert json_file.writes == [b'{"event":"a"}\n']
        await asyncio.sleep(0)  # the turn's end finds nothing left to write

    asyncio.run(turn())
    assert json_file.writes == [b'{"event":"a"}\n']


def test_off_a_loop_a_line_is_written_as_it_comes(json_file: _Writes) -> None:
    """Without a running event loop (a script, a thread) nothing waits."""
    EventLog("t").write("info", {"event": "a"})
    assert json_file.writes == [b'{"event":"a"}\n']
