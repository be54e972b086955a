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

from rxbinance.errors import ConnectionFailure

__all__ = [
    "GIVE_UP_MESSAGE",
    "FrameKind",
    "classify",
    "expected_event",
    "give_up_error",
    "give_up_message",
    "is_give_up",
]

#: What every subscriber of a raw stream receives when its retries are spent, exactly as
#: python-binance sent it (then ``on_completed``).
GIVE_UP_MESSAGE = {"e": "error", "m": "Max reconnect retries reached"}


def give_up_message() -> dict[str, str]:
    """A fresh copy of :data:`GIVE_UP_MESSAGE` (subscribers may mutate what they get)."""
    return dict(GIVE_UP_MESSAGE)


def is_give_up(message: Any) -> bool:
    """True for the give-up message (:data:`GIVE_UP_MESSAGE`): the one check every typed
    pipeline, operator and the CLI use."""
    return type(message) is dict and message.get("e") == "error" and "m" in message


def give_up_error(message: dict[str, Any], stream: str = "") -> ConnectionFailure:
    """The exception a typed pipeline ends with instead of passing the give-up dict on:
    ``ConnectionFailure("<stream>: <m>", stream=stream)``, or the dict's ``m`` alone when the
    stream is unknown (``""``). Every typed pipeline knows its stream and passes it."""
    where = f"{stream}: " if stream else ""
    return ConnectionFailure(f"{where}{message.get('m')}", stream=stream)


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
    # All-market streams (!miniTicker@arr, !ticker_1d@arr) name the kind before the '@'.
    suffix = stream[1:] if stream.startswith("!") else stream.partition("@")[2]
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
