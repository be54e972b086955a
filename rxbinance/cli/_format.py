"""How messages print: JSON lines (the default, for pipes and jq) or a readable table.

Pure functions from a message to text; no I/O. In the table, prices and quantities are shown
with the symbol's own precision (its tick and step sizes from ``exchangeInfo``, see
:func:`precisions`), so a column of prices lines up and ``60000.10`` is not cut to
``60000.1``; without that information they are shown as sent, padding zeros removed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "TABLE_HEADER",
    "Precision",
    "basis_points",
    "fixed",
    "json_line",
    "number",
    "precisions",
    "short_error",
    "table_rows",
]

#: The header printed once above ``--pretty`` rows.
TABLE_HEADER = f"{'time (UTC)':<12}  {'stream':<22}  {'event':<12}  details"


@dataclass(frozen=True, slots=True)
class Precision:
    """The decimals a symbol's prices and quantities are quoted with: those of its tick size
    (``PRICE_FILTER``) and step size (``LOT_SIZE``)."""

    price: int
    quantity: int


def _places(step: object) -> int | None:
    """Decimals of a tick or step size (``"0.01000000"`` -> 2, ``"10"`` -> 0); None if it is
    not a positive decimal string."""
    try:
        value = Decimal(str(step))
    except InvalidOperation:
        return None
    if not value.is_finite() or value <= 0:
        return None
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else None


def precisions(exchange_info: Mapping[str, Any]) -> dict[str, Precision]:
    """The precision of every symbol of an ``exchangeInfo`` answer (spot or USD-M), by
    uppercase symbol. Symbols without usable filters are left out."""
    found: dict[str, Precision] = {}
    for entry in exchange_info.get("symbols") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("symbol"), str):
            continue
        filters = {
            f.get("filterType"): f for f in entry.get("filters") or [] if isinstance(f, dict)
        }
        price = _places(filters.get("PRICE_FILTER", {}).get("tickSize"))
        quantity = _places(filters.get("LOT_SIZE", {}).get("stepSize"))
        if price is not None and quantity is not None:
            found[entry["symbol"].upper()] = Precision(price, quantity)
    return found


def json_line(message: Any) -> str:
    """One message as compact JSON on one line (non-ASCII kept as is)."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def number(text: object) -> str:
    """A Binance decimal string without its padding zeros: ``"0.01000000"`` -> ``"0.01"``."""
    if not isinstance(text, str):
        return str(text)
    if "." in text and "e" not in text.lower():
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def fixed(text: object, places: int | None) -> str:
    """A Binance decimal string with ``places`` decimals (``"60000.10000000"``, 2 ->
    ``"60000.10"``); with more when the value has more (a digit is never hidden); as
    :func:`number` when ``places`` is None or ``text`` is not a decimal."""
    if places is None or not isinstance(text, str):
        return number(text)
    try:
        value = Decimal(text)
    except InvalidOperation:
        return number(text)
    if not value.is_finite():
        return number(text)
    exponent = value.normalize().as_tuple().exponent
    needed = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return f"{value:.{max(places, needed)}f}"


def basis_points(spread: Decimal, mid: Decimal) -> str:
    """``spread`` relative to ``mid`` in basis points (1 bp = 0.01 %), with two significant
    digits at least, so a one-tick spread on a high price reads ``0.0017 bp``, never
    ``0.00 bp``; ``-`` when ``mid`` is not positive."""
    if not mid > 0:
        return "-"
    bps = spread / mid * 10_000
    if bps == 0:
        return "0 bp"
    places = max(2, 1 - bps.adjusted())  # adjusted(): the power of ten of the first digit
    return f"{bps:.{places}f} bp"


# The end of an OS error deep inside a requests/urllib3 message ("... [Errno 111] Connection
# refused")): all a person needs of it.
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^\"'()\]]+)")
_SHORT = 100


def short_error(text: str) -> str:
    """An error message cut to what a status line needs: the OS error of a failed connection
    (``Connection refused``), else the first line, at most about 100 characters."""
    errors = _ERRNO.findall(text)
    if errors:
        return str(errors[-1]).strip().rstrip(".")
    line = text.strip().splitlines()[0] if text.strip() else text
    return line if len(line) <= _SHORT else line[: _SHORT - 1].rstrip() + "…"


def _time(payload: dict[str, Any], received: float | None) -> str:
    """The event time of ``payload`` (``E``, else ``T``), else ``received``: spot bookTicker
    and partial depth carry no time, so theirs is when they arrived."""
    for key in ("E", "T"):
        value = payload.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            break
    else:
        if received is None:
            return ""
        value = int(received * 1000)
    moment = datetime.fromtimestamp(value / 1000, UTC)
    return moment.strftime("%H:%M:%S.") + f"{value % 1000:03d}"


