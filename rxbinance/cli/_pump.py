"""The main-thread loop every command runs, and the status it reports on stderr.

Why everything goes through one queue to the main thread: sockets deliver on their reader
threads, but printing, ``--limit``, ``--duration``, the message rate, a closed pipe and Ctrl-C
are all simplest (and only safe) in one place. Reader threads only stamp each message with its
receive time and enqueue it; they never block on the terminal, so a slow terminal never delays
Binance's pings. The queue is unbounded (a consumer that cannot keep up shows a growing
``queued`` count in the status line instead of losing messages).
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from reactivex import Observable, abc

from rxbinance.cli._format import short_error
from rxbinance.events import (
    BookResyncing,
    BookSnapshotFailed,
    BookSynced,
    Connected,
    ConnectionEvent,
    Disconnected,
    Gap,
    GaveUp,
    MalformedFrame,
    Reconnecting,
    Rejected,
)
from rxbinance.protocol.frames import is_give_up

__all__ = ["CommandError", "Pump", "Status"]


class CommandError(Exception):
    """A failure the user can act on: printed as one line, exit status ``status``."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class Status:
    """Turns connection events into short lines for a person (stderr, or the book screen).

    ``say`` prints one status line; with ``quiet`` nothing is said (failures still end the
    command). Remembers why a stream gave up, so the final error line can say it.

    Order book snapshots: each failure is one short line; after ``max_retries + 1`` failures in
    a row (no book in sync in between) :meth:`event` raises :class:`CommandError` naming
    ``rest_url``, since the pipeline itself retries for ever.
    """

    def __init__(
        self,
        say: Callable[[str], None],
        *,
        quiet: bool,
        max_retries: int,
        rest_url: str | None = None,
    ) -> None:
        self.say = say
        self.quiet = quiet
        self.max_retries = max_retries
        self.rest_url = rest_url
        self.gave_up: GaveUp | None = None
        self.rejected: Rejected | None = None
        self.snapshot_failures = 0

    def info(self, text: str) -> None:
        if not self.quiet:
            self.say(text)

    def event(self, event: ConnectionEvent) -> None:
        match event:
            case Connected(stream=stream, url=url):
                self.info(f"connected to {url}" if url else f"connected: {stream}")
            case Disconnected(stream=stream, reason=reason, code=code):
                closed = f" (close code {code})" if code is not None else ""
                self.info(f"disconnected from {stream}: {reason}{closed}")
            case Reconnecting(stream=stream, attempt=0, delay=delay):
                self.info(f"server shutdown announced: reconnecting {stream} now")
            case Reconnecting(stream=stream, attempt=attempt, delay=delay):
                self.info(
                    f"reconnecting {stream} in {delay:.1f} s "
                    f"(attempt {attempt} of {self.max_retries})"
                )
            case GaveUp():
                self.gave_up = event
            case Rejected():
                self.rejected = event
            case MalformedFrame(stream=stream, error=error):
                self.info(f"dropped a malformed frame on {stream}: {error}")
            case BookResyncing(symbol=symbol, reason=reason):
                self.info(f"order book {symbol} syncing ({reason})")
            case BookSynced(symbol=symbol, update_id=update_id, snapshots=snapshots):
                self.snapshot_failures = 0
                plural = "s" * (snapshots != 1)
                self.info(
                    f"order book {symbol} in sync at update id {update_id} "
                    f"({snapshots} snapshot{plural})"
                )
            case BookSnapshotFailed(symbol=symbol, error=error, retry_in=retry_in):
                self.snapshot_failures += 1
                attempts = self.max_retries + 1
                if self.snapshot_failures >= attempts:
                    source = f" from {self.rest_url}" if self.rest_url else ""
                    raise CommandError(
                        f"order book {symbol}: no depth snapshot{source} after {attempts} "
                        f"attempts (last: {short_error(error)}; is the REST endpoint reachable "
                        "from here? --sim runs the built-in market)"
                    )
                self.info(
                    f"order book {symbol}: snapshot {self.snapshot_failures} of {attempts} "
                    f"failed ({short_error(error)}); retry in {retry_in:.1f} s"
                )
            case _:
                pass  # Connecting: the Connected or Disconnected that follows says it all

    def give_up_error(self) -> CommandError:
        if self.gave_up is not None:
            attempts = self.gave_up.attempts + 1  # the first attempt and its retries
            return CommandError(
                f"{self.gave_up.reason} (gave up after {attempts} attempts; "
                "is the exchange reachable from here? try --sim for the built-in market)"
            )
        return CommandError("the stream ended: reconnect retries spent")


@dataclass(slots=True)
class _Next:
    value: Any
    received: float


@dataclass(slots=True)
class _Error:
    error: Exception


@dataclass(slots=True)
class _Done:
    pass


@dataclass(slots=True)
class _Signal:
    signum: int


