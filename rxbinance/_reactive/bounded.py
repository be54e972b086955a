"""Bounded hand-over from a producer thread to a slower consumer: one queue, three policies.

A socket's reader must never wait for a subscriber (Binance drops a connection it cannot write
to), and ``observe_on`` moves the work to another thread but queues without limit. A
:class:`BoundedBuffer` is the one place where items wait, at most ``maxsize`` of them, and where
what happens to the next one is decided::

    producer (socket reader)                 BoundedBuffer                    one consumer
      on_next(i4) ----------------->  [ i3  i2  i1 ]  (<= maxsize) --take()-->  i1, i2, ...
      on_error / on_completed ----->  queued after the items, never dropped, never counted

    full (maxsize=3) when i4 arrives:
      "error"        [ X  i3  i2  i1 ]  X = QueueOverflow(3) after the waiting items; i4 is
                                        refused, the source disposed, nothing more accepted
      "drop_oldest"  [ i4  i3  i2 ]     i1 is dropped: the latest ``maxsize`` items wait
      "latest"       [ i4 ]             i1-i3 are dropped: the consumer jumps to the present

Two consumers share it:

- :class:`BoundedDelivery` pushes (``rxbinance.operators.observe_on_bounded``): the first entry
  queued while the consumer is idle schedules a drain on a reactivex scheduler, which calls
  the observer entry after entry, each call guarded, in rounds of at most ``maxsize`` (a round
  schedules the next as its last act) until it finds the buffer empty. Only an idle consumer
  is woken, and it goes idle only inside :meth:`BoundedBuffer.take`, so two drains never
  overlap and calls into the observer never do.
- ``rxbinance.aio`` pulls: a coroutine takes entries and, finding none, awaits a wake-up posted
  to its loop with ``call_soon_threadsafe``.

Counters (delivered, dropped, the high-water mark, overflow spells) live under the buffer's
lock, which the producer holds only to append. An **overflow spell** starts at a drop and ends
when the consumer catches up (finds nothing waiting); its first drop is reported as an
:class:`~rxbinance.events.Overflow` event to ``on_overflow``. Every drop is also counted per
stream key in a :class:`DropCounters`, when one is given: the hook ``BinanceStreams`` reads for
its per-stream statistics.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SingleAssignmentDisposable

from rxbinance._reactive.delivery import COMPLETED, ERROR, NEXT, SubscriberErrors, call_observer
from rxbinance.errors import InvalidInputError, QueueOverflow
from rxbinance.events import Overflow

__all__ = [
    "OVERFLOW_POLICIES",
    "BoundedBuffer",
    "BoundedDelivery",
    "BoundedStatistics",
    "DropCounters",
    "ObserveOnBounded",
    "OverflowPolicy",
    "check_bound",
    "log_overflow",
]

log = logging.getLogger("rxbinance.operators")

_T = TypeVar("_T")

OverflowPolicy = Literal["error", "drop_oldest", "latest"]
"""What a full buffer does with the next item: see the module docstring."""

OVERFLOW_POLICIES: tuple[OverflowPolicy, ...] = ("error", "drop_oldest", "latest")


def check_bound(maxsize: object, overflow: object, *, unbounded: bool = False) -> None:
    """Raise InvalidInputError naming a bad ``maxsize`` (an int >= 1, or >= 0 with
    ``unbounded``, where 0 means no bound) or ``overflow`` (one of OVERFLOW_POLICIES)."""
    lowest = 0 if unbounded else 1
    if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < lowest:
        allowed = "an int >= 0 (0 is unbounded)" if unbounded else "an int >= 1"
        raise InvalidInputError(f"invalid maxsize {maxsize!r}: {allowed}")
    if overflow not in OVERFLOW_POLICIES:
        allowed = ", ".join(repr(policy) for policy in OVERFLOW_POLICIES)
        raise InvalidInputError(f"invalid overflow {overflow!r}: allowed are {allowed}")


@dataclass(frozen=True, slots=True)
class BoundedStatistics:
    """A snapshot of bounded delivery (``statistics()`` of ``observe_on_bounded`` and of
    ``rxbinance.aiter``).

    - ``maxsize``, ``overflow``: the bound (0: none, ``aiter`` only) and the policy;
    - ``queued``: items waiting now (a queued completion or error is not an item);
    - ``delivered``: items handed to the consumer;
    - ``dropped``: items the policy dropped; with ``"error"``, the one item that did not fit;
    - ``high_water``: the most items that ever waited at once (at most ``maxsize``);
    - ``overflows``: spells of falling behind: drops after the consumer had last caught up.

    Every item the source emitted before the end is delivered, dropped or queued.
    """

    maxsize: int
    overflow: str
    queued: int
    delivered: int
    dropped: int
    high_water: int
    overflows: int


class DropCounters:
    """Items dropped by bounded delivery, per stream key. Thread-safe; costs nothing until
    something is dropped.

    The hook for per-stream statistics without reaching into operators: the owner of the
    statistics (``BinanceStreams``) keeps one and reads :meth:`get` per key; whoever applies
    ``observe_on_bounded(..., stream=key, drops=counters)`` makes its drops count there.
    """

    __slots__ = ("_counts", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def add(self, stream: str, count: int = 1) -> None:
        """Count ``count`` more items of ``stream`` dropped."""
        with self._lock:
            self._counts[stream] = self._counts.get(stream, 0) + count

    def get(self, stream: str) -> int:
        """Items of ``stream`` dropped so far (0 for a key never seen)."""
        with self._lock:
            return self._counts.get(stream, 0)

    def snapshot(self) -> dict[str, int]:
        """Every key's count, as a new dict."""
        with self._lock:
            return dict(self._counts)

    def __repr__(self) -> str:
        return f"<DropCounters {self.snapshot()!r}>"


