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
from rxbinance._reactive.repair import RepairingSink
from rxbinance.errors import ConnectionFailure, HandshakeError, InternalError, RxBinanceError
from rxbinance.events import ConnectionEvent, GaveUp, Reconnecting, Rejected, Silent
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
        silence_timeout: float | None = None,
    ) -> None:
        self.key = key
        self.url = url
        self._open_socket = open_socket
        self._policy = policy
        self._timers = timer_scheduler
        self._emit_event = emit_event
        self._track = track
        self._wrap = wrap
        # Silence: checked every quarter of the timeout from the message counter (nothing on
        # the hot path), so it is reported between 1 and 1.25 timeouts after the last message.
        self._silence = silence_timeout
        self._silence_timer: abc.DisposableBase | None = None
        self._heard = -1  # the message count at the last check
        self._heard_at = 0.0  # when it last changed (scheduler time)
        self._silent = False  # reported for the current quiet spell
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
            if self._silence is not None:
                self._heard_at = _seconds(self._timers.now)
                self._silence_timer = self._timers.schedule_relative(
                    self._silence / 4, self._listen
                )
        self._open()

    def _listen(self, _scheduler: Any = None, _state: Any = None) -> None:
        """Timer: report a Silent event when no data came for ``silence_timeout`` while a
        socket was up."""
        assert self._silence is not None
        now = _seconds(self._timers.now)
        report = False
        with self._lock:
            if self._stopped:
                return
            heard = self.messages
            if heard != self._heard or self._socket is None:
                self._heard, self._heard_at, self._silent = heard, now, False
            elif now - self._heard_at >= self._silence and not self._silent:
                self._silent = report = True
            self._silence_timer = self._timers.schedule_relative(self._silence / 4, self._listen)
        if report:
            self._emit_event(Silent(self.key, time.time(), seconds=now - self._heard_at))

    def stop(self) -> None:
        """Close the current socket and cancel a pending reconnect; never blocks on I/O."""
        with self._lock:
            self._stopped = True
            sock, self._socket = self._socket, None
            timer, self._timer = self._timer, None
            silence, self._silence_timer = self._silence_timer, None
        for pending in (timer, silence):
            if pending is not None:
                pending.dispose()
        if isinstance(self.sink, RepairingSink):
            self.sink.cancel()  # its REST worker ends now, so close() can join it
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
                if self._silence_timer is not None:
                    self._silence_timer.dispose()
                    self._silence_timer = None
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


def _seconds(moment: Any) -> float:
    """A scheduler's ``now`` (a datetime) as seconds."""
    return float(moment.timestamp())
