"""The supervisor of one stream key's sockets: a :class:`~rxbinance._reactive.hub.Source`.

:class:`SharedConnection` opens a socket through the transport seam (a
:class:`~rxbinance.transport.SocketFactory`), hands its messages straight to the hub entry's
subscribers on the socket's reader thread, and when the socket fails asks
:func:`~rxbinance._reactive.reconnect.classify` what that means: reconnect at once, reconnect
after the :class:`~rxbinance._reactive.reconnect.ReconnectPolicy` delay, or end. When the
retries are spent every subscriber receives the give-up message and completes; a fatal failure
(Binance refused the key, a 4xx handshake, a bug of ours) ends them with ``on_error``.

The hot path is ``socket reader -> HubEntry.on_next -> subscriber``: no Subject, no
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

from rxbinance._reactive.attempts import ConnectionAttempts
from rxbinance._reactive.hub import Sink
from rxbinance._reactive.meter import Meter, MeterReading
from rxbinance._reactive.reconnect import (
    HTTP_REFUSALS,
    ReconnectPolicy,
    Retry,
    classify,
    give_up_message,
)
from rxbinance._reactive.repair import RepairingSink
from rxbinance.errors import ConnectionFailure, HandshakeError, InternalError, RxBinanceError
from rxbinance.events import (
    ConnectionEvent,
    GaveUp,
    Reconnecting,
    Rejected,
    RolledOver,
    ShutdownAnnounced,
    Silent,
)
from rxbinance.protocol.sequence import is_newer
from rxbinance.transport import Metered, Redirectable, SocketFactory, SocketLike

__all__ = ["SharedConnection"]

log = logging.getLogger("rxbinance.streams")


class SharedConnection:
    """Supervises the sockets of one stream key (a hub source; see the module docstring).

    Thread model: sockets call back on their reader thread; the reconnect delay runs on
    ``timer_scheduler``; :meth:`stop` may be called from any thread, including a reader thread
    (a subscriber disposing inside its own callback). ``track`` is told of every socket opened,
    so that ``BinanceStreams.close()`` can join their threads. ``wrap`` puts a sink of its own
    between the sockets and the entry (see :mod:`rxbinance._reactive.repair`).

    **Rollover** (``rollover_after`` seconds, and on Binance's ``serverShutdown`` notice): a
    replacement socket is opened while the old one still delivers; when the new one delivers
    its first message, the old one is muted (after its message in flight, if any) and closed,
    and the new one's messages are dropped until one is newer than the old one's last
    (by trade id, update id or event time), so the overlap is neither lost nor repeated. Not
    a failure: no retry is counted. Needs sockets whose ``on_message`` can be redirected
    (:class:`~rxbinance.transport.Redirectable`); others are simply reconnected.
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
        rollover_after: float | None = None,
        attempts: ConnectionAttempts | None = None,
        metered: bool = True,
        make_before_break: bool = True,
    ) -> None:
        self.key = key
        self.url = url
        self._open_socket = open_socket
        self._policy = policy
        self._timers = timer_scheduler
        self._emit_event = emit_event
        self._track = track
        self._wrap = wrap
        # Binance's per-IP limit of connection attempts: every socket opened takes one first.
        self._attempts = attempts
        # Silence: checked every quarter of the timeout from the message counter (nothing on
        # the hot path), so it is reported between 1 and 1.25 timeouts after the last message.
        self._silence = silence_timeout
        self._silence_timer: abc.DisposableBase | None = None
        self._heard = -1  # the message count at the last check
        self._heard_at = 0.0  # when it last changed (scheduler time)
        self._silent = False  # reported for the current quiet spell
        # Make-before-break: a socket older than this (or one Binance announced a shutdown on)
        # is replaced by a new one that takes over once it delivers (see _Rollover).
        self._rollover_after = rollover_after
        # False: a serverShutdown notice replaces the socket at once instead (a pooled
        # connection, whose overlap could not be de-duplicated across its streams).
        self._make_before_break = make_before_break
        self._age_timer: abc.DisposableBase | None = None
        self._rolling: _Rollover | None = None
        self.rollovers = 0  # switches made, for statistics
        #: What messages are handed to: the hub entry, or what ``wrap`` put in front of it
        #: (a RepairingSink keeping a sequenced stream whole).
        self.sink: Sink[Any] | None = None
        self._lock = threading.Lock()
        self._socket: SocketLike | None = None
        self._timer: abc.DisposableBase | None = None
        self._stopped = False
        self._failures = 0  # consecutive failed attempts since data last flowed
        self._shutdowns = 0  # consecutive "reconnect now" ends on connections that carried no data
        self.connects = 0  # sockets opened, for statistics
        self.messages_before = 0  # data messages of the sockets before the current one
        #: Rates, lag and age of what the stream's sockets receive (every socket it has);
        #: not fed when ``metered`` is False (a pooled connection meters each stream itself).
        self.meter = Meter()
        self._metered = metered

    @property
    def messages(self) -> int:
        """Data messages delivered since the stream opened, over every socket it had."""
        sock = self._socket
        return self.messages_before + (sock.messages if sock is not None else 0)

    def reading(self) -> MeterReading:
        """Rates, lag and age of what the stream received (see :class:`Meter`)."""
        return self.meter.reading()

    def start(self, sink: Sink[Any]) -> None:
        wrapped = self._wrap(sink) if self._wrap is not None else sink
        with self._lock:
            self.sink = wrapped
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
            age, self._age_timer = self._age_timer, None
            rolling, self._rolling = self._rolling, None
        for pending in (timer, silence, age):
            if pending is not None:
                pending.dispose()
        if rolling is not None and rolling.new is not None and rolling.new is not sock:
            rolling.new.close()
        if isinstance(self.sink, RepairingSink):
            self.sink.cancel()  # its REST worker ends now, so close() can join it
        if sock is not None:
            sock.close()

    def _open(self, _scheduler: Any = None, _state: Any = None) -> None:
        with self._lock:
            if self._stopped or self.sink is None:
                return
            self._timer = None
            wait = self._attempts.reserve() if self._attempts is not None else 0.0
            if wait:
                # The process's connection attempts are spent for now: try when one frees up.
                self._timer = self._timers.schedule_relative(wait, self._open)
                return
            sink = self.sink
            # The lambda runs on the reader thread, after start(): `sock` is bound by then.
            sock = self._new_socket(sink.on_next)
            self._socket = sock
            # Started under the lock: a stop() now either came before (and we returned above)
            # or comes after the start and closes a started socket. Starting only spawns the
            # reader thread; it never blocks on I/O.
            sock.start()
            self._age(sock)

    def _new_socket(self, on_message: Callable[[Any], None]) -> SocketLike:
        """A socket for the stream (lock held), counted and tracked, not started."""
        # The lambdas run on the reader thread, after start(): `sock` is bound by then.
        sock = self._open_socket(
            self.url,
            key=self.key,
            on_message=on_message,
            on_event=lambda event: self._on_event(sock, event),
            on_closed=lambda failure: self._closed(sock, failure),
        )
        self.connects += 1
        if self._metered and isinstance(sock, Metered):
            sock.meter = self.meter.record
        self._track(sock)
        return sock

    def _age(self, sock: SocketLike) -> None:
        """Schedule the rollover of ``sock`` at its age limit (lock held)."""
        if self._age_timer is not None:
            self._age_timer.dispose()
            self._age_timer = None
        if self._rollover_after is not None and isinstance(sock, Redirectable):
            self._age_timer = self._timers.schedule_relative(
                self._rollover_after, lambda *_: self._roll(sock, "age")
            )

    def _on_event(self, sock: SocketLike, event: ConnectionEvent) -> None:
        # The event goes out before its consequence: subscribers see ShutdownAnnounced before
        # the replacement's Connecting/Connected (which come from another thread).
        self._emit_event(event)
        if isinstance(event, ShutdownAnnounced):
            if self._make_before_break:
                self._roll(sock, "serverShutdown")
            else:
                self._replace_now(sock)

    def _replace_now(self, sock: SocketLike) -> None:
        """Close ``sock`` and connect again at once: not a failure, no retry counted."""
        with self._lock:
            if self._stopped or self._socket is not sock:
                return
            self._socket = None  # so its end is not taken for a failure (see _closed)
            self.messages_before += sock.messages
            self._timer = self._timers.schedule_relative(0.0, self._open)
        sock.close()

    def _roll(self, old: SocketLike, reason: str) -> None:
        """Open the replacement of ``old`` (make-before-break; see the class docstring)."""
        with self._lock:
            if (
                self._stopped
                or self._socket is not old
                or self._rolling is not None
                or self.sink is None
                or not isinstance(old, Redirectable)
            ):
                return
            wait = self._attempts.reserve() if self._attempts is not None else 0.0
            if wait:  # no connection attempt left for now: roll over when one frees up
                self._age_timer = self._timers.schedule_relative(
                    wait, lambda *_: self._roll(old, reason)
                )
                return
            self._age_timer = None
            rolling = self._rolling = _Rollover(
                self.key,
                old,
                self.sink.on_next,
                reason,
                switch=self._switch,
                emit_event=self._emit_event,
                last=self.sink.last,
            )
            old.on_message = rolling.from_old
            rolling.new = self._new_socket(rolling.from_new)
            rolling.new.start()

    def _switch(self, rolling: _Rollover) -> SocketLike | None:
        """The replacement delivered: it becomes the stream's socket; return the old one to
        close (None if the rollover was abandoned meanwhile)."""
        with self._lock:
            if self._stopped or self._rolling is not rolling or rolling.new is None:
                return None
            self._rolling = None
            old = rolling.old
            if self._socket is old:  # (else it ended first and the new one took over then)
                self._socket = rolling.new
                self.messages_before += old.messages
            self.rollovers += 1
            self._age(rolling.new)
        return old

    def _closed(self, sock: SocketLike, failure: RxBinanceError | None) -> None:
        with self._lock:
            rolling = self._rolling
            if rolling is not None and not self._stopped:
                if sock is rolling.new and self._socket is rolling.old:
                    # The replacement failed before it delivered: keep the old socket (its
                    # messages go straight on again) and try again later.
                    self._rolling = None
                    if isinstance(rolling.old, Redirectable) and self.sink is not None:
                        rolling.old.on_message = self.sink.on_next
                    self._age_timer = self._timers.schedule_relative(
                        self._policy.delay(1), lambda *_: self._roll(rolling.old, "age")
                    )
                    return
                if sock is rolling.old and self._socket is sock and rolling.new is not None:
                    # The old socket ended first (Binance closed it after serverShutdown): the
                    # replacement, already connecting, takes over; no reconnect, no failure.
                    self._socket = rolling.new
                    self.messages_before += sock.messages
                    return
                if sock is rolling.new and self._socket is sock:
                    # The replacement, which had taken over, failed too: an ordinary failure
                    # of the stream's socket (below), which reconnects.
                    self._rolling = None
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
                sink = self.sink
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


