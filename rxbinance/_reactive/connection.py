"""The supervisor of one stream key's sockets: a :class:`~rxbinance._reactive.hub.Source`.

:class:`SharedConnection` opens a socket through the transport seam (a
:class:`~rxbinance.transport.SocketFactory`), hands its messages straight to the hub entry's
subscribers on the socket's reader thread, and when the socket fails asks
:func:`~rxbinance._reactive.reconnect.classify` what that means: reconnect at once, reconnect
after the :class:`~rxbinance._reactive.reconnect.ReconnectPolicy` delay, or end. When the
retries are spent every subscriber receives the give-up message and completes; a fatal failure
(Binance refused the key, a 4xx handshake, a bug of ours) ends them with ``on_error``.

The hot path is ``socket reader -> HubEntry.on_next -> Delivery -> subscriber``: no Subject, no
per-message bookkeeping here (a connection "delivered data" is read off the socket's own message
counter when it fails, not tracked per message).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from reactivex import abc

from rxbinance._reactive.hub import Sink
from rxbinance._reactive.reconnect import (
    HTTP_REFUSALS,
    ReconnectPolicy,
    Retry,
    classify,
    give_up_message,
)
from rxbinance.errors import ConnectionFailure, HandshakeError, InternalError, RxBinanceError
from rxbinance.events import ConnectionEvent, GaveUp, Reconnecting, Rejected
from rxbinance.transport import SocketFactory, SocketLike

__all__ = ["SharedConnection"]

log = logging.getLogger("rxbinance.streams")


class SharedConnection:
    """Supervises the sockets of one stream key (a hub source; see the module docstring).

    Thread model: sockets call back on their reader thread; the reconnect delay runs on
    ``timer_scheduler``; :meth:`stop` may be called from any thread, including a reader thread
    (a subscriber disposing inside its own callback). ``track`` is told of every socket opened,
    so that ``BinanceStreams.close()`` can join their threads. ``wrap`` puts a sink of its own
    between the sockets and the entry (see :mod:`rxbinance._reactive.repair`).
    """

    def __init__(
        self,
        key: str,
        url: str,
        *,
        open_socket: SocketFactory,
        policy: ReconnectPolicy,
        timer_scheduler: abc.SchedulerBase,
        emit_event: Callable[[ConnectionEvent], None],
        track: Callable[[SocketLike], None] = lambda _: None,
        wrap: Callable[[Sink[Any]], Sink[Any]] | None = None,
    ) -> None:
        self.key = key
        self.url = url
        self._open_socket = open_socket
        self._policy = policy
        self._timers = timer_scheduler
        self._emit_event = emit_event
        self._track = track
        self._wrap = wrap
        #: What messages are handed to: the hub entry, or what ``wrap`` put in front of it
        #: (a RepairingSink keeping a sequenced stream whole).
        self.sink: Sink[Any] | None = None
        self._lock = threading.Lock()
        self._sink: Sink[Any] | None = None
        self._socket: SocketLike | None = None
        self._timer: abc.DisposableBase | None = None
        self._stopped = False
        self._failures = 0  # consecutive failed attempts since data last flowed
        self._shutdowns = 0  # consecutive "reconnect now" ends on connections that carried no data
        self.connects = 0  # sockets opened, for statistics
        self.messages_before = 0  # data messages of the sockets before the current one

    @property
    def messages(self) -> int:
        """Data messages delivered since the stream opened, over every socket it had."""
        sock = self._socket
        return self.messages_before + (sock.messages if sock is not None else 0)

    def start(self, sink: Sink[Any]) -> None:
        wrapped = self._wrap(sink) if self._wrap is not None else sink
        with self._lock:
            self._sink = self.sink = wrapped
        self._open()

    def stop(self) -> None:
        """Close the current socket and cancel a pending reconnect; never blocks on I/O."""
        with self._lock:
            self._stopped = True
            sock, self._socket = self._socket, None
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.dispose()
        if sock is not None:
            sock.close()

    def _open(self, _scheduler: Any = None, _state: Any = None) -> None:
        with self._lock:
            if self._stopped or self._sink is None:
                return
            self._timer = None
            sink = self._sink
            # The lambda runs on the reader thread, after start(): `sock` is bound by then.
            sock = self._open_socket(
                self.url,
                key=self.key,
                on_message=sink.on_next,
                on_event=self._emit_event,
                on_closed=lambda failure: self._closed(sock, failure),
            )
            self._socket = sock
            self.connects += 1
            self._track(sock)
            # Started under the lock: a stop() now either came before (and we returned above)
            # or comes after the start and closes a started socket. Starting only spawns the
            # reader thread; it never blocks on I/O.
            sock.start()

    def _closed(self, sock: SocketLike, failure: RxBinanceError | None) -> None:
        with self._lock:
            if self._stopped or self._socket is not sock:
                return  # we closed it on purpose
            self._socket = None
            self.messages_before += sock.messages
            if failure is None:  # cannot happen unless the transport misbehaves
                failure = ConnectionFailure("socket closed without a reason", url=self.url)
            if sock.messages:
                # Data flowed on this connection: the failure streaks start again.
                self._failures = 0
                self._shutdowns = 0
            action = classify(failure)
            attempt, delay = 0, 0.0
            if action is Retry.NOW:
                # Binance is restarting the server or ended the connection on purpose: reconnect
                # at once, not counted as a failure. Only if it repeats on connections that never
                # carried data do we back off, and at the end give up, so a misbehaving server
                # cannot make us spin for ever.
                self._shutdowns += 1
                attempt = self._shutdowns - 1  # the first one is free
                give_up = attempt > self._policy.max_retries
                if give_up:
                    attempt -= 1  # the retries made, as GaveUp reports them
                else:
                    delay = 0.0 if attempt == 0 else self._policy.delay(attempt)
            elif action is Retry.BACKOFF and self._failures < self._policy.max_retries:
                give_up = False
                self._failures += 1
                attempt = self._failures
                delay = self._policy.delay(attempt)
            else:
                give_up = True
                attempt = self._failures
            if give_up:
                self._stopped = True
                sink = self._sink
            else:
                self._timer = self._timers.schedule_relative(delay, self._open)
        if not give_up:
            self._emit_event(Reconnecting(self.key, time.time(), attempt=attempt, delay=delay))
            return
        assert sink is not None
        if action is Retry.FATAL:
            error = _fatal(failure, self.url)
            self._emit_event(Rejected(self.key, time.time(), reason=str(error)))
            sink.end(error)
        else:
            self._emit_event(GaveUp(self.key, time.time(), attempts=attempt, reason=str(failure)))
            sink.end(last=give_up_message())


def _fatal(failure: RxBinanceError, url: str) -> Exception:
    """The error a fatal failure ends the stream with: a handshake refusal says what its HTTP
    status means."""
    if isinstance(failure, HandshakeError):
        meaning = HTTP_REFUSALS.get(failure.status, "refused")
        said = f": {failure.reason}" if failure.reason else ""
        error = HandshakeError(
            f"{url}: the server refused the connection with HTTP {failure.status} "
            f"({meaning}){said}; not retried",
            status=failure.status,
            reason=failure.reason,
            url=url,
            stream=failure.stream,
        )
        error.__cause__ = failure
        return error
    if isinstance(failure, InternalError):
        log.error("%s: %s", url, failure)
    return failure
