"""The client address a request is keyed by for rate limits and the admin allowlist."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from gateway.config import Network

__all__ = ["ForwardedForInvalid", "client_address", "rate_key"]


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


class ForwardedForInvalid(ValueError):
    """A trusted proxy sent an X-Forwarded-For whose hops cannot all be read as addresses."""


def client_address(peer: str, forwarded_for: bytes | None, proxies: Sequence[Network]) -> str:
    """The TCP peer; behind trusted proxies, the right-most X-Forwarded-For hop not trusted.

    From a trusted proxy, an empty hop or one that is not a bare IP address (a port, a
    name, ``unknown``) raises ForwardedForInvalid: falling back to the proxy's own address
    would hand the client the proxy's standing (the admin allowlist, one shared bucket).
    A proxy's own request without the header is keyed by the proxy.
    """
    if not proxies or forwarded_for is None or not _trusted(peer, proxies):
        return peer
    for hop in reversed(forwarded_for.decode("latin-1").split(",")):
        try:
            address = ipaddress.ip_address(hop.strip())
        except ValueError:
            raise ForwardedForInvalid(f"X-Forwarded-For hop {hop.strip()[:64]!r}") from None
        if not any(address in net for net in proxies):
            return str(address)
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
