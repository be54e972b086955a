"""Connection events: what happens to each socket, apart from the data it carries.

``BinanceStreams.events`` emits these. Each names the ``stream`` key it concerns (a stream name
such as ``btcusdt@trade``, or ``a/b`` for a combined socket) and the ``time`` it happened
(``time.time()`` seconds). They are frozen, slotted dataclasses: match on the class.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Connected",
    "Connecting",
    "ConnectionEvent",
    "Disconnected",
    "GaveUp",
    "MalformedFrame",
    "Reconnecting",
]


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    stream: str
    time: float


@dataclass(frozen=True, slots=True)
class Connecting(ConnectionEvent):
    """A connection attempt to ``url`` starts."""

    url: str


@dataclass(frozen=True, slots=True)
class Connected(ConnectionEvent):
    """The WebSocket handshake with ``url`` succeeded."""

    url: str


@dataclass(frozen=True, slots=True)
class Disconnected(ConnectionEvent):
    """The connection ended (or the attempt failed); ``reason`` says why, ``code`` is the close
    code when the server sent one (1006: dropped without a close frame), else None."""

    reason: str
    code: int | None = None


@dataclass(frozen=True, slots=True)
class Reconnecting(ConnectionEvent):
    """Attempt number ``attempt`` (1-based count of consecutive failures so far; 0 for the
    uncounted reconnect after ``serverShutdown``) will start in ``delay`` seconds."""

    attempt: int
    delay: float


@dataclass(frozen=True, slots=True)
class GaveUp(ConnectionEvent):
    """``attempts`` consecutive reconnects failed: subscribers got the error dict and completed."""

    attempts: int
    reason: str


@dataclass(frozen=True, slots=True)
class MalformedFrame(ConnectionEvent):
    """A frame that is not valid JSON (or is binary) was dropped; ``excerpt`` shows its start."""

    excerpt: str
    error: str
