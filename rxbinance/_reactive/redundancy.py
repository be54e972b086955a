"""Redundant connections: one stream key on several connections at once, merged, so that losing
any one of them costs nothing and needs no REST.

A :class:`RedundantConnection` is a hub :class:`~rxbinance._reactive.hub.Source` made of
``copies`` ordinary :class:`~rxbinance._reactive.connection.SharedConnection` supervisors (each
heals, rolls over and gives up on its own), started ``stagger`` seconds apart so that they do
not share one fate, and one :class:`_Merge` in front of the stream's entry: each message is
delivered once, by whichever copy has it first, and never one older than the last delivered
(:func:`~rxbinance.protocol.sequence.is_newer`: by trade id, update id or event time). The stream
ends only when every copy has ended.

Threads: each copy's reader thread offers its messages to the merge; the merge hands them over
one at a time, in the order they were decided (the same tried-never-waited lock as the hub's
entries), so subscribers never see two calls at once and no lock is held that another thread
could wait for.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reactivex import abc

from rxbinance._reactive.connection import SharedConnection
from rxbinance._reactive.hub import Sink
from rxbinance._reactive.meter import MeterReading, combine
from rxbinance._reactive.repair import RepairingSink
from rxbinance.protocol.sequence import is_newer

__all__ = ["RedundancyStatistics", "RedundantConnection"]


@dataclass(frozen=True, slots=True)
class RedundancyStatistics:
    """``first[i]``: messages copy ``i`` delivered first; ``repeats[i]``: its messages dropped
    because another copy had delivered them (or newer ones) already."""

    first: tuple[int, ...]
    repeats: tuple[int, ...]


class _Merge:
    """Where the copies' messages meet (see the module docstring)."""

    def __init__(self, target: Sink[Any], copies: int) -> None:
        self.target = target
        self._queue: collections.deque[tuple[int, Any]] = collections.deque()
        self._busy = threading.Lock()  # tried, never waited: the thread inside delivers
        self._last: Any = None
        self._first = [0] * copies
        self._repeats = [0] * copies
        self._ended = [False] * copies

    def offer(self, copy: int, message: Any) -> None:
        queue = self._queue
        queue.append((copy, message))
        while queue:
            if not self._busy.acquire(False):
                return  # the thread inside takes ours too, in order
            try:
                while queue:
                    copy, message = queue.popleft()
                    if self._last is None or is_newer(message, self._last):
                        self._last = message
                        self._first[copy] += 1
                        self.target.on_next(message)
                    else:
                        self._repeats[copy] += 1
            finally:
                self._busy.release()

    def ended(self, copy: int) -> bool:
        """Copy ``copy`` ended; True once every copy has."""
        self._ended[copy] = True
        return all(self._ended)

    def statistics(self) -> RedundancyStatistics:
        return RedundancyStatistics(tuple(self._first), tuple(self._repeats))


class _CopySink:
    """What one copy's supervisor writes to: the merge, and its end."""

    def __init__(self, merge: _Merge, copy: int) -> None:
        self._merge = merge
        self._copy = copy
        self.key = merge.target.key

    def on_next(self, value: Any) -> None:
        self._merge.offer(self._copy, value)

    def post(self, value: Any, *, current: bool = False) -> None:
        self._merge.target.post(value, current=current)

    def forget_current(self) -> None:
        self._merge.target.forget_current()

    def flush(self) -> None:
        self._merge.target.flush()

    def end(self, error: Exception | None = None, *, last: Any = None) -> None:
        # The stream lives on while another copy does; the last one to end ends it.
        if self._merge.ended(self._copy):
            self._merge.target.end(error, last=last)

    @property
    def subscribers(self) -> int:
        return self._merge.target.subscribers

    @property
    def last(self) -> Any:
        return self._merge.target.last


class RedundantConnection:
    """``copies`` supervisors of one stream key, merged (a hub source; see the module
    docstring). ``make_copy()`` builds one unstarted supervisor; ``wrap`` (a RepairingSink)
    goes once in front of the entry, after the merge."""

    def __init__(
        self,
        key: str,
        make_copy: Callable[[], SharedConnection],
        *,
        copies: int,
        stagger: float,
        timer_scheduler: abc.SchedulerBase,
        wrap: Callable[[Sink[Any]], Sink[Any]] | None = None,
    ) -> None:
        self.key = key
        self.copies = [make_copy() for _ in range(copies)]
        self._stagger = stagger
        self._timers = timer_scheduler
        self._wrap = wrap
        self._lock = threading.Lock()
        self._stopped = False
        self._pending: list[abc.DisposableBase] = []
        self._merge: _Merge | None = None
        #: What the merged stream is handed to (the entry, or the wrapper in front of it).
        self.sink: Sink[Any] | None = None

    def start(self, sink: Sink[Any]) -> None:
        target = self._wrap(sink) if self._wrap is not None else sink
        merge = _Merge(target, len(self.copies))
        with self._lock:
            if self._stopped:
                return
            self.sink, self._merge = target, merge
            for index, copy in enumerate(self.copies[1:], start=1):
                self._pending.append(
                    self._timers.schedule_relative(
                        self._stagger * index,
                        lambda *_, c=copy, i=index: self._start_copy(c, i),
                    )
                )
        self._start_copy(self.copies[0], 0)

    def _start_copy(self, copy: SharedConnection, index: int) -> None:
        with self._lock:
            if self._stopped or self._merge is None:
                return
            merge = self._merge
        copy.start(_CopySink(merge, index))

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            pending, self._pending = self._pending, []
        for timer in pending:
            timer.dispose()
        for copy in self.copies:
            copy.stop()
        if isinstance(self.sink, RepairingSink):
            self.sink.cancel()  # its REST worker ends now, so close() can join it

    @property
    def connects(self) -> int:
        return sum(copy.connects for copy in self.copies)

    @property
    def rollovers(self) -> int:
        return sum(copy.rollovers for copy in self.copies)

    @property
    def messages(self) -> int:
        """Data messages received, over every copy (each message once per copy)."""
        return sum(copy.messages for copy in self.copies)

    def reading(self) -> MeterReading:
        """Rates, lag and age over the copies (see :func:`~rxbinance._reactive.meter.combine`)."""
        return combine(copy.meter.reading() for copy in self.copies)

    def statistics(self) -> RedundancyStatistics | None:
        merge = self._merge
        return None if merge is None else merge.statistics()
