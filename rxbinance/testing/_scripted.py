"""A scripted transport: sockets whose every message and failure the test decides.

The role httpx's ``MockTransport`` plays for httpx: plug :class:`ScriptedTransport` into
``BinanceStreams(transport=...)`` (or the reactive layer directly) and drive each socket by hand,
on the test's own thread, with no network and no threads::

    transport = ScriptedTransport()
    streams = BinanceStreams(transport=transport)
    received = []
    sub = streams.trades("BTCUSDT").subscribe(received.append)
    sock = transport.sockets[-1]          # opened by the first subscriber
    sock.deliver({"e": "trade", "s": "BTCUSDT", "t": 1, "p": "1", "q": "1", "T": 0, "m": True})
    sock.fail(ConnectionDropped("gone", code=1006))   # the streams reconnect: a new socket
    sub.dispose()                         # the last subscriber left: the socket is closed
    assert sock.closed

Combined with reactivex's ``TestScheduler`` as the timer scheduler of the reactive layer, a
reconnect schedule can be checked in virtual time (tests/test_reconnect_virtual_time.py).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from rxbinance.errors import ConnectionDropped, RxBinanceError
from rxbinance.events import Connected, ConnectionEvent, Disconnected, ShutdownAnnounced

__all__ = ["ScriptedSocket", "ScriptedTransport"]


class ScriptedSocket:
    """One connection whose fate the test decides (a :class:`~rxbinance.transport.SocketLike`).

    ``started`` and ``closed`` say what the library did with it; :meth:`deliver`,
    :meth:`connected`, :meth:`fail` and :meth:`close` act as the server or the network would.
    ``on_closed`` is reported at most once, as a real socket does. Callbacks run on the thread
    that calls these methods.
    """

    def __init__(
        self,
        url: str,
        *,
        key: str,
        on_message: Callable[[Any], None],
        on_event: Callable[[ConnectionEvent], None],
        on_closed: Callable[[RxBinanceError | None], None],
    ) -> None:
        self.url = url
        self.key = key
        self.messages = 0
        self.started = False
        self.closed = False
        #: Where data messages go (replaceable, as on a real socket).
        self.on_message = on_message
        #: Told of each data message first, as on a real socket (stream statistics).
        self.meter: Callable[[int, Any], None] | None = None
        #: Where control replies go (pooled streams set it), as on a real socket.
        self.on_control: Callable[[dict[str, Any]], None] | None = None
        #: The text frames the library sent (control messages), decoded, in order.
        self.sent: list[Any] = []
        self._on_event = on_event
        self._on_closed = on_closed
        self._ended = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "started" if self.started else "new"
        return f"<ScriptedSocket {self.key} {state} messages={self.messages}>"

    # -- what the library calls -------------------------------------------------------------

    def start(self) -> None:
        self.started = True

    def close(self) -> None:
        """The library closes it: reported as ``on_closed(None)``, like a real socket."""
        self.closed = True
        self._end(None)

    def join(self, timeout: float | None = None) -> None:
        """Nothing to join: a scripted socket has no thread."""

    def send(self, text: str) -> None:
        """The library sends a control message: kept, decoded, in :attr:`sent`."""
        if self._ended:
            raise ConnectionDropped("not connected", code=1006, url=self.url, stream=self.key)
        self.sent.append(json.loads(text))

    # -- what the test does, as the server or the network ---------------------------------

    def connected(self) -> None:
        """The handshake succeeded: a :class:`~rxbinance.events.Connected` event."""
        self._on_event(Connected(self.key, time.time(), url=self.url))

    def deliver(self, message: Any) -> None:
        """One data message from the server (a decoded JSON value)."""
        self.messages += 1
        if self.meter is not None:
            self.meter(1, message)
        self.on_message(message)

    def reply(self, message: dict[str, Any]) -> None:
        """A control reply from the server (``{"result": null, "id": 1}``, or an error)."""
        if self.on_control is not None:
            self.on_control(message)

    def announce_shutdown(self) -> None:
        """Binance's ``serverShutdown`` notice: a :class:`~rxbinance.events.ShutdownAnnounced`
        event (the connection stays up until :meth:`fail` or :meth:`close`)."""
        self._on_event(ShutdownAnnounced(self.key, time.time()))

    def fail(self, failure: RxBinanceError) -> None:
        """The connection ends with ``failure`` (a drop, a refusal, ``serverShutdown``...);
        nothing happens if it already ended."""
        if self._end_once():
            self._on_event(Disconnected(self.key, time.time(), reason=str(failure)))
            self._on_closed(failure)

    def _end(self, failure: RxBinanceError | None) -> None:
        if self._end_once():
            self._on_closed(failure)

    def _end_once(self) -> bool:
        with self._lock:
            ended, self._ended = self._ended, True
        return not ended

    @property
    def ended(self) -> bool:
        """Closed by the library, or failed by the test."""
        return self._ended


class ScriptedTransport:
    """A :class:`~rxbinance.transport.SocketFactory` of :class:`ScriptedSocket`.

    ``sockets`` lists every socket opened, in order; ``on_open`` (optional) is called with each
    new socket before the library starts it, to script it up front.
    """

    def __init__(self, on_open: Callable[[ScriptedSocket], None] | None = None) -> None:
        self.sockets: list[ScriptedSocket] = []
        self._on_open = on_open
        self._lock = threading.Lock()

    def __call__(
        self,
        url: str,
        *,
        key: str,
        on_message: Callable[[Any], None],
        on_event: Callable[[ConnectionEvent], None],
        on_closed: Callable[[RxBinanceError | None], None],
    ) -> ScriptedSocket:
        sock = ScriptedSocket(
            url, key=key, on_message=on_message, on_event=on_event, on_closed=on_closed
        )
        with self._lock:
            self.sockets.append(sock)
        if self._on_open is not None:
            self._on_open(sock)
        return sock

    def of(self, key: str) -> list[ScriptedSocket]:
        """The sockets opened for stream key ``key``, in order."""
        with self._lock:
            return [s for s in self.sockets if s.key == key]

    def open(self) -> list[ScriptedSocket]:
        """The sockets started and not closed or failed."""
        with self._lock:
            return [s for s in self.sockets if s.started and not s.ended]
