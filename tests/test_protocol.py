from __future__ import annotations

import re

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.client.wallet import Wallet, bet_body
from gateway.errors import Rejection
from gateway.protocol import bet_message, check_window, parse_bet, read_message, verify
from gateway.wire import BET, WALLET

MARKETS = frozenset({"BTC-USD"})


def test_canonical_message_layout() -> None:
    """The signed bytes are the documented lines joined by newlines, no trailing newline."""
    msg = bet_message("ab" * 32, "BTC-USD", "cell-1-2", 100, "n1", 1700000000000, None)
    assert msg == (
        b"tapgate:bet:v1\n" + b"ab" * 32 + b"\nBTC-USD\ncell-1-2\n100\nn1\n1700000000000\n"
    )
    assert bet_message("ab" * 32, "BTC-USD", "cell-1-2", 100, "n1", 1, "1.50").endswith(
        b"\n1\n1.50"
    )
    assert read_message("GET", "/api/x?a=1", 5) == b"tapgate:read:v1\nGET\n/api/x?a=1\n5"


def test_parse_keeps_values_as_sent() -> None:
    """A valid body parses into its fields and the row and column of its cell."""
    wallet = Wallet.generate()
    body = bet_body(
        wallet,
        market="BTC-USD",
        cell_id="cell-0-123456789012345678",
        amount=5,
        min_multiplier="0.99",
    )
    bet = parse_bet(orjson.dumps(body), MARKETS)
    assert (bet.row, bet.col) == (0, 123456789012345678)
    assert bet.min_multiplier_hundredths == 99
    verify(bet.wallet, bet.message, bet.signature)


def test_signature_over_other_values_fails() -> None:
    """Changing any signed value breaks the signature."""
    wallet = Wallet.generate()
    body = bet_body(wallet, market="BTC-USD", cell_id="cell-1-1", amount=5)
    body["cell_id"] = "cell-1-2"
    bet = parse_bet(orjson.dumps(body), MARKETS)
    with pytest.raises(Rejection) as info:
        verify(bet.wallet, bet.message, bet.signature)
    assert info.value.code == "invalid_signature"


def test_small_order_public_key_refused() -> None:
    """An all-zero (small-order) public key never verifies."""
    with pytest.raises(Rejection):
        verify("00" * 32, b"x", "00" * 64)


@pytest.mark.parametrize(
    ("now", "ts", "ok"),
    [
        (10_000, 5_000, True),
        (10_000, 4_999, False),
        (10_000, 11_000, True),
        (10_000, 11_001, False),
    ],
)
def test_window_edges(now: int, ts: int, ok: bool) -> None:
    """Exactly 5000 ms old or 1000 ms ahead is inside; one more millisecond is out."""
    if ok:
        check_window(ts, now, 5000, 1000)
    else:
        with pytest.raises(Rejection):
            check_window(ts, now, 5000, 1000)


def test_huge_integer_is_invalid_field_not_malformed() -> None:
    """An integer beyond 64 bits is valid JSON, so it is 422, not 400."""
    body = b'{"wallet": "' + b"a" * 64 + b'", "market": "BTC-USD", "cell_id": "cell-1-1", '
    body += b'"amount": 123456789012345678901234567890}'
    with pytest.raises(Rejection) as info:
        parse_bet(body, MARKETS)
    assert (info.value.code, info.value.field) == ("invalid_field", "amount")


def test_trailing_newline_not_accepted() -> None:
    """Patterns match the whole value: a trailing newline is not normalised away."""
    body = {"wallet": "a" * 63 + "a\n"}
    with pytest.raises(Rejection) as info:
        parse_bet(orjson.dumps(body), MARKETS)
    assert info.value.field == "wallet"


def _bet_json(wallet: Wallet, **kw: object) -> dict[str, object]:
    fields: dict[str, object] = {"market": "BTC-USD", "cell_id": "cell-650-3", "amount": 100}
    fields.update(kw)
    return bet_body(wallet, **fields)  # type: ignore[arg-type]


def _members(body: dict[str, object], repeat: str | None, escape: bool, space: str) -> bytes:
    """The body's members written by hand: ``space`` around each ':' and ',', ``repeat``
    written twice (the second time with a first letter escaped as \\u00XX when ``escape``)."""
    parts = [f'"{k}"{space}:{space}{orjson.dumps(v).decode()}' for k, v in body.items()]
    if repeat is not None:
        key = f"\\u00{ord(repeat[0]):02x}{repeat[1:]}" if escape else repeat
        parts.append(f'"{key}"{space}:{space}{orjson.dumps(body[repeat]).decode()}')
    return ("{" + f"{space},{space}".join(parts) + "}").encode()


WALLET_FOR_BODIES = Wallet.generate()
BODY_FIELDS = list(_bet_json(WALLET_FOR_BODIES, min_multiplier="1.50"))


@settings(max_examples=300, deadline=None)
@given(
    repeat=st.one_of(st.none(), st.sampled_from(BODY_FIELDS)),
    escape=st.booleans(),
    space=st.sampled_from(["", " ", "\n", "\t  "]),
)
def test_a_repeated_key_is_refused_however_it_is_written(
    repeat: str | None, escape: bool, space: str
) -> None:
    """A valid bet with any whitespace parses; the same bet with one key written twice
    (escaped or not) is 422 naming that key, whichever parser a proxy in front uses."""
    body = _bet_json(WALLET_FOR_BODIES, min_multiplier="1.50")
    raw = _members(body, repeat, escape, space)
    if repeat is None:
        assert parse_bet(raw, MARKETS).amount == 100
        return
    with pytest.raises(Rejection) as refused:
        parse_bet(raw, MARKETS)
    assert (refused.value.code, refused.value.field) == ("invalid_field", repeat)


@st.composite
def _hex_or_near_miss(draw: st.DrawFn) -> str:
    """64 lowercase hex digits, left alone or with one character changed, added or
    removed (an upper-case digit, whitespace, any character)."""
    value = draw(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
    at = draw(st.integers(0, 63))
    other = draw(st.one_of(st.sampled_from("ABCDEF \n+-_x"), st.characters()))
    edit = draw(st.sampled_from(["none", "replace", "insert", "delete"]))
    if edit == "replace":
        return value[:at] + other + value[at + 1 :]
    if edit == "insert":
        return value[:at] + other + value[at:]
    if edit == "delete":
        return value[:at] + value[at + 1 :]
    return value


@settings(max_examples=500, deadline=None)
@given(value=st.one_of(_hex_or_near_miss(), st.text(max_size=70)))
def test_hex_fields_accept_exactly_what_their_pattern_matches(value: str) -> None:
    """WALLET's round-trip check takes a value iff its published pattern matches it whole:
    upper case, whitespace, signs, other digits and wrong lengths are all refused."""
    pattern = re.compile(WALLET.pattern)
    try:
        WALLET.check("wallet", value)
        accepted = True
    except Rejection:
        accepted = False
    assert accepted == (pattern.fullmatch(value) is not None)


def test_a_bet_body_parses_to_its_own_values() -> None:
    """Body.parse hands back the decoded members themselves, each checked."""
    data: dict[str, object] = _bet_json(WALLET_FOR_BODIES)
    assert BET.parse(data, MARKETS) is data
