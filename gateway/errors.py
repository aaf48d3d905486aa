"""Errors: bad configuration, and rejections carrying the wire protocol's error codes.

Rejections are raised anywhere and rendered by ``http/`` alone.
"""

from __future__ import annotations

__all__ = ["ConfigError", "Rejection"]


class ConfigError(ValueError):
    """A ``TAPGATE_*`` variable has a value the gateway cannot run with."""


class Rejection(Exception):
    """A request refused with a documented error ``code`` (docs/API.md lists them all)."""

    __slots__ = ("code", "field", "headers", "message", "retry_after")

    def __init__(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        retry_after: float | None = None,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after
        self.headers = headers
