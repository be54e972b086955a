"""How messages print: JSON lines (the default, for pipes and jq) or a readable table.

Pure functions from a message to text; no I/O.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

__all__ = ["TABLE_HEADER", "json_line", "number", "table_rows"]

#: The header printed once above ``--pretty`` rows.
TABLE_HEADER = f"{'time (UTC)':<12}  {'stream':<22}  {'event':<12}  details"


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


def _time(payload: dict[str, Any]) -> str:
    for key in ("E", "T"):
        value = payload.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            moment = datetime.fromtimestamp(value / 1000, UTC)
            return moment.strftime("%H:%M:%S.") + f"{value % 1000:03d}"
    return ""


def table_rows(stream: str, payload: Any) -> list[str]:
    """``payload`` of ``stream`` as table rows: time, stream, event, then the fields that
    matter for its kind. Lists (``!miniTicker@arr``) give one row per element."""
    if isinstance(payload, list):
        return [row for item in payload for row in table_rows(stream, item)]
    if not isinstance(payload, dict):
        return [f"{'':<12}  {stream:<22}  {'':<12}  {json_line(payload)}"]
    event, details = _describe(stream, payload)
    return [f"{_time(payload):<12}  {stream:<22}  {event:<12}  {details}"]


def _describe(stream: str, p: dict[str, Any]) -> tuple[str, str]:
    kind = p.get("e")
    if kind in ("trade", "aggTrade", "blockTrade"):
        side = "sell" if p.get("m") else "buy"  # the buyer is the maker: the taker sold
        ident = p.get("t", p.get("a"))
        return str(kind), (
            f"{p.get('s', '')} {side:<4} {number(p.get('q')):>14} @ {number(p.get('p')):<14}"
            f" #{ident}"
        )
    if kind == "kline" and isinstance(p.get("k"), dict):
        k = p["k"]
        closed = "  closed" if k.get("x") else ""
        return f"kline_{k.get('i', '')}", (
            f"{p.get('s', '')} o {number(k.get('o'))}  h {number(k.get('h'))}  "
            f"l {number(k.get('l'))}  c {number(k.get('c'))}  v {number(k.get('v'))}{closed}"
        )
    if kind == "depthUpdate":
        bids, asks = p.get("b") or [], p.get("a") or []
        return "depthUpdate", (
            f"{p.get('s', '')} ids {p.get('U')}..{p.get('u')}  "
            f"{len(bids)} bid{'s' * (len(bids) != 1)}, {len(asks)} ask{'s' * (len(asks) != 1)}"
        )
    if kind is None and {"u", "b", "a", "B", "A"} <= p.keys():  # bookTicker has no "e"
        return "bookTicker", (
            f"{p.get('s', '')} bid {number(p['B'])} @ {number(p['b'])}  "
            f"ask {number(p['A'])} @ {number(p['a'])}  u {p['u']}"
        )
    if kind is None and "lastUpdateId" in p:  # partial depth: no "e", no symbol
        bids, asks = p.get("bids") or [], p.get("asks") or []
        best_bid = f"{number(bids[0][0])} x {number(bids[0][1])}" if bids else "-"
        best_ask = f"{number(asks[0][0])} x {number(asks[0][1])}" if asks else "-"
        return "depth", f"id {p['lastUpdateId']}  best bid {best_bid}  best ask {best_ask}"
    if kind == "24hrMiniTicker":
        return "miniTicker", (
            f"{p.get('s', '')} close {number(p.get('c'))}  open {number(p.get('o'))}  "
            f"high {number(p.get('h'))}  low {number(p.get('l'))}  vol {number(p.get('v'))}"
        )
    if kind in ("24hrTicker", "1hTicker", "4hTicker", "1dTicker"):
        return str(kind), (
            f"{p.get('s', '')} last {number(p.get('c'))}  change {number(p.get('p'))} "
            f"({number(p.get('P'))}%)  high {number(p.get('h'))}  low {number(p.get('l'))}  "
            f"vol {number(p.get('v'))}"
        )
    if kind == "avgPrice":
        return "avgPrice", f"{p.get('s', '')} {p.get('i', '')} average {number(p.get('w'))}"
    fields = "  ".join(
        f"{key} {number(value) if isinstance(value, str) else json_line(value)}"
        for key, value in p.items()
        if key not in ("e", "E")
    )
    return str(kind or ""), fields
