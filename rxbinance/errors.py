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
    ├── BinanceAPIError                       Binance answered a request with an error: HTTP
    │   │                                     ``status``, Binance ``code`` and ``msg``
    │   └── RateLimitError                    429 (slow down) or 418 (IP banned), with
    │                                         ``retry_after`` seconds and ``banned``
    ├── SubscriptionRefused                   Binance refused to SUBSCRIBE a pooled ``stream``
    │                                         (its ``code`` and ``msg``)
    ├── RequestError                          a REST request got no answer: DNS, refused, TLS,
    │   │                                     connection reset (requests' errors, chained;
    │   │                                     ``sent`` False: it never left)
    │   └── RequestTimeout                    no answer within the client's ``timeout``
    ├── ProtocolError                         Binance sent something unexpected (bad frame)
    │   └── ParseError (also ValueError)      a payload that does not fit its model: names the
    │                                         event and the field
    ├── RecordingError (also ValueError)      not a recording, or a corrupt line (``path``,
    │                                         ``line``)
    ├── QueueOverflow                         a consumer fell ``maxsize`` items behind (``aiter``,
    │                                         ``observe_on_bounded`` with overflow="error")
    ├── BridgeError                           Redis unreachable or refusing (``rxbinance.bridge``;
    │                                         ``url`` without its password)
    ├── StreamsClosed (also RuntimeError)     subscribed to a BinanceStreams after ``close()``
    └── InternalError                         a bug in rxbinance itself (a reader crashed): never
                                              retried as if it were a network drop

Exceptions of websocket-client, requests and the socket module are mapped to these at the
transport boundary and chained (``raise ConnectError(...) from exc``), so callers never need to
import the dependencies' exception types. None of them ever carries an API secret.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BinanceAPIError",
    "BridgeError",
    "ConnectError",
    "ConnectionDropped",
    "ConnectionFailure",
    "HandshakeError",
    "InternalError",
    "InvalidInputError",
    "ParseError",
    "ProtocolError",
    "QueueOverflow",
    "RateLimitError",
    "RecordingError",
    "RequestError",
    "RequestTimeout",
    "RxBinanceError",
    "ServerShutdown",
    "StallError",
    "StreamsClosed",
    "SubscriptionRefused",
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
    """The server answered the WebSocket upgrade with an HTTP error ``status``; ``reason`` is
    the ``msg`` of Binance's JSON body when it sent one."""

    def __init__(
        self, message: str, *, status: int, reason: str = "", url: str = "", stream: str = ""
    ) -> None:
        super().__init__(message, url=url, stream=stream)
        self.status = status
        self.reason = reason


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


class BinanceAPIError(RxBinanceError):
    """Binance answered a request with an error.

    Attributes:
        status: The HTTP status (REST) or the response's ``status`` (WebSocket API), e.g. 400.
        code: Binance's error code, e.g. -1121; None when the body was not Binance's
            ``{"code", "msg"}`` JSON (an nginx HTML page such as the 410 of a retired endpoint).
        msg: Binance's message, or a description of the non-JSON body.
        method: The HTTP method or WebSocket API method ("" when unknown).
        url: The URL, never with its signature ("" when unknown).

    ``str()`` shows status, code and msg (and the request when known). Status 5xx means the
    outcome is unknown, not that the request failed (binance-protocol.md 7.1).
    """

    def __init__(
        self, status: int, code: int | None, msg: str, *, method: str = "", url: str = ""
    ) -> None:
        super().__init__(status, code, msg)
        self.status = status
        self.code = code
        self.msg = msg
        self.method = method
        self.url = url

    def __str__(self) -> str:
        request = " ".join(part for part in (self.method, self.url) if part)
        where = f" ({request})" if request else ""
        code = "no Binance code" if self.code is None else f"code {self.code}"
        return f"HTTP {self.status}, {code}: {self.msg}{where}"


class SubscriptionRefused(RxBinanceError):
    """Binance refused to ``SUBSCRIBE`` ``stream`` on a pooled connection: its error reply's
    ``code`` and ``msg`` (e.g. 2, "Invalid request: invalid stream"). Ends that stream's
    subscribers only; the other streams of the connection carry on."""

    def __init__(self, stream: str, code: int | None, msg: str) -> None:
        super().__init__(f"Binance refused to subscribe {stream}: code {code}: {msg}")
        self.stream = stream
        self.code = code
        self.msg = msg


