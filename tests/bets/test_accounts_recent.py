from __future__ import annotations

import pytest

from gateway.accounts import Accounts
from gateway.bets.recent import RecentBets
from gateway.config import Settings
from gateway.errors import Rejection
from gateway.http.client_address import ForwardedForInvalid, client_address, rate_key


def test_reservations_never_overspend() -> None:
    """Reservations count against the balance until settled or released."""
    a = Accounts([("w", 100)])
    a.reserve("w", 60)
    with pytest.raises(Rejection):
        a.reserve("w", 50)
    a.release("w", 60)
    a.reserve("w", 100)
    a.settle_debit("w", 100)
    assert (a.balance("w"), a.reserved("w")) == (0, 0)
    with pytest.raises(Rejection):
        a.reserve("nobody", 1)


def test_release_more_than_reserved_is_a_bug() -> None:
    """Releasing or settling more than was reserved raises rather than corrupting state."""
    a = Accounts([("w", 100)])
    with pytest.raises(AssertionError):
        a.release("w", 1)
    with pytest.raises(AssertionError):
        a.settle_debit("w", 1)


def test_recent_entries_expire_with_their_window() -> None:
    """A committed entry answers replays until its timestamp leaves the window."""
    r = RecentBets(window_ms=1000)
    r.remember("k", b"msg", b"receipt", timestamp=5000)
    assert r.get("k", 6000) is not None
    assert r.get("k", 6001) is None
    assert len(r) == 0


def test_recent_prune_stops_at_first_live_entry() -> None:
    """prune drops expired entries from the oldest until a live one."""
    r = RecentBets(window_ms=1000)
    r.remember("a", b"", b"r", timestamp=0)
    r.remember("b", b"", b"r", timestamp=5000)
    r.remember("c", b"", b"r", timestamp=0)
    assert r.prune(2000) == 1
    assert len(r) == 2
    assert r.get("c", 2000) is None


def test_forwarded_for_only_from_trusted_proxies() -> None:
    """X-Forwarded-For counts only when the peer is a trusted proxy."""
    proxies = Settings.from_env({"TAPGATE_TRUSTED_PROXIES": "10.0.0.0/8"}).trusted_proxies
    assert client_address("1.2.3.4", b"9.9.9.9", proxies) == "1.2.3.4"
    assert client_address("10.0.0.1", b"9.9.9.9, 10.0.0.2", proxies) == "9.9.9.9"
    assert client_address("10.0.0.1", b"6.6.6.6, 9.9.9.9", proxies) == "9.9.9.9"
    assert client_address("10.0.0.1", b"10.0.0.3", proxies) == "10.0.0.1"
    assert client_address("10.0.0.1", None, proxies) == "10.0.0.1"
    assert client_address("1.2.3.4", b"garbage", proxies) == "1.2.3.4"  # untrusted: ignored


@pytest.mark.parametrize(
    "forwarded", [b"garbage", b"203.0.113.7:4711", b"unknown", b"9.9.9.9, ", b"", b"9.9.9.9,,"]
)
def test_an_unreadable_forwarded_hop_is_refused(forwarded: bytes) -> None:
    """From a trusted proxy, an empty or unparsable right-most hop is an error, never the
    proxy's own address."""
    proxies = Settings.from_env({"TAPGATE_TRUSTED_PROXIES": "10.0.0.0/8"}).trusted_proxies
    with pytest.raises(ForwardedForInvalid):
        client_address("10.0.0.1", forwarded, proxies)


def test_ipv6_keyed_by_64() -> None:
    """IPv6 clients in one /64 share a rate-limit key; IPv4 keys are the address."""
    assert rate_key("2001:db8:1:2:aaaa::1") == rate_key("2001:db8:1:2:bbbb::2")
    assert rate_key("2001:db8:1:3::1") != rate_key("2001:db8:1:2::1")
    assert rate_key("127.0.0.1") == "127.0.0.1"
