"""The compiled bet recogniser says yes only where wire.py's table does, to the same values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest import mock

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastpath
from gateway import protocol
from gateway.errors import Rejection
from tests.fastpath.conftest import _compiled

MARKETS = frozenset({"BTC-USD"})
HEX = "0123456789abcdef"
BetFields = Callable[[bytes, dict[str, Any], frozenset[str]], tuple[Any, ...] | None]


@pytest.fixture(scope="module")
def bet_fields() -> BetFields:
    if fastpath.NO_EXTENSIONS:  # the same compiled module: once a CI run is enough
        pytest.skip("the compiled pass tests the recogniser; the pure twin recognises nothing")
    module = _compiled("_bets")
    if module is None:
        pytest.skip("compiled fastpath not built: _bets (the pure twin recognises nothing)")
    return module.bet_fields  # type: ignore[no-any-return]


def _by_table(body: bytes) -> tuple[Any, ...] | None:
    """What parse_bet answers without the compiled path: the fields, or None if refused."""
    with mock.patch.object(protocol, "bet_fields", lambda body, data, markets: None):
        try:
            return tuple(protocol.parse_bet(body, MARKETS))
        except Rejection:
            return None


def _hex(digits: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=HEX, min_size=digits, max_size=digits)


OTHER_TYPES: st.SearchStrategy[Any] = st.sampled_from([None, True, 1, 1.5, "", [], {}])


def _near(misses: list[Any]) -> st.SearchStrategy[Any]:
    """A near miss of a field, or a value of another JSON type."""
    return st.one_of(st.sampled_from(misses), OTHER_TYPES)


def _hex_near(digits: int) -> st.SearchStrategy[Any]:
    """``digits`` hex digits with one wrong: upper case, one short or long, not hex."""
    return st.one_of(
        _hex(digits).flatmap(
            lambda v: st.sampled_from(
                [v.upper(), v[:-1], v + "0", v[:-1] + "g", v[:-1] + "٣", v[:-1] + "A", " " + v[1:]]
            )
        ),
        OTHER_TYPES,
    )


_DIGITS = st.integers(0, 10**18 - 1).map(str)
VALID = {
    "wallet": _hex(64),
    "market": st.just("BTC-USD"),
    "cell_id": st.tuples(_DIGITS, _DIGITS).map(lambda rc: f"cell-{rc[0]}-{rc[1]}"),
    "amount": st.integers(1, 10**12),
    "nonce": st.text(alphabet=HEX.upper() + HEX + "xyzXYZ_-", min_size=1, max_size=64),
    "timestamp": st.integers(0, 10**15),
    "min_multiplier": st.tuples(st.integers(0, 999999), st.integers(0, 99)).map(
        lambda m: f"{m[0]}.{m[1]:02d}"
    ),
    "signature": _hex(128),
}
NEAR = {
    "wallet": _hex_near(64),
    "market": _near(["ETH-USD", "btc-usd", "BTC-USD "]),
    "cell_id": _near(
        [
            "cell-01-2",
            "cell-1-02",
            "cell--1-2",
            "cell-1-",
            "cell-1-2-3",
            "Cell-1-2",
            "cell-١-2",
            "cell-1-2\n",
            "cell-+1-2",
            "cell-1234567890123456789-1",
            "cell-1-1234567890123456789",
            "cell-1",
            "cell-",
            "cell-1-2 ",
            "cell-1_2",
            "cell-1-a",
        ],
    ),  # fmt: skip
    "amount": _near([0, -1, 10**12 + 1, 10**19, 1.0, "1", False]),
    "nonce": _near(["", "a" * 65, "a.b", "a b", "é", "a:b"]),
    "timestamp": _near([-1, 10**15 + 1, 1.0, False]),
    "min_multiplier": _near(
        [
            "1.5",
            "01.50",
            "1.500",
            ".50",
            "1,50",
            "١.50",
            "1000000.00",
            "1.5a",
            "-1.50",
            "1:50",
            "1.50 ",
            "a.50",
            "1.a0",
        ]
    ),  # fmt: skip
    "signature": _hex_near(128),
}


def _write(members: list[tuple[str, Any]], space: str) -> bytes:
    """A JSON object of ``members`` in order (repeats kept), ``space`` around separators."""
    return ("{" + f"{space},".join(
        f"{orjson.dumps(name).decode()}{space}:{space}{orjson.dumps(value).decode()}"
        for name, value in members
    ) + "}").encode()  # fmt: skip


@st.composite
def _valid(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """A well-formed bet's members, min_multiplier present or not."""
    return [
        (name, draw(kind))
        for name, kind in VALID.items()
        if name != "min_multiplier" or draw(st.booleans())
    ]


@st.composite
def _near_misses(draw: st.DrawFn) -> bytes:
    """A well-formed bet with one or two mistakes: a near miss in a field, a member left
    out, an unknown member added or one written twice."""
    members = draw(_valid())
    for _ in range(draw(st.integers(1, 2))):
        mistake = draw(st.sampled_from(["value", "value", "value", "drop", "unknown", "twice"]))
        if mistake == "value":  # the field's value replaced, or the field added with it
            name = draw(st.sampled_from(sorted(NEAR)))
            members = [m for m in members if m[0] != name] + [(name, draw(NEAR[name]))]
            continue
        at = draw(st.integers(0, len(members) - 1))
        name = members[at][0]
        if mistake == "drop" and len(members) > 1:
            del members[at]
        elif mistake == "unknown":
            members.insert(at, (draw(st.sampled_from(["extra", "Wallet", "wallet "])), "x"))
        elif mistake == "twice" and name in VALID:
            members.append((name, draw(VALID[name])))
    return _write(members, draw(st.sampled_from(["", " ", "\n"])))


@settings(max_examples=3000, deadline=None)
@given(body=_near_misses())
def test_the_recogniser_takes_nothing_the_table_refuses(bet_fields: BetFields, body: bytes) -> None:
    """Over bodies with near misses in every field, missing, unknown and repeated members:
    where the compiled recogniser answers, the table accepts the body, to the same values."""
    recognised = bet_fields(body, orjson.loads(body), MARKETS)
    if recognised is not None:
        assert recognised == _by_table(body)


@settings(max_examples=1000, deadline=None)
@given(members=_valid(), space=st.sampled_from(["", " ", "\n"]))
def test_every_bet_the_table_accepts_is_recognised(
    bet_fields: BetFields, members: list[tuple[str, Any]], space: str
) -> None:
    """Any well-formed bet (every value at its bounds, with or without min_multiplier, any
    whitespace) is recognised whole: the table is the fallback, not the common path."""
    body = _write(members, space)
    assert _by_table(body) is not None
    assert bet_fields(body, orjson.loads(body), MARKETS) == _by_table(body)
