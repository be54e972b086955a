"""One socket per stream key, shared by every subscriber, healed when it breaks.

Why not ``ops.share()``: reactivex 6.1's ``publish``/``ref_count`` has no lock (a last dispose
racing a new subscribe leaves the newcomer without a socket), keeps a dead Subject after the
source terminates (later subscribers get a stale completion and a zombie socket), and puts retry
on the wrong side of the sharing (reactivex-notes 2-6). Instead:

- :class:`StreamRegistry` maps a key to a live :class:`SharedConnection` under one lock. The
  first subscriber creates and starts it, the last dispose removes it from the registry and
  closes it, and a connection that terminates (retries spent) evicts itself, so the next
  subscriber always gets a fresh connection, never a replayed end.
- :class:`SharedConnection` supervises the sockets of one key: when one fails it schedules the
  next per :class:`~rxbinance._reactive.reconnect.ReconnectPolicy`; when the retries are spent it
  sends every subscriber the give-up message and completes them. A failure that retrying cannot
  fix (Binance refused the user data subscription: bad API key or signature) ends the
  connection at once with ``on_error`` and a :class:`~rxbinance.events.Rejected` event.
- :class:`Fanout` hands each message to every subscriber on the socket's reader thread, each call
  guarded: a subscriber that raises is logged and keeps its subscription, the others never notice.

The hot path is ``socket reader -> Fanout.on_next -> subscriber``: no Subject, no per-message
bookkeeping (a connection "delivered data" is read off the socket's own message counter when it
fails, not tracked per message).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from rxbinance._reactive.reconnect import ReconnectPolicy, give_up_message
from rxbinance.errors import ConnectionFailure, RxBinanceError, ServerShutdown
from rxbinance.events import ConnectionEvent, GaveUp, Reconnecting, Rejected

__all__ = [
    "Fanout",
    "ScheduledDelivery",
    "SharedConnection",
    "SocketFactory",
    "SocketLike",
    "StreamRegistry",
]

log = logging.getLogger("rxbinance.streams")


class SocketLike(Protocol):
    """What the reactive layer needs of a transport socket (see rxbinance.transport)."""

    @property
    def messages(self) -> int:
        """Data messages delivered so far (a connection that delivered any resets the retry
        count)."""

    def start(self) -> None: ...
    def close(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...


class SocketFactory(Protocol):
    """Builds an unstarted socket for ``url`` that reports through the three callbacks."""

    def __call__(
        self,
        url: str,
        *,
        key: str,
        on_message: Callable[[Any], None],
        on_event: Callable[[ConnectionEvent], None],
        on_closed: Callable[[RxBinanceError | None], None],
    ) -> SocketLike: ...


class Fanout:
    """The subscribers of one connection, delivered to in order, each call guarded.

    The observer tuple is replaced, never mutated, so delivery iterates a snapshot without a lock
    while subscribers come and go on other threads.
    """

    __slots__ = ("_lock", "key", "observers")

    def __init__(self, key: str) -> None:
        self.key = key
        self.observers: tuple[abc.ObserverBase[Any], ...] = ()
        self._lock = threading.Lock()

    def add(self, observer: abc.ObserverBase[Any]) -> None:
        with self._lock:
            self.observers = (*self.observers, observer)

    def remove(self, observer: abc.ObserverBase[Any]) -> int:
        """Remove one subscription of ``observer``; return how many subscribers remain."""
        with self._lock:
            observers = list(self.observers)
            if observer in observers:
                observers.remove(observer)
            self.observers = tuple(observers)
            return len(observers)

    def on_next(self, value: Any) -> None:
        for observer in self.observers:
            try:
                observer.on_next(value)
            except Exception:
                log.exception("a subscriber of %s raised; it stays subscribed", self.key)

    def on_completed(self) -> None:
        for observer in self.observers:
            try:
                observer.on_completed()
            except Exception:
                log.exception("a subscriber of %s raised on completion", self.key)

    def on_error(self, error: Exception) -> None:
        for observer in self.observers:
            try:
                observer.on_error(error)
            except Exception:
                log.exception("a subscriber of %s raised on error", self.key)


class ScheduledDelivery(abc.ObserverBase[Any]):
    """Delivers to ``observer`` on ``scheduler`` instead of the reader thread.

    Like ``observe_on`` (an unbounded FIFO drained by one scheduled action at a time, so order is
    kept even on a thread pool) but every call into user code is guarded: behind
    ``observe_on(EventLoopScheduler)`` a raising subscriber would kill the scheduler's thread and
    every other stream on it (reactivex-notes 13).
    """

    def __init__(self, observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase) -> None:
        self._observer = observer
        self._scheduler = scheduler
        self._queue: collections.deque[tuple[str, Any]] = collections.deque()
        self._lock = threading.Lock()
        self._draining = False
        self.disposed = False

    def on_next(self, value: Any) -> None:
        self._enqueue("N", value)

    def on_error(self, error: Exception) -> None:
        self._enqueue("E", error)

    def on_completed(self) -> None:
        self._enqueue("C", None)

    def _enqueue(self, kind: str, value: Any) -> None:
        with self._lock:
            self._queue.append((kind, value))
            if self._draining:
                return
            self._draining = True
        self._scheduler.schedule(self._drain)

    def _drain(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        while True:
            with self._lock:
                if self.disposed:
                    self._queue.clear()
                if not self._queue:
                    self._draining = False
                    return
                kind, value = self._queue.popleft()
            try:
                if kind == "N":
                    self._observer.on_next(value)
                elif kind == "E":
                    self._observer.on_error(value)
                else:
                    self._observer.on_completed()
            except Exception:
                log.exception("a subscriber raised on its scheduler; it stays subscribed")


class SharedConnection:
    """Supervises the sockets of one stream key and fans their messages out.

    Thread model: sockets call back on their reader thread; the reconnect delay runs on
    ``timer_scheduler``; :meth:`stop` may be called from any thread, including a reader thread
    (a subscriber disposing inside its own callback).
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
        on_terminated: Callable[[SharedConnection], None],
    ) -> None:
        self.key = key
        self.url = url
        self.fanout = Fanout(key)
        self._open_socket = open_socket
        self._policy = policy
        self._timers = timer_scheduler
        self._emit_event = emit_event
        self._on_terminated = on_terminated
        self._lock = threading.Lock()
        self._socket: SocketLike | None = None
        self._timer: abc.DisposableBase | None = None
        self._stopped = False
        self._failures = 0  # consecutive failed attempts since data last flowed
        self._shutdowns = 0  # consecutive serverShutdowns on connections that carried no data
        self.connects = 0  # sockets opened, for statistics
        self.sockets: list[SocketLike] = []  # every socket started, so close() can join them

    def start(self) -> None:
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
            if self._stopped:
                return
            self._timer = None
            # The lambda runs on the reader thread, after start(): `sock` is bound by then.
            sock = self._open_socket(
                self.url,
                key=self.key,
                on_message=self.fanout.on_next,
                on_event=self._emit_event,
                on_closed=lambda failure: self._closed(sock, failure),
            )
            self._socket = sock
            self.connects += 1
            self.sockets = [s for s in self.sockets if _alive(s)] + [sock]
        sock.start()

    def _closed(self, sock: SocketLike, failure: RxBinanceError | None) -> None:
        with self._lock:
            if self._stopped or self._socket is not sock:
                return  # we closed it on purpose
            self._socket = None
            if failure is None:  # cannot happen unless the transport misbehaves
                failure = ConnectionFailure("socket closed without a reason", url=self.url)
            if sock.messages:
                # Data flowed on this connection: the failure streak starts again.
                self._failures = 0
                self._shutdowns = 0
            give_up = False
            if isinstance(failure, ServerShutdown) or getattr(failure, "reconnect_now", False):
                # Binance is restarting the server (or ended a user data subscription, whose
                # failure says reconnect_now): reconnect at once, not counted as a failure.
                # Only if shutdowns repeat on connections that never carried data do we back
                # off, so a misbehaving server cannot make us spin.
                self._shutdowns += 1
                attempt = 0
                delay = 0.0 if self._shutdowns == 1 else self._policy.delay(self._shutdowns - 1)
            elif not ReconnectPolicy.is_retryable(failure) or (
                self._failures >= self._policy.max_retries
            ):
                give_up = True
                attempt, delay = self._failures, 0.0
                self._stopped = True
            else:
                self._failures += 1
                attempt = self._failures
                delay = self._policy.delay(attempt)
            if not give_up:
                self._timer = self._timers.schedule_relative(delay, self._open)
        if give_up and not isinstance(failure, ConnectionFailure):
            # Binance refused us (API key, signature, timestamp): retrying cannot help.
            self._emit_event(Rejected(self.key, time.time(), reason=str(failure)))
            self._on_terminated(self)
            self.fanout.on_error(failure)
        elif give_up:
            self._emit_event(GaveUp(self.key, time.time(), attempts=attempt, reason=str(failure)))
            self._on_terminated(self)
            self.fanout.on_next(give_up_message())
            self.fanout.on_completed()
        else:
            self._emit_event(Reconnecting(self.key, time.time(), attempt=attempt, delay=delay))


