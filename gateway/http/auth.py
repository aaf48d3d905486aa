"""Who may call what: signed wallet reads, and the admin allowlist plus bearer token."""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Sequence

from starlette.requests import HTTPConnection, Request

from fastpath import TokenBuckets
from gateway.admission import rate_limited
from gateway.config import Network
from gateway.errors import Rejection
from gateway.http.context import client_key
from gateway.protocol import check_window, read_message, verify

__all__ = ["Limiter", "require_admin", "require_admin_address", "signed_wallet"]

_HEX64 = frozenset("0123456789abcdef")


class Limiter:
    """One route family's buckets: per client address first, per wallet once signed."""

    def __init__(self, name: str, address: TokenBuckets, wallet: TokenBuckets) -> None:
        self.name = name
        self.address = address
        self.wallet = wallet

    def _take(self, buckets: TokenBuckets, policy: str, key: str, now: float) -> None:
        wait = buckets.take(key, now)
        if wait:
            raise rate_limited(
                f"{self.name}-{policy}", buckets.burst, buckets.burst / buckets.rate, wait
            )

    def by_address(self, conn: HTTPConnection, now: float) -> None:
        self._take(self.address, "address", client_key(conn.scope), now)

    def by_wallet(self, wallet: str, now: float) -> None:
        self._take(self.wallet, "wallet", wallet, now)


def signed_wallet(request: Request, limiter: Limiter, window_ms: int, future_ms: int) -> str:
    """The wallet that signed this read, after the rate limits and the signature check."""
    now = time.time()
    limiter.by_address(request, now)
    headers = request.headers
    wallet = headers.get("x-tapgate-wallet")
    stamp = headers.get("x-tapgate-timestamp")
    signature = headers.get("x-tapgate-signature")
    if wallet is None or stamp is None or signature is None:
        raise Rejection(
            "missing_credentials",
            "X-Tapgate-Wallet, X-Tapgate-Timestamp and X-Tapgate-Signature are required",
        )
    if len(wallet) != 64 or not _HEX64.issuperset(wallet):
        raise Rejection("invalid_signature", "X-Tapgate-Wallet is not a public key")
    if not stamp.isdigit() or len(stamp) > 16:
        raise Rejection("timestamp_out_of_window", "X-Tapgate-Timestamp is not milliseconds")
    if len(signature) != 128 or not _HEX64.issuperset(signature):
        raise Rejection("invalid_signature", "signature does not verify")
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
    limiter.by_address(request, time.time())
    try:
        ip = ipaddress.ip_address(request.scope["tapgate.address"])
    except ValueError:
        ip = None
    if ip is None or not any(ip in net for net in allow):
        raise Rejection("forbidden", "admin routes are not open to this address")


def require_admin(
    request: Request, allow: Sequence[Network], token: str | None, limiter: Limiter
) -> None:
    """Admin routes: allowlisted address, then a configured token compared in constant time."""
    require_admin_address(request, allow, limiter)
    if token is None:
        raise Rejection("forbidden", "the admin API is disabled: TAPGATE_ADMIN_TOKEN is not set")
    given = request.headers.get("authorization", "")
    scheme, _, credential = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        credential.strip().encode(), token.encode()
    ):
        raise Rejection("unauthorized", "missing or wrong bearer token")
