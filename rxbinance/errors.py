"""Every exception rxbinance raises, in one tree.

::

    RxBinanceError
    ├── InvalidInputError (also ValueError)   you asked for something invalid: bad symbol,
    │                                         interval, depth level, speed, window, stream name
    ├── ConnectionFailure                     the socket could not be used; retried by streams
    │   ├── ConnectError                      TCP connect failed or timed out
    │   ├── HandshakeError                    the server refused the upgrade (HTTP status)
    │   ├── ConnectionDropped                 the server went away: close frame or no frame at all
    │   ├── StallError                        no data and no ping for ``stall_timeout`` seconds
    │   └── ServerShutdown                    Binance announced ``serverShutdown``: reconnect at
    │                                         once, not counted as a failure
    └── ProtocolError                         Binance sent something unexpected (bad frame)

Exceptions of websocket-client and the socket module are mapped to these at the transport
boundary and chained (``raise ConnectError(...) from exc``), so callers never need to import the
dependencies' exception types. None of them ever carries an API secret.
"""

from __future__ import annotations

__all__ = [
    "ConnectError",
    "ConnectionDropped",
    "ConnectionFailure",
    "HandshakeError",
    "InvalidInputError",
    "ProtocolError",
    "RxBinanceError",
    "ServerShutdown",
    "StallError",
]


class RxBinanceError(Exception):
    """Base class of every exception raised by rxbinance."""


class InvalidInputError(RxBinanceError, ValueError):
    """A symbol, interval, level, speed, window or stream name that Binance would not accept.

    Raised before any socket opens; the message names the bad value and what is allowed.
    """


class ConnectionFailure(RxBinanceError):
    """A socket for ``url`` failed; ``stream`` is the key of the shared stream it served."""

    def __init__(self, message: str, *, url: str = "", stream: str = "") -> None:
        super().__init__(message)
        self.url = url
        self.stream = stream


class ConnectError(ConnectionFailure):
    """The TCP connection (or TLS) could not be established: refused, unreachable, timed out."""


class HandshakeError(ConnectionFailure):
    """The server answered the WebSocket upgrade with an HTTP error ``status``."""

    def __init__(self, message: str, *, status: int, url: str = "", stream: str = "") -> None:
        super().__init__(message, url=url, stream=stream)
        self.status = status


class ConnectionDropped(ConnectionFailure):
    """The server closed the connection.

    ``code`` is the close code from the server's close frame, or 1006 when the connection ended
    without one (an abrupt drop).
    """

    def __init__(
        self, message: str, *, code: int, reason: str = "", url: str = "", stream: str = ""
    ) -> None:
        super().__init__(message, url=url, stream=stream)
        self.code = code
        self.reason = reason


class StallError(ConnectionFailure):
    """Neither data nor a ping arrived for ``timeout`` seconds: the connection is dead."""

    def __init__(self, message: str, *, timeout: float, url: str = "", stream: str = "") -> None:
        super().__init__(message, url=url, stream=stream)
        self.timeout = timeout


class ServerShutdown(ConnectionFailure):
    """Binance sent ``serverShutdown``: reconnect immediately; this is not counted as a failure."""


class ProtocolError(RxBinanceError):
    """Binance sent something rxbinance cannot use (malformed JSON, a binary frame, ...)."""
