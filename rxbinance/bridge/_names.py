"""The Binance stream name of a bare payload or a typed model, for the default Redis key."""

from __future__ import annotations

from typing import Any

__all__ = ["stream_name_of"]

# Event type ("e") -> the stream suffix, for the events whose stream is <symbol>@<suffix>.
_SUFFIX = {
    "trade": "trade",
    "aggTrade": "aggTrade",
    "depthUpdate": "depth",
    "24hrTicker": "ticker",
    "24hrMiniTicker": "miniTicker",
    "avgPrice": "avgPrice",
    "markPriceUpdate": "markPrice",
    "bookTicker": "bookTicker",
    "1hTicker": "ticker_1h",
    "4hTicker": "ticker_4h",
    "1dTicker": "ticker_1d",
}

# Typed model class -> the same suffix.
_MODEL_SUFFIX = {
    "Trade": "trade",
    "AggTrade": "aggTrade",
    "DepthUpdate": "depth",
    "Ticker": "ticker",
    "MiniTicker": "miniTicker",
    "AvgPrice": "avgPrice",
    "MarkPrice": "markPrice",
    "BookTicker": "bookTicker",
    "Quote": "bookTicker",
}


def stream_name_of(message: Any) -> str:
    """``btcusdt@aggTrade`` for an aggregate trade of BTCUSDT; "" when the message does not
    say (a spot partial depth, an ``@arr`` list, a user data event)."""
    if message.__class__ is dict:
        symbol = message.get("s")
        if symbol.__class__ is not str:
            return ""
        event = message.get("e")
        if event == "kline":
            interval = (message.get("k") or {}).get("i")
            return f"{symbol.lower()}@kline_{interval}" if interval.__class__ is str else ""
        if event is None and "u" in message and "b" in message:
            return f"{symbol.lower()}@bookTicker"  # spot bookTicker: no "e"
        suffix = _SUFFIX.get(event) if event.__class__ is str else None
        return f"{symbol.lower()}@{suffix}" if suffix else ""
    name = message.__class__.__name__
    symbol = getattr(message, "symbol", None)
    if symbol.__class__ is not str:
        return ""
    if name == "Kline":
        return f"{symbol.lower()}@kline_{getattr(message, 'interval', '')}"
    suffix = _MODEL_SUFFIX.get(name)
    return f"{symbol.lower()}@{suffix}" if suffix else ""
