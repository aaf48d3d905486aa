"""The client address a request is keyed by for rate limits and the admin allowlist."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from gateway.config import Network

__all__ = ["client_address", "rate_key"]


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def client_address(peer: str, forwarded_for: bytes | None, proxies: Sequence[Network]) -> str:
    """The TCP peer; behind trusted proxies, the right-most X-Forwarded-For hop not trusted."""
    if not proxies or forwarded_for is None or not _trusted(peer, proxies):
        return peer
    hops = [h.strip() for h in forwarded_for.decode("latin-1").split(",")]
    for hop in reversed(hops):
        if not hop:
            continue
        if not _trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage from the proxy chain: key by the proxy itself
    return peer


def rate_key(address: str) -> str:
    """IPv4 addresses as they are; IPv6 addresses by their /64."""
    if ":" not in address:
        return address
    try:
        network = ipaddress.IPv6Network(f"{address}/64", strict=False)
    except ValueError:
        return address
    return str(network.network_address) + "/64"
