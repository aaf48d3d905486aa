"""The wire contract: every field a client sends, defined once.

Each field has a kind (``Text`` with a pattern, ``Integer`` with bounds, ``Symbol`` of a
configured market, ``Items`` of a body) that both checks a decoded JSON value and writes
its JSON Schema; a ``Body`` is an object of fields that refuses unknown and missing ones.
The validators (protocol.py for bets, http/ for the other routes and the stream) and
``/openapi.json`` are built from the same objects, so a bound cannot live in code only.
What the gateway answers is described in http/schemas.py. ADR 10 says why a table of our
own rather than msgspec or pydantic.

No I/O here. Nothing is normalised: a value must match exactly as sent, because
signatures cover the values exactly as sent.
"""

from __future__ import annotations

import re
from binascii import unhexlify
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import ErrorCode, Rejection

__all__ = [
    "AMOUNT",
    "ARCHIVE",
    "BET",
    "BET_ID",
    "BET_STATUSES",
    "LIST_LIMIT",
    "REFERENCE",
    "CELL",
    "CREDIT",
    "DEV_FUNDING",
    "HALT",
    "Hex",
    "MAX_AMOUNT",
    "MAX_TIMESTAMP",
    "MULTIPLIER",
    "NONCE",
    "READ_TIMESTAMP_DIGITS",
    "SIGNATURE",
    "SUBSCRIBE",
    "TICKS",
    "TIMESTAMP",
    "WALLET",
    "WATCH",
    "Body",
    "Integer",
    "Items",
    "Symbol",
    "Text",
    "invalid",
]

MAX_AMOUNT = 10**12
MAX_TIMESTAMP = 10**15


def invalid(name: str, message: str) -> Rejection:
    """422 ``invalid_field`` naming the field."""
    return Rejection(ErrorCode.INVALID_FIELD, f"{name}: {message}", field=name)


@dataclass(frozen=True)
class Text:
    """A JSON string matching ``pattern`` whole (``what`` says it in words)."""

    pattern: str
    what: str
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(self.pattern))

    def check(self, name: str, value: object, markets: Collection[str] = ()) -> str:
        if type(value) is not str or self.regex.fullmatch(value) is None:
            raise invalid(name, f"must be {self.what}")
        return value

    def schema(self, markets: Collection[str] = ()) -> dict[str, Any]:
        return {"type": "string", "pattern": f"^{self.pattern}$", "description": self.what}


class Hex(Text):
    """Exactly ``digits`` lowercase hex digits: ``Text`` with the pattern ``[0-9a-f]{digits}``,
    checked by a hex round trip instead of the regex (a bet's wallet and signature are 192
    digits; sre spends ~50 instructions a character on them, this under half; ADR 16)."""

    digits: int

    def __init__(self, digits: int, what: str) -> None:
        super().__init__(f"[0-9a-f]{{{digits}}}", what)
        object.__setattr__(self, "digits", digits)

    def check(self, name: str, value: object, markets: Collection[str] = ()) -> str:
        # unhexlify takes hex digits of either case and nothing else, hex() writes them
        # lower case: equal only when the value was lower-case hex already
        try:
            if type(value) is str and len(value) == self.digits and unhexlify(value).hex() == value:
                return value
        except ValueError:  # binascii.Error: not ASCII, not a hex digit, odd length
            pass
        raise invalid(name, f"must be {self.what}")


@dataclass(frozen=True)
class Integer:
    """A JSON integer (never ``1.0``, never ``true``) from ``low`` to ``high``."""

    low: int
    high: int

    def check(self, name: str, value: object, markets: Collection[str] = ()) -> int:
        if type(value) is not int:
            raise invalid(name, "must be a JSON integer")
        if not self.low <= value <= self.high:
            raise invalid(name, f"must be between {self.low} and {self.high}")
        return value

    def schema(self, markets: Collection[str] = ()) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.low, "maximum": self.high}


@dataclass(frozen=True)
class Symbol:
    """One of the gateway's configured market symbols."""

    def check(self, name: str, value: object, markets: Collection[str] = ()) -> str:
        if type(value) is not str or value not in markets:
            raise invalid(name, "must be a configured market symbol")
        return value

    def schema(self, markets: Collection[str] = ()) -> dict[str, Any]:
        return {"type": "string", "enum": list(markets)}


@dataclass(frozen=True)
class Items:
    """A JSON array of ``low`` to ``high`` values of one kind."""

    of: Kind
    low: int
    high: int

    def check(self, name: str, value: object, markets: Collection[str] = ()) -> list[Any]:
        if type(value) is not list or not self.low <= len(value) <= self.high:
            raise invalid(name, f"must be a list of {self.low} to {self.high} items")
        return [self.of.check(name, item, markets) for item in value]

    def schema(self, markets: Collection[str] = ()) -> dict[str, Any]:
        return {
            "type": "array",
            "minItems": self.low,
            "maxItems": self.high,
            "items": self.of.schema(markets),
        }


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    required: bool = True


