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

__all__ = ["FrameKind", "classify"]


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