def log_overflow(event: Overflow) -> None:
    """The default ``on_overflow``: one WARNING per overflow spell."""
    log.warning(
        "%s: a consumer fell %d items behind (overflow=%r): %s; %d dropped so far",
        event.stream or "observe_on_bounded",
        event.maxsize,
        event.policy,
        "the subscription fails" if event.policy == "error" else "dropping items",
        event.dropped,
    )


class BoundedBuffer(abc.ObserverBase[Any]):
    """The queue between one source (subscribed with :meth:`attach`) and one consumer.

    Producer side (the source's thread; the Rx grammar makes its calls sequential): the observer
    methods. Consumer side (one caller at a time): :meth:`take`. ``wake()`` is called on the
    producer's thread, outside the lock, when an entry is queued while the consumer is idle; it
    must make the consumer call :meth:`take` again soon, without blocking (schedule a drain,
    post to a loop). ``on_overflow`` is called the same way, at the first drop of each spell.
    :meth:`close` may be called from any thread.
    """

    __slots__ = (
        "_behind",
        "_delivered",
        "_dropped",
        "_drops",
        "_ended",
        "_high_water",
        "_idle",
        "_lock",
        "_on_overflow",
        "_overflows",
        "_queue",
        "_upstream",
        "_wake",
        "closed",
        "maxsize",
        "overflow",
        "stream",
    )

    def __init__(
        self,
        maxsize: int,
        overflow: OverflowPolicy,
        wake: Callable[[], None],
        *,
        stream: str = "",
        on_overflow: Callable[[Overflow], None] | None = None,
        drops: DropCounters | None = None,
    ) -> None:
        self.maxsize = maxsize  # 0: no bound
        self.overflow = overflow
        self.stream = stream
        self._wake = wake
        self._on_overflow = on_overflow
        self._drops = drops
        self._lock = threading.Lock()
        self._queue: collections.deque[tuple[int, Any]] = collections.deque()
        self._upstream = SingleAssignmentDisposable()
        self._idle = True  # the consumer found nothing and waits for wake()
        self._behind = False  # in an overflow spell: dropped since the consumer last caught up
        self._ended = False  # a terminal entry is queued, or closed: accept nothing more
        self.closed = False
        self._delivered = self._dropped = self._high_water = self._overflows = 0

    def attach(self, source: Observable[Any], scheduler: abc.SchedulerBase | None = None) -> None:
        """Subscribe to ``source``. If the buffer closes first (or during the subscribe, e.g. a
        synchronous source overflowing with ``"error"``), the subscription is disposed at once."""
        self._upstream.disposable = source.subscribe(self, scheduler=scheduler)

    def on_next(self, value: Any) -> None:
        entry: tuple[int, Any] = (NEXT, value)
        dropped = 0
        spell: Overflow | None = None
        with self._lock:
            if self._ended:
                return
            queue = self._queue
            if 0 < self.maxsize <= len(queue):
                if self.overflow == "drop_oldest":
                    queue.popleft()
                    dropped = 1
                elif self.overflow == "latest":
                    dropped = len(queue)
                    queue.clear()
                else:  # "error": refuse the newcomer; the waiting items go first, then the error
                    dropped = 1
                    self._ended = True
                    entry = (ERROR, QueueOverflow(self.maxsize))
                self._dropped += dropped
                if not self._behind:
                    self._behind = True
                    self._overflows += 1
                    spell = Overflow(
                        self.stream, time.time(), self.maxsize, self.overflow, self._dropped
                    )
            queue.append(entry)
            if entry[0] == NEXT and len(queue) > self._high_water:
                self._high_water = len(queue)
            wake, self._idle = self._idle, False
        if dropped:
            self._dropped_outside_lock(dropped, spell, entry[0] == ERROR)
        if wake:
            self._wake()

    def _dropped_outside_lock(self, dropped: int, spell: Overflow | None, failed: bool) -> None:
        if self._drops is not None:
            self._drops.add(self.stream, dropped)
        if spell is not None and self._on_overflow is not None:
            try:
                self._on_overflow(spell)
            except Exception:  # user code on the producer's (reader's) thread: contain it
                log.exception("on_overflow of %s raised", self.stream or "a bounded delivery")
        if failed:
            self._upstream.dispose()

    def on_error(self, error: Exception) -> None:
        self._end(ERROR, error)

    def on_completed(self) -> None:
        self._end(COMPLETED, None)

    def _end(self, kind: int, value: Any) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
            self._queue.append((kind, value))  # beyond maxsize if need be: never dropped
            wake, self._idle = self._idle, False
        if wake:
            self._wake()

    def take(self) -> tuple[int, Any] | None:
        """The oldest entry, or None when there is none: the consumer is then idle, and
        ``wake()`` will be called when there is one (never after a terminal entry)."""
        with self._lock:
            if self._queue:
                entry = self._queue.popleft()
                if entry[0] == NEXT:
                    self._delivered += 1
                return entry
            self._idle = True
            self._behind = False  # caught up: the next drop starts a new spell
            return None

    def close(self) -> None:
        """Dispose the source's subscription and free the queue; accept nothing more.
        Idempotent, from any thread."""
        with self._lock:
            self._ended = True
            self.closed = True
            self._queue.clear()
        self._upstream.dispose()

    def statistics(self) -> BoundedStatistics:
        with self._lock:
            queued = len(self._queue)
            if queued and self._queue[-1][0] != NEXT:
                queued -= 1  # the terminal entry
            return BoundedStatistics(
                maxsize=self.maxsize,
                overflow=self.overflow,
                queued=queued,
                delivered=self._delivered,
                dropped=self._dropped,
                high_water=self._high_water,
                overflows=self._overflows,
            )