def _alive(sock: SocketLike) -> bool:
    thread = getattr(sock, "thread", None)
    return thread is None or bool(thread.is_alive())


class StreamRegistry:
    """Keyed, ref-counted registry of :class:`SharedConnection`, with one lock.

    ``observable(key, url)`` returns a cold-looking handle onto the hot connection of ``key``:
    subscribing joins it (creating and starting it for the first subscriber), disposing leaves it
    (stopping it when the last subscriber leaves). Opening and closing sockets happen outside the
    lock, and neither blocks: the transport does its I/O on its own thread.
    """

    def __init__(
        self,
        *,
        make_connection: Callable[[str, str], SharedConnection],
        scheduler: abc.SchedulerBase | None = None,
    ) -> None:
        self._make_connection = make_connection
        self._scheduler = scheduler
        self._lock = threading.Lock()
        self._connections: dict[str, SharedConnection] = {}
        self._closed = False
        self.retired: list[SharedConnection] = []  # stopped connections whose threads may live

    def observable(self, key: str, url: str) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], _: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            target: abc.ObserverBase[Any] = observer
            if self._scheduler is not None:
                target = ScheduledDelivery(observer, self._scheduler)
            connection = self._join(key, url, target)
            if connection is None:
                observer.on_error(RuntimeError("BinanceStreams is closed"))
                return Disposable()

            def leave() -> None:
                if isinstance(target, ScheduledDelivery):
                    target.disposed = True
                self._leave(connection, target)

            return Disposable(leave)

        return reactivex.create(subscribe)

    def _join(self, key: str, url: str, observer: abc.ObserverBase[Any]) -> SharedConnection | None:
        with self._lock:
            if self._closed:
                return None
            connection = self._connections.get(key)
            created = connection is None
            if connection is None:
                connection = self._make_connection(key, url)
                self._connections[key] = connection
            # Added under the lock, before start(): no message can reach an empty fan-out.
            connection.fanout.add(observer)
        if created:
            connection.start()
        return connection

    def _leave(self, connection: SharedConnection, observer: abc.ObserverBase[Any]) -> None:
        with self._lock:
            remaining = connection.fanout.remove(observer)
            if remaining or self._connections.get(connection.key) is not connection:
                return
            del self._connections[connection.key]
            self._remember(connection)
        connection.stop()

    def terminated(self, connection: SharedConnection) -> None:
        """A connection gave up: forget it so the next subscriber starts afresh."""
        with self._lock:
            if self._connections.get(connection.key) is connection:
                del self._connections[connection.key]
            self._remember(connection)

    def _remember(self, connection: SharedConnection) -> None:
        self.retired = [c for c in self.retired if any(_alive(s) for s in c.sockets)]
        self.retired.append(connection)

    def live(self) -> dict[str, SharedConnection]:
        with self._lock:
            return dict(self._connections)

    def close(self) -> list[SharedConnection]:
        """Stop every connection and complete its subscribers; return all connections known,
        live or retired, so the caller can join their threads."""
        with self._lock:
            self._closed = True
            live = list(self._connections.values())
            self._connections.clear()
            everything = live + self.retired
            self.retired = []
        for connection in live:
            connection.stop()
            connection.fanout.on_completed()
        return everything