class _Rollover:
    """One make-before-break switch of a stream from socket ``old`` to ``new``.

    Until the switch, ``old`` delivers through :meth:`from_old` (recording its last message)
    and nothing of ``new`` is delivered. ``new``'s first message mutes ``old``, waits for the
    message ``old`` may be delivering at that moment (so the two never deliver at once: the
    stream's subscribers see one ordered sequence), closes ``old``, and from then on ``new``'s
    messages are dropped until one is newer than ``old``'s last; after that ``new`` delivers
    straight to the stream again (its ``on_message`` is reset: the hot path is untouched).
    """

    def __init__(
        self,
        key: str,
        old: SocketLike,
        deliver: Callable[[Any], None],
        reason: str,
        *,
        switch: Callable[[_Rollover], SocketLike | None],
        emit_event: Callable[[ConnectionEvent], None],
        last: Any = None,
    ) -> None:
        self.key = key
        self.old = old
        self.new: Any = None  # a Redirectable SocketLike, set right after construction
        self.reason = reason
        self._deliver = deliver
        self._switch = switch
        self._emit_event = emit_event
        self._cond = threading.Condition()
        self._muted = False
        self._inside = 0  # deliveries of `old` under way
        self._last: Any = last  # the last message delivered (by `old`)
        self._dropped = 0

    def from_old(self, message: Any) -> None:
        with self._cond:
            if self._muted:
                return
            self._inside += 1
            self._last = message
        try:
            self._deliver(message)
        finally:
            with self._cond:
                self._inside -= 1
                self._cond.notify_all()

    def from_new(self, message: Any) -> None:
        if not self._muted:
            with self._cond:
                self._muted = True
                self._cond.wait_for(lambda: self._inside == 0)
            old = self._switch(self)
            if old is not None:
                old.close()
        if self._last is not None and not is_newer(message, self._last):
            self._dropped += 1  # the old socket delivered it already
            return
        self.new.on_message = self._deliver  # caught up: straight through again
        self._emit_event(
            RolledOver(self.key, time.time(), reason=self.reason, dropped=self._dropped)
        )
        self._deliver(message)