class Pump:
    """Feeds a command's handler on the main thread.

    Subscribe sources with :meth:`subscribe` and connection events with :meth:`watch_events`,
    then :meth:`run` calls ``handle(value, received)`` for each value in order until ``limit``
    values were handled, ``duration`` seconds passed, or a source completed. Every
    ``stats_interval`` seconds the status gets a rate line from ``rate_line(count, rate)``.
    """

    def __init__(
        self,
        status: Status,
        *,
        limit: int | None = None,
        duration: float | None = None,
        stats_interval: float | None = None,
        rate_line: Callable[[int, float], str] | None = None,
        keep_gaps: bool = False,
    ) -> None:
        self.status = status
        # A Gap (messages lost for good) is reported on stderr by the library's own warning;
        # only a command that keeps everything (record) hands it to its handler.
        self.keep_gaps = keep_gaps
        self.limit = limit
        self.duration = duration
        self.stats_interval = stats_interval or None
        self.rate_line = rate_line or (lambda count, rate: f"{count} messages, {rate:.1f}/s")
        self.count = 0
        self._queue: queue.SimpleQueue[_Next | _Error | _Done | _Signal | ConnectionEvent] = (
            queue.SimpleQueue()
        )
        self._subscriptions: list[abc.DisposableBase] = []
        self._pending: int | None = None  # a signal caught, not yet delivered
        self._previous: dict[int, Any] = {}

    def subscribe(self, source: Observable[Any]) -> None:
        put = self._queue.put

        def on_next(value: Any) -> None:
            put(_Next(value, time.time()))

        def on_error(error: Exception) -> None:
            put(_Error(error))

        def on_completed() -> None:
            put(_Done())

        self._subscriptions.append(source.subscribe(on_next, on_error, on_completed))

    def watch_events(self, events: Observable[ConnectionEvent]) -> None:
        self._subscriptions.append(events.subscribe(self._queue.put))

    def dispose(self) -> None:
        subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            subscription.dispose()

    def more_coming(self) -> bool:
        """True when another value is already waiting and the limit is not reached: a handler
        that only shows the latest state may skip drawing this one."""
        if self.limit is not None and self.count >= self.limit:
            return False
        return not self._queue.empty()

    def run(self, handle: Callable[[Any, float], None], flush: Callable[[], None]) -> None:
        """Handle values until the limit, the duration or the end of the source.

        ``flush`` is called whenever the queue runs dry, so output reaches a pipe promptly
        without a flush per message. Raises :class:`CommandError` when a stream gives up or a
        source fails (its exception chained).

        Ctrl-C (SIGINT) and SIGTERM take effect before the next value, never in the middle of
        ``handle``: a recording or the terminal is never left half-written, and the values
        still queued are dropped, not printed first (a slow terminal can be hours behind a
        fast stream). Output already handled is flushed, then the signal goes to the handler
        that was installed before (KeyboardInterrupt for SIGINT). A second signal while the
        first waits acts at once (for a handler stuck on a blocked stdout).
        """
        if self.limit is not None and self.limit <= 0:
            return
        previous = self._catch_signals()
        try:
            self._loop(handle, flush)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _catch_signals(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return previous  # only the main thread may install handlers
        for signum in (signal.SIGINT, signal.SIGTERM):
            current = signal.getsignal(signum)
            if current in (signal.SIG_IGN, None):
                continue  # ignored by whoever started us (a background job): keep it so
            previous[signum] = signal.signal(signum, self._on_signal)
        self._previous = previous
        return previous

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Runs on the main thread between two bytecodes, possibly inside _loop's queue.get()
        # or inside handle(). The flag is what _loop acts on, before its next value, however
        # long the queue; the _Signal only wakes a get() that waits for data (SimpleQueue.put
        # is reentrant, made for exactly this and __del__ methods).
        if self._pending is not None:
            self._deliver(signum)  # the second one: do not wait any longer
        self._pending = signum
        self._queue.put(_Signal(signum))

    def _deliver(self, signum: int) -> None:
        """Hand ``signum`` to the handler installed before ours."""
        handler = self._previous.get(signum, signal.SIG_DFL)
        signal.signal(signum, handler)
        if callable(handler):
            handler(signum, None)  # default_int_handler raises KeyboardInterrupt
        else:  # SIG_DFL: die of it, as the signal meant
            os.kill(os.getpid(), signum)

    def _loop(self, handle: Callable[[Any, float], None], flush: Callable[[], None]) -> None:
        started = time.monotonic()
        deadline = None if self.duration is None else started + self.duration
        next_stats = None if self.stats_interval is None else started + self.stats_interval
        stats_count = 0
        stats_time = started
        get = self._queue.get
        while True:
            if self._pending is not None:  # before anything else queued: see run()
                flush()
                self._deliver(self._pending)
                return
            now = time.monotonic()
            wake = min((t for t in (deadline, next_stats) if t is not None), default=None)
            try:
                if self._queue.empty():
                    flush()
                    item = get(timeout=None if wake is None else max(0.0, wake - now))
                else:
                    item = get()
            except queue.Empty:
                item = None
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return
            if next_stats is not None and now >= next_stats:
                assert self.stats_interval is not None
                rate = (self.count - stats_count) / max(now - stats_time, 1e-9)
                line = self.rate_line(self.count, rate)
                backlog = self._queue.qsize()
                if backlog > 1000:
                    line += f" ({backlog} queued: the output is slower than the stream)"
                self.status.info(line)
                stats_count, stats_time = self.count, now
                next_stats = now + self.stats_interval
            match item:
                case None:
                    continue
                case _Next(value=value, received=received):
                    if is_give_up(value):
                        raise self.status.give_up_error()
                    if type(value) is Gap and not self.keep_gaps:
                        continue  # reported on stderr already (the repair's warning line)
                    handle(value, received)
                    self.count += 1
                    if self.limit is not None and self.count >= self.limit:
                        return
                case _Error(error=error):
                    rejected = self.status.rejected
                    if rejected is not None:
                        raise CommandError(rejected.reason) from error
                    raise error
                case _Done():
                    return
                case _Signal():
                    continue  # a wake-up: the flag, checked first, acts on it
                case ConnectionEvent():
                    self.status.event(item)
