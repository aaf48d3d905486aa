"""Logging: structlog configured once per process.

Under systemd, or whenever stdout is not a terminal, one JSON object per line (structlog's
performance guide: orjson to bytes). On a terminal, structlog's own console renderer: one
readable, coloured line per event, for a developer running ``make run``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog

__all__ = ["configure_logging"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure_logging(level: str = "info", *, console: bool | None = None) -> None:
    """JSON lines, or readable lines on a terminal (``console`` None: decide by stdout)."""
    if console is None:
        console = sys.stdout.isatty()
    shared: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if console:
        renderer: list[Any] = [structlog.dev.ConsoleRenderer()]
        factory: Any = structlog.PrintLoggerFactory(sys.stdout)
    else:
        renderer = [
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ]
        factory = structlog.BytesLoggerFactory(sys.stdout.buffer)
    structlog.configure(
        cache_logger_on_first_use=True,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        processors=[*shared, *renderer],
        logger_factory=factory,
    )
