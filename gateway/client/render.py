"""Terminal views of the gateway's JSON answers: the CLI's tables (JSON stays the contract).

The view follows the body's shape: a grid (``cells``) as bands by windows, a market list and
a bet list as tables, anything else as one ``name  value`` line per field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

__all__ = ["render"]

MARKET_COLUMNS = (
    ("market", "market"),
    ("price", "price"),
    ("breaker", "breaker.name"),
    ("priced", "priced"),
    ("feed age ms", "feed_age_ms"),
    ("quote age ms", "quote_age_ms"),
    ("sigma/tick", "volatility.estimate"),
    ("edge bps", "pricing.house_edge_bps"),
)
BET_COLUMNS = (
    ("bet", "bet_id"),
    ("market", "market"),
    ("cell", "cell_id"),
    ("amount", "amount"),
    ("multiplier", "multiplier"),
    ("status", "status"),
    ("payout", "payout"),
)


def render(body: Any) -> str:
    """The terminal view of one JSON answer."""
    if isinstance(body, Mapping):
        if isinstance(body.get("cells"), list):
            return _grid(body)
        if isinstance(body.get("markets"), list):
            return _table(MARKET_COLUMNS, body["markets"])
        if isinstance(body.get("bets"), list):
            more = body.get("next_before")
            footer = f"\nolder bets: --before {more}" if more else ""
            return _table(BET_COLUMNS, body["bets"]) + footer
        return _fields(body)
    return orjson.dumps(body, option=orjson.OPT_INDENT_2).decode()


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value) or "-"
    return str(value)


def _lookup(row: Mapping[str, Any], dotted: str) -> Any:
    value: Any = row
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _flat(body: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in body.items():
        if isinstance(value, Mapping):
            out += _flat(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def _fields(body: Mapping[str, Any]) -> str:
    pairs = _flat(body)
    width = max((len(k) for k, _ in pairs), default=0)
    return "\n".join(f"{k.ljust(width)}  {_text(v)}" for k, v in pairs)


def _is_number(text: str) -> bool:
    return text.replace(".", "", 1).replace("-", "", 1).replace("e", "", 1).isdigit()


def _lines(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    numeric = [all(_is_number(r[i]) or r[i] == "-" for r in rows) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def _table(columns: Sequence[tuple[str, str]], rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "(none)"
    return _lines(
        [header for header, _ in columns],
        [[_text(_lookup(row, field)) for _, field in columns] for row in rows],
    )


def _grid(body: Mapping[str, Any]) -> str:
    """Price bands (highest first) by time windows (soonest first), each cell its multiplier."""
    cells: list[Mapping[str, Any]] = body["cells"]
    head = f"{body.get('market', '')}  price {_text(body.get('price'))}"
    head += f"  breaker {_text(body.get('breaker'))}"
    if not cells:
        return head + "\n(no open cells: the market takes no bets now)"
    now = int(body.get("server_time_ms") or 0)
    cols = sorted({int(c["col"]) for c in cells})
    starts = {int(c["col"]): int(c["start_ms"]) for c in cells}
    by_row: dict[int, dict[int, Mapping[str, Any]]] = {}
    for c in cells:
        by_row.setdefault(int(c["row"]), {})[int(c["col"])] = c
    price = body.get("price")
    headers = ["row", "band", *(f"+{(starts[col] - now) / 1000:.0f}s" for col in cols)]
    rows = []
    for row in sorted(by_row, reverse=True):
        some = next(iter(by_row[row].values()))
        band = f"{some['low']}-{some['high']}"
        if isinstance(price, int) and some["low"] <= price < some["high"]:
            band += " <"
        rows.append(
            [str(row), band, *(str(by_row[row][col]["multiplier"]) if col in by_row[row] else "-"
                               for col in cols)]
        )  # fmt: skip
    if cols == list(range(cols[0], cols[0] + len(cols))):
        where = f"the {headers[2]} column is col {cols[0]}, each later column one more"
    else:
        where = ", ".join(f"{h} is col {col}" for h, col in zip(headers[2:], cols, strict=True))
    foot = f"cell id: cell-<row>-<col>; {where}; '<' marks the price's band"
    return "\n".join([head, _lines(headers, rows), foot])
