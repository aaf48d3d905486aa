from __future__ import annotations

import importlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

KEY = SigningKey(b"\x01" * 32)
PUBLIC = KEY.verify_key.encode()


def _signed(message: bytes) -> bytes:
    return KEY.sign(message).signature + message


def test_good_and_bad_signatures(
    verify_batch: Callable[[list[tuple[bytes, bytes]]], list[bool]],
) -> None:
    """Valid signatures are True; tampered, short, wrong-key and bad-length items are False."""
    good = _signed(b"hello")
    tampered = good[:-1] + b"X"
    other = SigningKey(b"\x02" * 32).verify_key.encode()
    items = [
        (good, PUBLIC),
        (tampered, PUBLIC),
        (b"short", PUBLIC),
        (good, other),
        (good, PUBLIC[:31]),
        (_signed(b""), PUBLIC),
        (good, b"\x00" * 32),
    ]
    assert verify_batch(items) == [True, False, False, False, False, True, False]
    assert verify_batch([]) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=200), st.booleans(), st.integers(0, 63)), max_size=20))
def test_twins_agree(items: list[tuple[bytes, bool, int]]) -> None:
    """Compiled and pure-Python batch verification give the same answers."""
    c = pytest.importorskip("fastpath._verify_c")
    py = importlib.import_module("fastpath._verify_py")
    batch = []
    for message, corrupt, index in items:
        signed = bytearray(_signed(message))
        if corrupt:
            signed[index] ^= 0x01
        batch.append((bytes(signed), PUBLIC))
    assert c.verify_batch(batch) == py.verify_batch(batch)
