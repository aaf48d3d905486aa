"""Who may call what: signed wallet reads, and the admin allowlist plus bearer token."""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Sequence

from starlette.requests import Request

from gateway.config import Network
from gateway.errors import ErrorCode, Rejection
from gateway.http.context import client_key
from gateway.limits import Limiter
from gateway.protocol import ascii_digits, check_window, read_message, verify
from gateway.wire import READ_TIMESTAMP_DIGITS

__all__ = ["require_admin", "require_admin_address", "signed_wallet"]

_HEX64 = frozenset("0123456789abcdef")


def signed_wallet(request: Request, limiter: Limiter, window_ms: int, future_ms: int) -> str:
    """The wallet that signed this read, after the rate limits and the signature check."""
    now = time.time()
    limiter.by_address(client_key(request.scope), now)
    headers = request.headers
    wallet = headers.get("x-tapgate-wallet")
    stamp = headers.get("x-tapgate-timestamp")
    signature = headers.get("x-tapgate-signature")
    if wallet is None or stamp is None or signature is None:
        raise Rejection(
            ErrorCode.MISSING_CREDENTIALS,
            "X-Tapgate-Wallet, X-Tapgate-Timestamp and X-Tapgate-Signature are required",
        )
    if len(wallet) != 64 or not _HEX64.issuperset(wallet):
        raise Rejection(ErrorCode.INVALID_SIGNATURE, "X-Tapgate-Wallet is not a public key")
    if not ascii_digits(stamp, READ_TIMESTAMP_DIGITS):
        raise Rejection(
            ErrorCode.TIMESTAMP_OUT_OF_WINDOW, "X-Tapgate-Timestamp is not milliseconds"
        )
    if len(signature) != 128 or not _HEX64.issuperset(signature):
        raise Rejection(ErrorCode.INVALID_SIGNATURE, "signature does not verify")
    timestamp = int(stamp)
    check_window(timestamp, int(now * 1000), window_ms, future_ms)
    target = request.scope.get("raw_path") or request.scope["path"].encode()
    path = target.decode("latin-1")
    query = request.scope.get("query_string", b"")
    if query:
        path += "?" + query.decode("latin-1")
    verify(wallet, read_message(request.method, path, timestamp), signature)
    limiter.by_wallet(wallet, now)
    return wallet


def require_admin_address(request: Request, allow: Sequence[Network], limiter: Limiter) -> None:
    """Operator routes (admin, /metrics) answer only allowlisted client addresses."""
    limiter.by_address(client_key(request.scope), time.time())
    try:
        ip = ipaddress.ip_address(request.scope["tapgate.address"])
    except ValueError:
        ip = None
    if ip is None or not any(ip in net for net in allow):
        raise Rejection(ErrorCode.FORBIDDEN, "admin routes are not open to this address")


def require_admin(
    request: Request, allow: Sequence[Network], token: str | None, limiter: Limiter
) -> None:
    """Admin routes: allowlisted address, then a configured token compared in constant time."""
    require_admin_address(request, allow, limiter)
    if token is None:
        raise Rejection(
            ErrorCode.FORBIDDEN, "the admin API is disabled: TAPGATE_ADMIN_TOKEN is not set"
        )
    given = request.headers.get("authorization", "")
    scheme, _, credential = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        credential.strip().encode(), token.encode()
    ):
        raise Rejection(ErrorCode.UNAUTHORIZED, "missing or wrong bearer token")
