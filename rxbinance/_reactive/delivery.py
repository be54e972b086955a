"""Handing values to one subscriber: never concurrently, never under a library lock, guarded.

Calls into user code are guarded and serialized by the hub's entries
(:class:`~rxbinance._reactive.hub.HubEntry`, one serializer per shared stream) and by the two
deliveries here:

- :class:`Delivery` (``BinanceStreams.events``, fed by many threads) calls the observer on the
  calling thread, but never while another thread is inside the same observer: if the observer
  is busy, the value is queued and the thread that is inside delivers it when its own call
  returns. So ``close()`` on the main thread cannot call ``on_completed`` while a reader is
  inside ``on_next`` of the same subscriber, and a subscriber that closes from inside its
  callback cannot deadlock: no lock is held while user code runs.
- :class:`ScheduledDelivery` calls the observer on a reactivex scheduler, one call at a time, in
  order (what ``observe_on`` does, with every call guarded).

Both obey the Rx grammar on behalf of the observer: after the first terminal notification
(``on_error`` or ``on_completed``) nothing else is delivered, and after :meth:`dispose` nothing at
all. A subscriber that raises is logged (the first traceback in full, later ones counted, so a
callback that fails on every message cannot flood the log) and stays subscribed.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
from typing import Any, Generic, Protocol, TypeVar

from reactivex import abc

__all__ = [
    "COMPLETED",
    "ERROR",
    "NEXT",
    "Delivery",
    "ScheduledDelivery",
    "SubscriberErrors",
    "call_observer",
]

log = logging.getLogger("rxbinance.streams")

_T = TypeVar("_T")

NEXT, ERROR, COMPLETED = 0, 1, 2  # which call into the observer: the kind of a queued entry


class _Observer(Protocol):
    def on_next(self, value: Any, /) -> None: ...
    def on_error(self, error: Exception, /) -> None: ...
    def on_completed(self) -> None: ...


def call_observer(observer: _Observer, kind: int, value: Any, errors: SubscriberErrors) -> None:
    """The call of ``kind`` into ``observer`` (``on_next(value)``, ``on_error(value)`` or
    ``on_completed()``), guarded: what it raises is reported to ``errors``, not passed on."""
    try:
        if kind == NEXT:
            observer.on_next(value)
        elif kind == ERROR:
            observer.on_error(value)
        else:
            observer.on_completed()
    except Exception:
        errors.report(kind)


class SubscriberErrors:
    """Logs what one subscriber raises: the first traceback in full, then a one-line count at
    every power of ten (10, 100, 1000, ...) so the log shows it is still happening without a
    traceback per message. ``count`` is the total so far."""

    __slots__ = ("count", "where")

    def __init__(self, where: str) -> None:
        self.where = where
        self.count = 0

    def report(self, kind: int = NEXT) -> None:
        """Log the exception being handled (call from an ``except`` block); ``kind`` says which
        call raised: on_next (the default), on_error or on_completed."""
        self.count += 1
        what = ("", " on error", " on completion")[kind]
        if self.count == 1:
            log.exception(
                "a subscriber of %s raised%s; it stays subscribed (repeats are counted, "
                "not logged)",
                self.where,
                what,
            )
        elif _is_power_of_ten(self.count):
            log.error(
                "a subscriber of %s has raised %d times (last%s): %s",
                self.where,
                self.count,
                what,
                _current_exception(),
            )


def _is_power_of_ten(n: int) -> bool:
    while n >= 10 and n % 10 == 0:
        n //= 10
    return n == 1


def _current_exception() -> str:
    exc = sys.exc_info()[1]
    return f"{type(exc).__name__}: {exc}" if exc is not None else "?"


class Delivery(abc.ObserverBase[_T], Generic[_T]):
    """Calls ``observer`` on the calling thread, one call at a time, each call guarded.

    The hot path (one producer, the observer idle) is a non-blocking lock acquire, the call, a
    release and an emptiness check of the queue. The lock marks "a thread is inside the
    observer"; it is only ever tried, never waited for, so holding it across the user's call
    cannot deadlock. A thread that finds it taken queues its value; the thread inside re-checks
    the queue after releasing the lock, so nothing queued is stranded (the value was queued
    before the failed acquire, which came before the release, which comes before the re-check).
    """

    __slots__ = ("_busy", "_ended", "_errors", "_observer", "_queue", "_silent", "disposed")

    def __init__(self, observer: abc.ObserverBase[_T], where: str) -> None:
        self._observer = observer
        self._busy = threading.Lock()
        self._queue: collections.deque[tuple[int, Any]] = collections.deque()
        self._ended = False  # a terminal notification was accepted: refuse everything after it
        self._silent = False  # disposed, or the terminal notification was delivered
        self._errors = SubscriberErrors(where)
        self.disposed = False

    def on_next(self, value: _T) -> None:
        if self._ended:
            return
        if self._queue or not self._busy.acquire(False):
            self._queue.append((NEXT, value))
            self._drain()
            return
        try:
            if not self._silent:
                self._observer.on_next(value)
        except Exception:
            self._errors.report(NEXT)
        finally:
            self._busy.release()
        if self._queue:
            self._drain()

    def on_error(self, error: Exception) -> None:
        self._end(ERROR, error)

    def on_completed(self) -> None:
        self._end(COMPLETED, None)

    def dispose(self) -> None:
        """Deliver nothing more (queued values included)."""
        self.disposed = True
        self._silent = True
        self._queue.clear()

    def _end(self, kind: int, value: Any) -> None:
        if self._ended:
            return
        self._ended = True
        self._queue.append((kind, value))
        self._drain()

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            if not self._busy.acquire(False):
                return  # the thread inside delivers what we queued
            try:
                while queue:
                    kind, value = queue.popleft()
                    if self._silent:
                        queue.clear()
                        break
                    if kind != NEXT:
                        self._silent = True
                    call_observer(self._observer, kind, value, self._errors)
            finally:
                self._busy.release()


class ScheduledDelivery(abc.ObserverBase[_T], Generic[_T]):
    """Delivers to ``observer`` on ``scheduler`` instead of the calling thread.

    Like ``observe_on`` (an unbounded FIFO drained by one scheduled action at a time, so order is
    kept even on a thread pool) but every call into user code is guarded: behind
    ``observe_on(EventLoopScheduler)`` a raising subscriber would kill the scheduler's thread and
    every other stream on it (reactivex-notes 13).
    """

    def __init__(
        self, observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase, where: str = "a stream"
    ) -> None:
        self._observer = observer
        self._scheduler = scheduler
        self._queue: collections.deque[tuple[int, Any]] = collections.deque()
        self._lock = threading.Lock()
        self._draining = False
        self._ended = False
        self._errors = SubscriberErrors(where)
        self.disposed = False

    def on_next(self, value: _T) -> None:
        self._enqueue(NEXT, value)

    def on_error(self, error: Exception) -> None:
        self._enqueue(ERROR, error)

    def on_completed(self) -> None:
        self._enqueue(COMPLETED, None)

    def dispose(self) -> None:
        with self._lock:
            self.disposed = True
            self._queue.clear()

    def _enqueue(self, kind: int, value: Any) -> None:
        with self._lock:
            if self._ended or self.disposed:
                return
            self._ended = kind != NEXT
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
            call_observer(self._observer, kind, value, self._errors)
