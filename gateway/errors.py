"""Errors: bad configuration, and rejections carrying the wire protocol's error codes.

Rejections are raised anywhere and rendered by ``http/`` alone.
"""

from __future__ import annotations

import enum

__all__ = ["ConfigError", "ErrorCode", "Rejection", "internal_rejection"]


class ConfigError(ValueError):
    """A ``TAPGATE_*`` variable has a value the gateway cannot run with."""


class ErrorCode(enum.StrEnum):
    """Every error code the API answers (docs/API.md); http/errors.py maps each to its status."""

    MALFORMED_JSON = "malformed_json"
    INVALID_HEADER = "invalid_header"
    INVALID_SIGNATURE = "invalid_signature"
    MISSING_CREDENTIALS = "missing_credentials"
    TIMESTAMP_OUT_OF_WINDOW = "timestamp_out_of_window"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CELL_CLOSED = "cell_closed"
    EXPOSURE_LIMIT = "exposure_limit"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    MULTIPLIER_BELOW_MINIMUM = "multiplier_below_minimum"
    NONCE_REUSED = "nonce_reused"
    PRICING_UNAVAILABLE = "pricing_unavailable"
    REFERENCE_CONFLICT = "reference_conflict"
    TICK_REJECTED = "tick_rejected"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    UPGRADE_REQUIRED = "upgrade_required"
    INVALID_FIELD = "invalid_field"
    RATE_LIMITED = "rate_limited"
    HEADERS_TOO_LARGE = "headers_too_large"  # answered by http/deadline.py before parsing
    INTERNAL_ERROR = "internal_error"
    MARKET_HALTED = "market_halted"
    OVERLOADED = "overloaded"
    QUOTE_STALE = "quote_stale"


class Rejection(Exception):
    """A request refused with a documented error ``code`` (docs/API.md lists them all)."""

    __slots__ = ("code", "field", "headers", "message", "retry_after")

    def __init__(
        self,
        code: ErrorCode,
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


def internal_rejection() -> Rejection:
    """The answer to a bug: a generic 500 that names nothing but the request id."""
    return Rejection(ErrorCode.INTERNAL_ERROR, "internal error; quote the request id")
