"""Sorting decoded frames: market data, ``serverShutdown`` notices and control replies.

A stream socket carries three kinds of JSON text frame (binance-protocol.md 2, 3, 10.5):
market data (bare, or wrapped as ``{"stream", "data"}`` on combined sockets), the
``serverShutdown`` notice (bare ``{"e": "serverShutdown"}`` or wrapped with stream
``!serverShutdown``), and replies to control messages (``{"result": ..., "id": ...}`` or
``{"error": {...}, "id": ...}``), which are never wrapped, even on combined sockets.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

__all__ = ["FrameKind", "classify", "expected_event"]


class FrameKind(IntEnum):
    DATA = 0
    SERVER_SHUTDOWN = 1
    CONTROL_REPLY = 2


def classify(message: Any) -> FrameKind:
    """Which kind of frame a decoded JSON value is. Cheap: called once per message."""
    if type(message) is not dict:  # `!miniTicker@arr` and friends are bare lists
        return FrameKind.DATA
    if "e" in message:
        return FrameKind.SERVER_SHUTDOWN if message["e"] == "serverShutdown" else FrameKind.DATA
    if "stream" in message:
        if message["stream"] == "!serverShutdown":
            return FrameKind.SERVER_SHUTDOWN
        return FrameKind.DATA
    if "id" in message and ("result" in message or "error" in message):
        return FrameKind.CONTROL_REPLY
    return FrameKind.DATA


# Stream-name suffix (after the symbol's '@') -> the event type ``e`` its payloads carry.
_EVENT_OF_SUFFIX = {
    "trade": "trade",
    "aggTrade": "aggTrade",
    "depth": "depthUpdate",
    "miniTicker": "24hrMiniTicker",
    "ticker": "24hrTicker",
    "bookTicker": "bookTicker",
    "avgPrice": "avgPrice",
    "markPrice": "markPriceUpdate",
    "forceOrder": "forceOrder",
}


def expected_event(stream: str) -> str | None:
    """The ``e`` every payload of market stream ``stream`` carries when it carries one, or None
    when the stream is unknown (then nothing is checked).

    A frame whose ``e`` differs is not of the stream's kind (``{"e": "junk"}`` on an aggTrade
    socket) and is reported as malformed instead of reaching subscribers as data. Payloads
    without ``e`` (spot bookTicker and partial depth, which have none) are not judged by this.
    """
    if stream.startswith("!"):  # all-market: !miniTicker@arr, !ticker_1d@arr, !markPrice@arr@1s
        suffix = stream[1:]
    else:
        suffix = stream.partition("@")[2]
    head, _, tail = suffix.partition("@")[0].partition("_")
    if head == "kline":
        return "kline"
    if head == "continuousKline":
        return "continuous_kline"
    if head == "ticker" and tail:  # rolling window: <symbol>@ticker_1h -> "1hTicker"
        return f"{tail}Ticker"
    if head.startswith("depth"):
        return "depthUpdate"
    return _EVENT_OF_SUFFIX.get(head)