class RateLimitError(BinanceAPIError):
    """429 (too much request weight: back off) or 418 (the IP is banned).

    Attributes:
        retry_after: Seconds to wait before the next request (the ``Retry-After`` header, or
            what is left of it when the client refused to send), None when Binance gave none.
        banned: True for 418: the IP is banned until ``retry_after`` has passed.
    """

    def __init__(
        self,
        status: int,
        code: int | None,
        msg: str,
        *,
        retry_after: float | None = None,
        banned: bool = False,
        method: str = "",
        url: str = "",
    ) -> None:
        super().__init__(status, code, msg, method=method, url=url)
        self.retry_after = retry_after
        self.banned = banned

    def __str__(self) -> str:
        wait = "" if self.retry_after is None else f" [retry after {self.retry_after:g} s]"
        return super().__str__() + wait


class RequestError(RxBinanceError):
    """A REST request got no HTTP answer: DNS failure, connection refused or reset, TLS error.

    ``sent`` is False when no connection was made (refused, unresolvable host, connect
    timeout): the request never reached Binance, so it cost no request weight. Otherwise it
    may or may not have reached Binance. ``method`` and ``url`` (never with its signature) say
    which request; the exception of requests is chained as ``__cause__``.
    """

    def __init__(self, message: str, *, method: str = "", url: str = "", sent: bool = True) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.sent = sent


class RequestTimeout(RequestError):
    """No answer within the client's ``timeout`` (connecting or reading)."""


class ParseError(ProtocolError, ValueError):
    """A payload could not be turned into a model.

    Raised by every ``from_dict`` for a missing required field, a field of the wrong JSON type,
    a price or quantity that is not a finite decimal string, or a payload that is not a JSON
    object; and by ``parse`` for a payload whose event type it does not know.

    Attributes:
        event: the event type the payload was parsed as, e.g. ``"trade"`` or ``"kline"``.
        field: the JSON key path of the bad field (``"p"``, ``"k.o"``, ``"B[0].f"``), or
            ``None`` when the payload as a whole is wrong.
        attribute: the model attribute path of that field (``"price"``, ``"open"``,
            ``"balances[0].free"``), or ``None``.
        reason: what was wrong, e.g. ``"missing"`` or ``"expected a decimal string, got None"``.

    ``str(error)`` is ``"trade: field 'p' (price): expected a decimal string, got None"``, or
    ``"<event>: <reason>"`` when no field is involved.
    """

    def __init__(
        self,
        event: str,
        reason: str,
        *,
        field: str | None = None,
        attribute: str | None = None,
    ) -> None:
        self.event = event
        self.reason = reason
        self.field = field
        self.attribute = attribute
        if field is None:
            message = f"{event}: {reason}"
        else:
            message = f"{event}: field {field!r} ({attribute}): {reason}"
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        # The keyword-only constructor does not fit BaseException's default (args-based) pickling.
        return (_rebuild_parse_error, (self.event, self.reason, self.field, self.attribute))


def _rebuild_parse_error(
    event: str, reason: str, field: str | None, attribute: str | None
) -> ParseError:
    return ParseError(event, reason, field=field, attribute=attribute)


class RecordingError(RxBinanceError, ValueError):
    """A file that is not an rxbinance recording, or a recording with a corrupt line.

    ``path`` is the file, ``line`` the 1-based line number at fault (0 when the file as a whole
    is the problem). A torn *last* line is not an error (see :attr:`Recording.torn`).
    """

    def __init__(self, message: str, *, path: str = "", line: int = 0) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


class QueueOverflow(RxBinanceError):
    """More than ``maxsize`` items were waiting for a consumer (of :func:`~rxbinance.aiter` or
    :func:`~rxbinance.operators.observe_on_bounded`, with ``overflow="error"``): the consumer
    is too slow for the stream.

    ``maxsize`` is the bound that was exceeded.
    """

    def __init__(self, maxsize: int) -> None:
        super().__init__(
            f"more than {maxsize} items waiting for the consumer: it is too slow for this "
            "stream (raise maxsize, or pass overflow='drop_oldest' or 'latest' to skip stale "
            "items)"
        )
        self.maxsize = maxsize


class BridgeError(RxBinanceError):
    """Redis refused or could not serve the bridge (:mod:`rxbinance.bridge`): unreachable
    (``unreachable`` True), a key holding something other than a stream, a consumer group that
    cannot be made. Carries the URL without its password."""

    def __init__(self, message: str, *, url: str, unreachable: bool = False) -> None:
        super().__init__(message)
        self.url = url
        self.unreachable = unreachable


class StreamsClosed(RxBinanceError, RuntimeError):
    """A subscription to a :class:`~rxbinance.BinanceStreams` (a stream, a book, user data)
    after its ``close()``: delivered as ``on_error`` at once."""


class InternalError(RxBinanceError):
    """A bug in rxbinance itself, e.g. a socket's reader crashed. Logged with its traceback and
    delivered as ``on_error`` (with the original exception chained); never retried as if it
    were a network drop, since a retry would crash the same way."""

    def __init__(self, message: str, *, stream: str = "") -> None:
        super().__init__(message)
        self.stream = stream