class BoundedDelivery:
    """Pushes what its :attr:`buffer` holds to ``observer`` on ``scheduler``.

    One drain at a time (see the module docstring), in rounds of at most ``maxsize`` entries,
    in order, every call into the observer guarded: a raising observer is logged by
    :class:`SubscriberErrors` and keeps receiving, and the scheduler's thread survives it
    (reactivex-notes 13).
    """

    __slots__ = ("_errors", "_observer", "_scheduler", "buffer")

    def __init__(
        self,
        observer: abc.ObserverBase[Any],
        scheduler: abc.SchedulerBase,
        maxsize: int,
        overflow: OverflowPolicy,
        *,
        stream: str = "",
        on_overflow: Callable[[Overflow], None] | None = None,
        drops: DropCounters | None = None,
    ) -> None:
        self._observer = observer
        self._scheduler = scheduler
        self._errors = SubscriberErrors(
            f"observe_on_bounded({stream!r})" if stream else "observe_on_bounded"
        )
        self.buffer = BoundedBuffer(
            maxsize,
            overflow,
            self._schedule,
            stream=stream,
            on_overflow=on_overflow,
            drops=drops,
        )

    def _schedule(self) -> None:
        try:
            self._scheduler.schedule(self._drain)
        except Exception:  # e.g. a disposed EventLoopScheduler: nothing can be delivered now
            log.exception("observe_on_bounded: the scheduler refused the delivery; closing")
            self.buffer.close()

    def _drain(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        # A round delivers at most maxsize entries, then yields the scheduler: a consumer that
        # never catches up must not keep a thread shared with other streams (an
        # EventLoopScheduler, an asyncio loop) to itself. The buffer stays "not idle" in
        # between, so producers schedule nothing: the next round is this one's last act.
        buffer = self.buffer
        take = buffer.take
        observer = self._observer
        for _ in range(buffer.maxsize):
            entry = take()
            if entry is None:
                return  # idle: the next entry queued schedules the next drain
            call_observer(observer, entry[0], entry[1], self._errors)
        self._schedule()


class ObserveOnBounded:
    """The operator :func:`rxbinance.operators.observe_on_bounded` returns (documented there).

    Apply it with ``pipe``; :meth:`statistics` covers every subscription made through it.
    """

    __slots__ = (
        "_drops",
        "_live",
        "_lock",
        "_on_overflow",
        "_retired",
        "_scheduler",
        "maxsize",
        "overflow",
        "stream",
    )

    def __init__(
        self,
        scheduler: abc.SchedulerBase,
        maxsize: int,
        overflow: OverflowPolicy,
        *,
        stream: str = "",
        on_overflow: Callable[[Overflow], None] | None = None,
        drops: DropCounters | None = None,
    ) -> None:
        if not isinstance(scheduler, abc.SchedulerBase):
            raise InvalidInputError(
                f"invalid scheduler {scheduler!r}: a reactivex scheduler (EventLoopScheduler, "
                "ThreadPoolScheduler, AsyncIOThreadSafeScheduler...)"
            )
        check_bound(maxsize, overflow)
        if not isinstance(stream, str):
            raise InvalidInputError(f"invalid stream {stream!r}: a stream key (str), or ''")
        self._scheduler = scheduler
        self.maxsize = maxsize
        self.overflow = overflow
        self.stream = stream
        self._on_overflow = log_overflow if on_overflow is None else on_overflow
        self._drops = drops
        self._lock = threading.Lock()
        self._live: set[BoundedBuffer] = set()
        # delivered, dropped, high_water, overflows of subscriptions that ended
        self._retired = BoundedStatistics(maxsize, overflow, 0, 0, 0, 0, 0)

    def __call__(self, source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            delivery = BoundedDelivery(
                observer,
                self._scheduler,
                self.maxsize,
                self.overflow,
                stream=self.stream,
                on_overflow=self._on_overflow,
                drops=self._drops,
            )
            buffer = delivery.buffer
            with self._lock:
                self._live.add(buffer)

            def dispose() -> None:
                buffer.close()
                self._retire(buffer)

            buffer.attach(source, scheduler)
            return Disposable(dispose)

        return Observable(subscribe)

    def _retire(self, buffer: BoundedBuffer) -> None:
        ended = buffer.statistics()
        with self._lock:
            if buffer not in self._live:
                return
            self._live.discard(buffer)
            self._retired = _sum(self._retired, ended, queued=False)

    def statistics(self) -> BoundedStatistics:
        """Totals over every subscription made through this operator, live or ended:
        ``queued`` counts the live ones' waiting items, ``high_water`` is the highest of any
        one subscription. A frozen snapshot; safe from any thread."""
        with self._lock:
            total = self._retired
            for buffer in self._live:
                total = _sum(total, buffer.statistics(), queued=True)
            return total

    def __repr__(self) -> str:
        stream = f" stream={self.stream!r}" if self.stream else ""
        return f"<observe_on_bounded maxsize={self.maxsize} overflow={self.overflow!r}{stream}>"


def _sum(a: BoundedStatistics, b: BoundedStatistics, *, queued: bool) -> BoundedStatistics:
    return BoundedStatistics(
        maxsize=a.maxsize,
        overflow=a.overflow,
        queued=a.queued + (b.queued if queued else 0),
        delivered=a.delivered + b.delivered,
        dropped=a.dropped + b.dropped,
        high_water=max(a.high_water, b.high_water),
        overflows=a.overflows + b.overflows,
    )
