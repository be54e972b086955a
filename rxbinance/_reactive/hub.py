"""The hub: every stream, book and user socket of a BinanceStreams is one keyed, ref-counted entry.

Why not ``ops.share()``: reactivex 6.1's ``publish``/``ref_count`` has no lock (a last dispose
racing a new subscribe leaves the newcomer without a socket), keeps a dead Subject after the
source terminates (later subscribers get a stale completion and a zombie socket), and puts retry
on the wrong side of the sharing (reactivex-notes 2-6). The hub is the one implementation of
sharing that raw streams, order books, klines with history and user data all use:

- **Keyed and ref-counted.** ``hub.observable(key, make_source)`` is a handle onto the entry of
  ``key``: the first subscriber creates the entry and starts its :class:`Source`, later ones
  join it, the last dispose evicts it and stops the source. A subscriber arriving after that
  starts a fresh one.
- **One lock, never held in user code.** The hub lock guards the map and each entry's subscriber
  list; sources are started and stopped, and subscribers called, outside it. Calls into the
  subscribers of one entry never overlap (see :class:`HubEntry`), so a subscriber may dispose,
  subscribe or close everything from inside its own callback.
- **Terminal events reach everyone.** A source that ends (:meth:`Sink.end`) is evicted under the
  hub lock at the same moment its terminal notification is queued, so every subscriber present
  at that moment receives it, and any later one gets a fresh entry instead of a replayed end.
  A source whose ``start`` raises is evicted the same way: its subscribers get the error, and
  the next subscriber tries again and gets the same clear error, never silence.
- **Closed means closed.** After :meth:`Hub.close` every entry's source is stopped and its
  subscribers completed, and a new subscriber gets ``on_error(StreamsClosed)`` at once.

Lifecycle of an entry::

    created --start--> live --last dispose / close()--> stopped (source.stop())
                         \\--sink.end(...)-------------> ended   (subscribers get the end)

Ordering for multi-threaded sources (an order book emits from its socket's reader and from its
snapshot worker): :meth:`Sink.post` queues a value under the source's own lock, so the queue
order is the order of the source's state changes, and :meth:`Sink.flush`, called after that lock
is released, delivers the queue in order. ``post(value, current=True)`` also makes the value the
entry's current state: a subscriber joining later receives it first, and nothing posted before
it joined.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Hashable, Iterator
from operator import length_hint
from typing import Any, Generic, Protocol, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.observer.autodetachobserver import AutoDetachObserver

from rxbinance._reactive.delivery import (
    COMPLETED,
    ERROR,
    NEXT,
    Delivery,
    ScheduledDelivery,
    SubscriberErrors,
    call_observer,
)
from rxbinance.errors import StreamsClosed

__all__ = ["Broadcast", "Hub", "HubEntry", "Sink", "Source", "Subscriber"]

_T = TypeVar("_T")
_T_contra = TypeVar("_T_contra", contravariant=True)


class Sink(Protocol[_T_contra]):
    """What a :class:`Source` sees of its entry (see the module docstring for the semantics)."""

    key: Hashable

    def on_next(self, value: _T_contra) -> None:
        """Deliver ``value`` to every subscriber now, on this thread (single-producer sources:
        a socket's reader)."""

    def post(self, value: _T_contra, *, current: bool = False) -> None:
        """Queue ``value`` for the next :meth:`flush`; safe under the source's own locks."""

    def forget_current(self) -> None:
        """The current state is gone (an order book resyncing): joiners get nothing first."""

    def flush(self) -> None:
        """Deliver what :meth:`post` queued, in order. Call without holding any lock."""

    def end(self, error: Exception | None = None, *, last: Any = None) -> None:
        """Evict the entry, then deliver ``last`` (if not None) and ``on_error(error)`` (or
        ``on_completed()`` when ``error`` is None) to every subscriber present."""

    @property
    def subscribers(self) -> int:
        """How many subscribers the entry has."""

    @property
    def last(self) -> Any:
        """The last value given to :meth:`on_next` (None before the first): what a rollover
        compares the new connection's first messages with."""


class Source(Protocol):
    """What the hub shares under a key: a socket supervisor, an order book, a user stream."""

    def start(self, sink: Sink[Any]) -> None:
        """Begin producing into ``sink``. Called once, outside every hub lock, by the first
        subscriber's thread. May raise: the entry is then evicted and its subscribers get the
        error. May be called after :meth:`stop` (the last subscriber left at once): it must
        then do nothing."""

    def stop(self) -> None:
        """The last subscriber left, or the hub closed: stop producing. Idempotent, never
        blocks on I/O, callable from any thread (a subscriber's callback included)."""


class Subscriber:
    """One subscription of an entry: how to call it, and its bookkeeping (hub lock held)."""

    __slots__ = ("disposed", "errors", "joined", "on_completed", "on_error", "on_next", "target")

    def __init__(self, target: abc.ObserverBase[Any], where: str, joined: int) -> None:
        self.target = target  # the observer, or the ScheduledDelivery in front of it
        self.on_next = _direct_on_next(target)
        self.on_error = target.on_error
        self.on_completed = target.on_completed
        self.errors = SubscriberErrors(where)
        self.joined = joined  # sequence number of the first posted item it receives
        self.disposed = False


def _direct_on_next(observer: abc.ObserverBase[Any]) -> Callable[[Any], None]:
    """The function the fan-out calls for ``observer``'s values.

    reactivex wraps every subscriber in an ``AutoDetachObserver`` whose ``on_next`` only checks
    ``is_stopped`` before calling the subscriber's own function: a check the hub makes already
    (nothing after a terminal event; a disposed subscriber leaves the fan-out under the hub lock
    before its dispose returns). Calling that function directly saves a Python call per
    subscriber per message (benchmarks/throughput.py, ten subscribers)."""
    if type(observer) is AutoDetachObserver:
        inner: Callable[[Any], None] = observer._on_next
        return inner
    return observer.on_next


class HubEntry(Generic[_T]):
    """One key's source and subscribers; the :class:`Sink` its source writes to.

    Every call into this entry's subscribers happens while holding ``_busy``, a lock that is
    only ever *tried*: a thread that finds it taken queues what it has, and the thread inside
    delivers the queue when its own calls return (re-checking after the release, so nothing is
    stranded). So the reader's fan-out, a terminal event from ``close()`` on another thread and
    a late joiner's greeting never overlap, and a subscriber calling back into the library from
    its callback finds no lock to wait for. The hot path (one producer, nobody else inside) is
    one non-blocking acquire and release per message, however many subscribers.
    """

    __slots__ = (
        "_busy",
        "_current",
        "_done",
        "_fast",
        "_hub",
        "_queue",
        "_seq",
        "ended",
        "key",
        "last",
        "source",
        "subs",
    )

    def __init__(self, hub: Hub, key: Hashable, source: Source) -> None:
        self._hub = hub
        self.key = key
        self.source = source
        # Replaced, never mutated (under the hub lock), so on_next iterates it without a lock.
        self.subs: tuple[Subscriber, ...] = ()
        # The subscribers' on_next functions and their error reporters, index for index.
        self._fast: tuple[tuple[Callable[[Any], None], ...], tuple[SubscriberErrors, ...]] = (
            (),
            (),
        )
        # (sequence number, kind, value, only this subscriber or None for all)
        self._queue: collections.deque[tuple[int, int, Any, Subscriber | None]] = (
            collections.deque()
        )
        self._seq = 0
        self._current: Any = None
        self._busy = threading.Lock()  # "a thread is inside our subscribers": tried, not waited
        self._done = False  # the terminal notification was delivered: deliver nothing more
        self.ended = False  # evicted: the terminal notification is queued or delivered
        self.last: Any = None  # the last value given to on_next

    # -- the Sink a source writes to ------------------------------------------------------

    def on_next(self, value: _T) -> None:
        self.last = value
        if self._queue or not self._busy.acquire(False):
            # Someone is inside (a flush, a terminal event) or has queued before us: queue.
            with self._hub.lock:
                self._queue.append((self._seq, NEXT, value, None))
                self._seq += 1
            self.flush()
            return
        try:
            if not self._done:
                fns, errors = self._fast  # one read: the two tuples always match
                if len(fns) == 1:
                    try:
                        fns[0](value)
                    except Exception:
                        errors[0].report()
                else:
                    # A plain loop over the functions, the try outside it: about a third less
                    # per subscriber than a try per call. When one raises, `calls` has stopped
                    # just past it: _resume reports it and calls the rest.
                    calls = iter(fns)
                    try:
                        for on_next in calls:
                            on_next(value)
                    except Exception:
                        _resume(calls, fns, errors, value)
        finally:
            self._busy.release()
        if self._queue:
            self.flush()

    def post(self, value: _T, *, current: bool = False) -> None:
        with self._hub.lock:
            if self.ended:
                return
            self._queue.append((self._seq, NEXT, value, None))
            self._seq += 1
            if current:
                self._current = value

    def forget_current(self) -> None:
        with self._hub.lock:
            self._current = None

    def flush(self) -> None:
        queue = self._queue
        while queue:
            if not self._busy.acquire(False):
                return  # the thread inside delivers what we queued, in order
            try:
                while queue:
                    seq, kind, value, only = queue.popleft()
                    if self._done:
                        continue  # after the end: nothing (the queue drains to empty)
                    for sub in self.subs if only is None else (only,):
                        if sub.joined > seq or sub.disposed:
                            continue  # joined after this was posted: its greeting is newer
                        call_observer(sub, kind, value, sub.errors)
                    if kind != NEXT:
                        self._done = True
            finally:
                self._busy.release()

    def end(self, error: Exception | None = None, *, last: Any = None) -> None:
        with self._hub.lock:
            if self.ended:
                return
            self._hub.evict(self)
            if last is not None:
                self._queue.append((self._seq, NEXT, last, None))
                self._seq += 1
            if error is None:
                self._queue.append((self._seq, COMPLETED, None, None))
            else:
                self._queue.append((self._seq, ERROR, error, None))
            self._seq += 1
        self.flush()

    @property
    def subscribers(self) -> int:
        return len(self.subs)

    # -- the hub's side (under the hub lock) -------------------------------------------------

    def add(self, target: abc.ObserverBase[Any], where: str) -> Subscriber:
        """A subscriber joins (hub lock held). If the entry has a current state, it is queued
        for this subscriber alone, before anything posted later: the joiner's flush delivers
        it."""
        sub = Subscriber(target, where, self._seq)
        self.subs = (*self.subs, sub)
        self._fast = _fan_out(self.subs)
        if self._current is not None:
            self._queue.append((self._seq, NEXT, self._current, sub))
        return sub

    def remove(self, sub: Subscriber) -> int:
        """A subscriber leaves (hub lock held); how many remain."""
        sub.disposed = True
        self.subs = tuple(s for s in self.subs if s is not sub)
        self._fast = _fan_out(self.subs)
        return len(self.subs)


def _resume(
    calls: Iterator[Callable[[Any], None]],
    fns: tuple[Callable[[Any], None], ...],
    errors: tuple[SubscriberErrors, ...],
    value: Any,
) -> None:
    """The rest of a fan-out after a subscriber raised (called in its ``except`` block):
    ``calls`` stopped just past it, so its index is what is not left of ``fns``."""
    errors[len(fns) - length_hint(calls) - 1].report()
    while True:
        try:
            for on_next in calls:
                on_next(value)
            return
        except Exception:
            errors[len(fns) - length_hint(calls) - 1].report()


def _fan_out(
    subs: tuple[Subscriber, ...],
) -> tuple[tuple[Callable[[Any], None], ...], tuple[SubscriberErrors, ...]]:
    """What :meth:`HubEntry.on_next` iterates: the functions and, index for index, their
    error reporters."""
    return tuple(s.on_next for s in subs), tuple(s.errors for s in subs)


class Hub:
    """Keyed, ref-counted entries under one lock (see the module docstring).

    ``scheduler``: deliver to subscribers on this reactivex scheduler
    (:class:`~rxbinance._reactive.delivery.ScheduledDelivery`) instead of the producing thread.
    """

    def __init__(self, *, scheduler: abc.SchedulerBase | None = None) -> None:
        self.scheduler = scheduler
        self.lock = threading.Lock()
        self._entries: dict[Hashable, HubEntry[Any]] = {}
        self._closed = False

    def observable(
        self, key: Hashable, make_source: Callable[[], Source], *, name: str | None = None
    ) -> Observable[Any]:
        """The shared Observable of ``key``; ``make_source`` builds its source for the first
        subscriber (it may raise: that subscriber gets the error and nothing is registered).
        ``name`` says whose subscriber raised, in the log."""
        where = name if name is not None else str(key)

        def subscribe(
            observer: abc.ObserverBase[Any], _: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            target: abc.ObserverBase[Any] = observer
            if self.scheduler is not None:
                target = ScheduledDelivery(observer, self.scheduler, where)
            try:
                entry, sub, created = self._join(key, make_source, target, where)
            except Exception as exc:
                target.on_error(exc)
                return Disposable()
            if created:
                try:
                    entry.source.start(entry)
                except Exception as exc:
                    entry.end(exc)
            entry.flush()  # the greeting, if the entry had a current state
            return Disposable(lambda: self._leave(entry, sub))

        return reactivex.create(subscribe)

    def _join(
        self,
        key: Hashable,
        make_source: Callable[[], Source],
        target: abc.ObserverBase[Any],
        where: str,
    ) -> tuple[HubEntry[Any], Subscriber, bool]:
        with self.lock:
            if self._closed:
                raise StreamsClosed(f"cannot subscribe to {key!r}: BinanceStreams is closed")
            entry = self._entries.get(key)
            created = entry is None
            if entry is None:
                entry = self._entries[key] = HubEntry(self, key, make_source())
            # Added under the lock, before start(): no value can reach an empty entry, and an
            # end() cannot fall between the join and the add.
            return entry, entry.add(target, where), created

    def _leave(self, entry: HubEntry[Any], sub: Subscriber) -> None:
        if isinstance(sub.target, ScheduledDelivery):
            sub.target.dispose()  # drop what is queued on the scheduler
        with self.lock:
            remaining = entry.remove(sub)
            if remaining or entry.ended:
                return
            self.evict(entry)
        entry.source.stop()

    def evict(self, entry: HubEntry[Any]) -> None:
        """Forget ``entry`` (hub lock held): the next subscriber of its key starts afresh."""
        entry.ended = True
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]

    def entries(self) -> list[HubEntry[Any]]:
        """The live entries, oldest first."""
        with self.lock:
            return list(self._entries.values())

    def get(self, key: Hashable) -> HubEntry[Any] | None:
        with self.lock:
            return self._entries.get(key)

    def close(self) -> None:
        """Stop every source and complete every subscriber; later subscribers get
        ``on_error(StreamsClosed)``. Idempotent; callable from a subscriber's callback."""
        with self.lock:
            self._closed = True
            live = list(self._entries.values())
        for entry in live:
            entry.source.stop()
            entry.end()


class Broadcast(Generic[_T]):
    """A hot, never-ref-counted Observable fed from any thread: ``BinanceStreams.events``.

    Like a Subject, but calls into one subscriber never overlap (a Subject's do, when two
    reader threads emit at once: reactivex-notes 12) and no lock is held while a subscriber
    runs, so a subscriber may call ``close()`` from inside its callback. After
    :meth:`on_completed`, a new subscriber is completed at once.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._deliveries: tuple[Delivery[_T], ...] = ()
        self._completed = False

    def observable(self) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], _: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            delivery = Delivery(observer, self._name)
            with self._lock:
                completed = self._completed
                if not completed:
                    self._deliveries = (*self._deliveries, delivery)
            if completed:
                delivery.on_completed()
                return Disposable()

            def leave() -> None:
                delivery.dispose()
                with self._lock:
                    self._deliveries = tuple(d for d in self._deliveries if d is not delivery)

            return Disposable(leave)

        return reactivex.create(subscribe)

    def on_next(self, value: _T) -> None:
        for delivery in self._deliveries:
            delivery.on_next(value)

    def on_completed(self) -> None:
        with self._lock:
            if self._completed:
                return
            self._completed = True
            deliveries, self._deliveries = self._deliveries, ()
        for delivery in deliveries:
            delivery.on_completed()