def table_rows(
    stream: str,
    payload: Any,
    *,
    received: float | None = None,
    precision: Mapping[str, Precision] | None = None,
) -> list[str]:
    """``payload`` of ``stream`` as table rows: time, stream, event, then the fields that
    matter for its kind. Lists (``!miniTicker@arr``) give one row per element.

    ``received`` (epoch seconds) fills the time of payloads that carry none (spot bookTicker,
    partial depth). ``precision`` (by uppercase symbol, see :func:`precisions`) sets the
    decimals of prices and quantities; a symbol missing from it is shown as sent.
    """
    if isinstance(payload, list):
        return [
            row
            for item in payload
            for row in table_rows(stream, item, received=received, precision=precision)
        ]
    if not isinstance(payload, dict):
        return [f"{'':<12}  {stream:<22}  {'':<12}  {json_line(payload)}"]
    symbol = payload.get("s")
    if not isinstance(symbol, str):  # partial depth: the symbol is in the stream name only
        symbol = stream.partition("@")[0]
    known = (precision or {}).get(symbol.upper())
    price: Callable[[object], str]
    qty: Callable[[object], str]
    if known is None:
        price = qty = number
    else:
        places = known

        def price(text: object) -> str:
            return fixed(text, places.price)

        def qty(text: object) -> str:
            return fixed(text, places.quantity)

    event, details = _describe(payload, price, qty)
    return [f"{_time(payload, received):<12}  {stream:<22}  {event:<12}  {details}"]


def _spread(bid: object, ask: object, price: Callable[[object], str]) -> str:
    """``spread 0.01 (0.0017 bp)``; empty when the prices are not decimals or a side is
    empty (Binance sends ``"0"`` then)."""
    try:
        b, a = Decimal(str(bid)), Decimal(str(ask))
    except InvalidOperation:
        return ""
    if not (b.is_finite() and a.is_finite()) or b <= 0 or a <= 0:
        return ""
    return f"  spread {price(str(a - b))} ({basis_points(a - b, (a + b) / 2)})"


def _describe(
    p: dict[str, Any], price: Callable[[object], str], qty: Callable[[object], str]
) -> tuple[str, str]:
    kind = p.get("e")
    if kind in ("trade", "aggTrade", "blockTrade"):
        side = "sell" if p.get("m") else "buy"  # the buyer is the maker: the taker sold
        ident = p.get("t", p.get("a"))
        return str(kind), (
            f"{p.get('s', '')} {side:<4} {qty(p.get('q')):>14} @ {price(p.get('p')):<14} #{ident}"
        )
    if kind == "kline" and isinstance(p.get("k"), dict):
        k = p["k"]
        closed = "  closed" if k.get("x") else ""
        return f"kline_{k.get('i', '')}", (
            f"{p.get('s', '')} o {price(k.get('o'))}  h {price(k.get('h'))}  "
            f"l {price(k.get('l'))}  c {price(k.get('c'))}  v {qty(k.get('v'))}{closed}"
        )
    if kind == "depthUpdate":
        bids, asks = p.get("b") or [], p.get("a") or []
        return "depthUpdate", (
            f"{p.get('s', '')} ids {p.get('U')}..{p.get('u')}  "
            f"{len(bids)} bid{'s' * (len(bids) != 1)}, {len(asks)} ask{'s' * (len(asks) != 1)}"
        )
    if {"u", "b", "a", "B", "A"} <= p.keys() and kind in (None, "bookTicker"):
        # spot bookTicker has no "e"; USD-M's has "e": "bookTicker"
        return "bookTicker", (
            f"{p.get('s', '')} bid {qty(p['B'])} @ {price(p['b'])}  "
            f"ask {qty(p['A'])} @ {price(p['a'])}{_spread(p['b'], p['a'], price)}  u {p['u']}"
        )
    if kind is None and "lastUpdateId" in p:  # partial depth: no "e", no symbol
        bids, asks = p.get("bids") or [], p.get("asks") or []
        best_bid = f"{price(bids[0][0])} x {qty(bids[0][1])}" if bids else "-"
        best_ask = f"{price(asks[0][0])} x {qty(asks[0][1])}" if asks else "-"
        spread = _spread(bids[0][0], asks[0][0], price) if bids and asks else ""
        return "depth", (
            f"id {p['lastUpdateId']}  best bid {best_bid}  best ask {best_ask}{spread}"
        )
    if kind == "24hrMiniTicker":
        return "miniTicker", (
            f"{p.get('s', '')} close {price(p.get('c'))}  open {price(p.get('o'))}  "
            f"high {price(p.get('h'))}  low {price(p.get('l'))}  vol {qty(p.get('v'))}"
        )
    if kind in ("24hrTicker", "1hTicker", "4hTicker", "1dTicker"):
        return str(kind), (
            f"{p.get('s', '')} last {price(p.get('c'))}  change {price(p.get('p'))} "
            f"({number(p.get('P'))}%)  high {price(p.get('h'))}  low {price(p.get('l'))}  "
            f"vol {qty(p.get('v'))}"
        )
    if kind == "avgPrice":
        return "avgPrice", f"{p.get('s', '')} {p.get('i', '')} average {price(p.get('w'))}"
    fields = "  ".join(
        f"{key} {number(value) if isinstance(value, str) else json_line(value)}"
        for key, value in p.items()
        if key not in ("e", "E")
    )
    return str(kind or ""), fields
