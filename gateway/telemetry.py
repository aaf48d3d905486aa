"""Logging: structlog configured once per process.

Under systemd, or whenever stdout is not a terminal, one JSON object per line (structlog's
performance guide: orjson to bytes). On a terminal, structlog's own console renderer: one
readable, coloured line per event, for a developer running ``make run``. The line every
request logs goes through ``EventLog``: the same configuration, without a bound logger's
copies, a loop turn's lines in one write (ADR 16).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import sys
import time
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

import orjson
import structlog
from structlog.typing import Processor

__all__ = ["EventLog", "JsonLines", "Timestamper", "configure_logging"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class Timestamper:
    """Adds ``timestamp``: UTC, ISO 8601 with microseconds and a ``Z``.

    The same text as structlog's ``TimeStamper(fmt="iso", utc=True)``, except that a whole
    second shows ``.000000`` too. Its date and time of day are formatted once a second:
    ``datetime.now().isoformat()`` for every line was 8% of the instructions the gateway
    spends on a bet beyond its signature (bench/layers.py, ADR 16).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._second = -1
        self._prefix = ""

    def __call__(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event["timestamp"] = self.text()
        return event

    def text(self) -> str:
        """The clock's time now, as the ``timestamp`` value."""
        micros = round(self.clock() * 1_000_000)
        second = micros // 1_000_000
        if second != self._second:
            moment = datetime.datetime.fromtimestamp(second, datetime.UTC)
            self._prefix, self._second = moment.strftime("%Y-%m-%dT%H:%M:%S."), second
        # the last six digits of a clock past 1970's first second: no format spec to parse
        return self._prefix + str(micros)[-6:] + "Z"


# structlog's add_log_level names a level by its method, but for these two
_LEVEL_OF_METHOD = {"warn": "warning", "exception": "error"}


class JsonLines:
    """The JSON-lines chain as one processor: ``add_log_level``, ``Timestamper``,
    ``format_exc_info`` and ``JSONRenderer(serializer=orjson.dumps)`` in one call.

    The same bytes as those four one after another (a test holds them to it). The four,
    each a Python call with its own lookups, took 19k instructions of the line every
    request writes; this takes 12k (bench/layers.py, ADR 16). A value JSON cannot hold is
    written as its ``repr``, as structlog's renderer writes it.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._now = Timestamper(clock).text

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> bytes:
        event["level"] = _LEVEL_OF_METHOD.get(method, method)
        event["timestamp"] = self._now()
        if "exc_info" in event:
            structlog.processors.format_exc_info(logger, method, event)
        return orjson.dumps(event, default=repr)


class EventLog:
    """One event a request at a time, through structlog's configured level filter,
    processors and output, without a bound logger: for the line every request logs.

    ``structlog.get_logger(name).info("request", **fields)`` copies the event three times
    on its way to the processors (the call's keywords, the proxy's, the context merge):
    27k of the 54k instructions the line cost, a fifth of a request's own layers
    (bench/layers.py, ADR 16). This runs the same processors on the dict it is given,
    which it then owns. The configuration is read at first use, as structlog's
    ``cache_logger_on_first_use`` does.

    On an event loop, the JSON lines of one loop turn leave in one write at the turn's end
    (ADR 15 does the same for responses): a busy worker ends many requests a turn, and a
    write each was a system call each (and a wakeup of journald's reader each). Only these
    lines wait, and only until the turn ends; ``flush`` writes them at once (a process
    about to ``os._exit`` calls it). Off a loop, or on a terminal, a line is written as it
    comes.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._chain: tuple[Sequence[Processor], Any] | None = None
        self._enabled: dict[str, bool] = {}
        self._turn: list[bytes] = []  # this loop turn's lines, not yet written
        self._output: Any = None  # the configured output, once read

    def write(self, method: str, event: dict[str, Any]) -> None:
        """Log ``event`` (its ``event`` key the event's name) at level ``method``."""
        chain = self._chain
        if chain is None:
            chain = self._chain = self._configured()
        enabled = self._enabled.get(method)
        if enabled is None:
            probe = structlog.get_logger(self.name)
            enabled = self._enabled[method] = probe.is_enabled_for(_LEVELS[method])
        if not enabled:
            return
        processors, output = chain
        rendered: Any = event
        try:
            for processor in processors:
                rendered = processor(output, method, rendered)
        except structlog.DropEvent:
            return
        if type(rendered) is bytes:
            if not self._turn:
                try:
                    asyncio.get_running_loop().call_soon(self.flush)
                except RuntimeError:  # no loop runs in this thread: write it now
                    output.msg(rendered)
                    return
            self._turn.append(rendered)
            return
        getattr(output, method)(rendered)

    def flush(self) -> None:
        """Write the lines this turn has logged so far, in one write."""
        if self._turn:
            lines, self._turn = self._turn, []
            self._output.msg(b"\n".join(lines))  # the output ends the last line

    def _configured(self) -> tuple[Sequence[Processor], Any]:
        config = structlog.get_config()
        self._output = config["logger_factory"](self.name)
        return config["processors"], self._output


def configure_logging(level: str = "info", *, console: bool | None = None) -> None:
    """JSON lines, or readable lines on a terminal (``console`` None: decide by stdout)."""
    if console is None:
        console = sys.stdout.isatty()
    if console:
        processors: list[Any] = [
            structlog.processors.add_log_level,
            Timestamper(),
            structlog.dev.ConsoleRenderer(),
        ]
        factory: Any = structlog.PrintLoggerFactory(sys.stdout)
    else:
        processors = [JsonLines()]
        factory = structlog.BytesLoggerFactory(sys.stdout.buffer)
    structlog.configure(
        cache_logger_on_first_use=True,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        processors=processors,
        logger_factory=factory,
    )
