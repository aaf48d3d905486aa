"""Wire protocol v1: parse and validate bets, build canonical messages, check signatures.

No I/O here. Nothing is normalised: a value must match its pattern exactly as sent,
because the signature covers the values exactly as sent.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import NamedTuple

import orjson
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from fastpath import bet_fields
from gateway.errors import ErrorCode, Rejection
from gateway.wire import BET, CELL, MAX_AMOUNT, MAX_TIMESTAMP, MULTIPLIER, invalid

__all__ = [
    "CELL_PATTERN",
    "MAX_AMOUNT",
    "MAX_BODY",
    "MAX_TIMESTAMP",
    "BetRequest",
    "ascii_digits",
    "bet_message",
    "cell_id",
    "check_window",
    "format_multiplier",
    "parse_multiplier",
    "parse_bet",
    "parse_cell",
    "payout",
    "read_message",
    "refuse_repeated_keys",
    "tick_message",
    "verify",
]

MAX_BODY = 4096
CELL_PATTERN = CELL.pattern  # the one definition is gateway/wire.py


class BetRequest(NamedTuple):
    """A well-formed bet, every value exactly as sent.

    A tuple: built by one C call (a frozen dataclass sets each of its ten fields through
    ``object.__setattr__``: 1.6 us against 0.4 a bet, in the worker and again in the owner),
    and what a worker sends the owner as it is (``tuple(bet)``).
    """

    wallet: str
    market: str
    cell_id: str
    row: int
    col: int
    amount: int
    nonce: str
    timestamp: int
    min_multiplier: str | None
    signature: str

    @property
    def message(self) -> bytes:
        return bet_message(
            self.wallet,
            self.market,
            self.cell_id,
            self.amount,
            self.nonce,
            self.timestamp,
            self.min_multiplier,
        )

    @property
    def min_multiplier_hundredths(self) -> int | None:
        return None if self.min_multiplier is None else parse_multiplier(self.min_multiplier)


def ascii_digits(text: str, most: int) -> bool:
    """1 to ``most`` ASCII digits: ``str.isdigit`` alone also takes '²' and other Unicode
    digits, which ``int`` then refuses (a 500 where a 4xx belongs)."""
    return 0 < len(text) <= most and text.isascii() and text.isdigit()


def cell_id(row: int, col: int) -> str:
    """The id of the cell in band ``row`` and window ``col``."""
    return f"cell-{row}-{col}"


def parse_cell(text: str) -> tuple[int, int]:
    """The band row and time column of a cell id that matched CELL_PATTERN (ValueError
    otherwise); market/grid.py says what they cover."""
    _, row, col = text.split("-")
    return int(row), int(col)


def tick_message(market: str, seq: int, price: int, ts_ms: int) -> bytes:
    """The canonical bytes the oracle signs for one tick."""
    return f"tapgate:tick:v1\n{market}\n{seq}\n{price}\n{ts_ms}".encode()


def payout(amount: int, hundredths: int) -> int:
    """What a won bet pays: the stake times the multiplier, rounded down to a minor unit."""
    return amount * hundredths // 100


def format_multiplier(hundredths: int) -> str:
    """190 -> ``"1.90"``, the wire format of multipliers."""
    return f"{hundredths // 100}.{hundredths % 100:02d}"


def parse_multiplier(text: str) -> int:
    """``"1.90"`` -> 190 (hundredths); raises ValueError for anything else."""
    if not MULTIPLIER.regex.fullmatch(text):
        raise ValueError(f"{text!r} is not a multiplier like 1.90")
    whole, cents = text.split(".")
    return int(whole) * 100 + int(cents)


def bet_message(
    wallet: str,
    market: str,
    cell_id: str,
    amount: int,
    nonce: str,
    timestamp: int,
    min_multiplier: str | None,
) -> bytes:
    """The canonical bytes a wallet signs for a bet."""
    return (
        f"tapgate:bet:v1\n{wallet}\n{market}\n{cell_id}\n{amount}\n{nonce}\n"
        f"{timestamp}\n{min_multiplier or ''}"
    ).encode()


def read_message(method: str, target: str, timestamp: int) -> bytes:
    """The canonical bytes a wallet signs to read: method, raw path (+ ``?query``), timestamp."""
    return f"tapgate:read:v1\n{method}\n{target}\n{timestamp}".encode()


def _decode(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    # orjson refuses integers beyond 64 bits; those are valid JSON and get a 422 below.
    try:
        return json.loads(
            body, parse_constant=_refuse_constant, object_pairs_hook=dict, parse_float=float
        )
    except (ValueError, RecursionError) as exc:
        raise Rejection(ErrorCode.MALFORMED_JSON, "body is not valid JSON") from exc


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


class _RepeatedKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise _RepeatedKey(key)
        out[key] = value
    return out


def refuse_repeated_keys(body: bytes) -> None:
    """422 naming a key that appears twice in a JSON body (after unescaping: "\\u0061mount"
    is "amount"): parsers keep one of them, and which one differs between a log pipeline or
    a WAF and the gateway."""
    try:
        json.loads(body, object_pairs_hook=_unique, parse_constant=_refuse_constant)
    except _RepeatedKey as exc:
        raise invalid(exc.key[:64], "appears more than once in the body") from None
    except (ValueError, RecursionError):
        pass  # not valid JSON: the parser that read the body has said so already


def _refuse_repeated_bet_keys(body: bytes, data: dict[str, object]) -> None:
    """The hot route's cheap form: no valid bet key or value holds a ':' (the field
    patterns exclude it), so each member of a valid bet body has exactly one, and more
    colons than members means a repeated key; only then is the body parsed again."""
    if body.count(b":") != len(data):
        refuse_repeated_keys(body)


def parse_bet(body: bytes, markets: Collection[str]) -> BetRequest:
    """Parse and validate a bet body; raise Rejection (400 or 422 codes) when it is not one."""
    data = _decode(body)
    if type(data) is not dict:
        raise Rejection(ErrorCode.MALFORMED_JSON, "body must be a JSON object")
    fields = bet_fields(body, data, markets)  # compiled: a common well-formed bet at once
    if fields is not None:
        return BetRequest._make(fields)
    bet = BET.parse(data, markets)  # the table decides the rest, and words the refusal
    _refuse_repeated_bet_keys(body, data)
    row, col = parse_cell(bet["cell_id"])
    return BetRequest._make(  # _make: the tuple in one C call, its length still checked
        (
            bet["wallet"],
            bet["market"],
            bet["cell_id"],
            row,
            col,
            bet["amount"],
            bet["nonce"],
            bet["timestamp"],
            bet.get("min_multiplier"),
            bet["signature"],
        )
    )


def check_window(timestamp: int, now_ms: int, window_ms: int, future_ms: int) -> None:
    """Refuse a timestamp more than ``window_ms`` old or ``future_ms`` ahead of ``now_ms``."""
    if now_ms - timestamp > window_ms or timestamp - now_ms > future_ms:
        raise Rejection(
            ErrorCode.TIMESTAMP_OUT_OF_WINDOW,
            f"timestamp must be within {window_ms} ms before and {future_ms} ms after "
            f"the server clock ({now_ms})",
        )


def verify(wallet_hex: str, message: bytes, signature_hex: str) -> None:
    """Check an Ed25519 signature; raise Rejection ``invalid_signature`` when it does not hold."""
    try:
        crypto_sign_open(bytes.fromhex(signature_hex) + message, bytes.fromhex(wallet_hex))
    except (BadSignatureError, ValueError) as exc:
        raise Rejection(ErrorCode.INVALID_SIGNATURE, "signature does not verify") from exc