_ABSENT = object()


class Body:
    """A JSON object of ``fields``: unknown members refused first, then each field in
    order (a missing required one is 422 ``is required``)."""

    def __init__(self, title: str, *fields: Field) -> None:
        self.title = title
        self.fields = fields
        self.names = frozenset(f.name for f in fields)
        # what parse needs of each field, looked up once (a bet is checked per request)
        self._checks = tuple((f.name, f.kind.check, f.required) for f in fields)

    def check(self, name: str, value: object, markets: Collection[str] = ()) -> dict[str, Any]:
        if type(value) is not dict:
            raise invalid(name, "must be a JSON object")
        return self.parse(value, markets)

    def parse(self, data: dict[str, Any], markets: Collection[str] = ()) -> dict[str, Any]:
        """``data`` itself once every member is checked (optional ones absent stay absent):
        a check returns its value as sent, so a copy would be equal, and costs a store a
        field on the hot route."""
        names = self.names
        if not names.issuperset(data):
            for key in data:
                if key not in names:
                    raise invalid(str(key)[:64], "unknown field")
        for name, check, required in self._checks:
            value = data.get(name, _ABSENT)
            if value is not _ABSENT:
                check(name, value, markets)
            elif required:
                raise invalid(name, "is required")
        return data

    def schema(self, markets: Collection[str] = ()) -> dict[str, Any]:
        return {
            "title": self.title,
            "type": "object",
            "additionalProperties": False,
            "required": [f.name for f in self.fields if f.required],
            "properties": {f.name: f.kind.schema(markets) for f in self.fields},
        }


Kind = Text | Integer | Symbol | Items | Body

WALLET = Hex(64, "64 lowercase hex digits (an Ed25519 public key)")
SIGNATURE = Hex(128, "128 lowercase hex digits (an Ed25519 signature)")
# A cell is ``cell-<row>-<col>`` (market/grid.py says what row and column cover).
CELL = Text(r"cell-(0|[1-9][0-9]{0,17})-(0|[1-9][0-9]{0,17})", "cell-<row>-<col>")
NONCE = Text(r"[A-Za-z0-9_-]{1,64}", "1-64 characters of A-Z a-z 0-9 _ -")
MULTIPLIER = Text(r"(0|[1-9][0-9]{0,5})\.[0-9]{2}", "a decimal like 1.50")
BET_ID = Text(r"[1-9][0-9]{0,18}", "a bet id (decimal digits)")
REFERENCE = Text(r"[A-Za-z0-9._:-]{1,128}", "1-128 characters of A-Z a-z 0-9 . _ : -")
AMOUNT = Integer(1, MAX_AMOUNT)
TIMESTAMP = Integer(0, MAX_TIMESTAMP)
# a signed read's X-Tapgate-Timestamp: milliseconds, at most this many ASCII digits
READ_TIMESTAMP_DIGITS = 16
BET_STATUSES = ("accepted", "won", "lost", "void")
LIST_LIMIT = Integer(1, 200)  # GET /api/wallets/<w>/bets?limit=, 50 when absent

BET = Body(
    "Bet",
    Field("wallet", WALLET),
    Field("market", Symbol()),
    Field("cell_id", CELL),
    Field("amount", AMOUNT),
    Field("nonce", NONCE),
    Field("timestamp", TIMESTAMP),
    Field("min_multiplier", MULTIPLIER, required=False),
    Field("signature", SIGNATURE),
)
CREDIT = Body("Credit", Field("amount", Integer(1, 10**15)), Field("reference", REFERENCE))
ARCHIVE = Body("Archive", Field("older_than_s", Integer(0, 10 * 365 * 86400)))
# printable ASCII: what an operator types into a halt, and safe in every log line
HALT = Body("Halt", Field("reason", Text(r"[ -~]{1,200}", "1-200 printable ASCII characters")))
TICK = Body(
    "Tick",
    Field("seq", Integer(1, 2**62)),
    Field("price", Integer(1, 10**15)),
    Field("ts", Integer(0, 10**15)),
    Field("signature", SIGNATURE),
)
TICKS = Body("Ticks", Field("ticks", Items(TICK, 1, 100)))
DEV_FUNDING = Body("DevFunding", Field("wallet", WALLET), Field("amount", AMOUNT))

# The stream's client messages (docs/FRONTEND.md), after their "op" member.
SUBSCRIBE = Body(
    "Subscribe",
    Field("op", Text("subscribe", '"subscribe"')),
    Field("wallet", WALLET),
    Field("timestamp", TIMESTAMP),
    Field("signature", SIGNATURE),
)
WATCH = Body(
    "Watch",
    Field("op", Text("watch|unwatch", '"watch" or "unwatch"')),
    Field("markets", Items(Symbol(), 1, 64)),
)
