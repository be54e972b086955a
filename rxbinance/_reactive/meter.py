"""What one stream's connections receive, measured on the reader thread: counts per second,
lag behind Binance's event time, the moment of the last message.

A :class:`Meter` belongs to a stream key (its
:class:`~rxbinance._reactive.connection.SharedConnection`) and outlives its sockets; each
socket calls :meth:`Meter.record` with the data messages of each read (not for messages
refilled from REST: their lag would be history, not delay): at a busy stream's rate one read
brings many messages, so the cost per message is next to nothing. A record is one clock read,
a few stores and comparisons; per-second bookkeeping happens once a second, and lag is sampled
(one message a read, at most :data:`LAG_SAMPLES_PER_SECOND` a second).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["LAG_SAMPLES_PER_SECOND", "Meter", "MeterReading", "combine"]

#: Lag samples kept per second: enough for a p99 over a minute (6,000 samples), bounded memory.
LAG_SAMPLES_PER_SECOND = 100
_WINDOW = 60  # seconds of history kept: rates and lag percentiles are over the last minute


@dataclass(frozen=True, slots=True)
class MeterReading:
    """A snapshot of a :class:`Meter` (see :class:`rxbinance.StreamStatistics`)."""

    rate_1s: float  # messages received in the last whole second
    rate_60s: float  # messages per second over the last minute (or since the stream opened)
    lag_p50_ms: float | None  # local receive time minus Binance's event time E, last minute
    lag_p99_ms: float | None
    last_message_age: float | None  # seconds since the last message; None before the first


class Meter:
    """Per-second counts and sampled lag of one stream's live messages.

    :meth:`record` runs on a socket's reader thread (two threads at once only while a
    rollover overlaps two sockets: the counts may then miss an increment, which statistics can
    afford); :meth:`reading` runs on any thread.
    """

    __slots__ = ("_clock", "_lock", "_samples_left", "_slot", "_slot_count", "_slot_end",
                 "_slot_lags", "_slots", "last_at")  # fmt: skip

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()  # guards _slots (rolled on the reader, read anywhere)
        self.last_at: float | None = None  # local time of the last message (epoch seconds)
        self._slot = 0  # the second being counted (int(epoch seconds)); 0 before any message
        self._slot_end = 0.0
        self._slot_count = 0
        self._slot_lags: list[float] = []
        self._samples_left = 0
        # Closed seconds, oldest first: (second, messages, lag samples in ms).
        self._slots: deque[tuple[int, int, list[float]]] = deque(maxlen=_WINDOW)

    def record(self, count: int, sample: Any) -> None:
        """``count`` data messages were received now, ``sample`` one of them (the reader
        thread; a socket reports each read at once, so this runs once per read)."""
        now = self._clock()
        self.last_at = now
        if now >= self._slot_end:
            self._roll(now)
        self._slot_count += count
        if self._samples_left:
            self._samples_left -= 1
            event_time = _event_time(sample)
            if event_time is not None:
                self._slot_lags.append(now * 1000.0 - event_time)

    def _roll(self, now: float) -> None:
        """A new second began: close the one counted so far (empty seconds between count 0)."""
        second = int(now)
        with self._lock:
            if self._slot:
                self._slots.append((self._slot, self._slot_count, self._slot_lags))
        self._slot, self._slot_end = second, second + 1.0
        self._slot_count = 0
        self._slot_lags = []
        self._samples_left = LAG_SAMPLES_PER_SECOND

    def reading(self) -> MeterReading:
        """The rates, lag and age as of now (any thread)."""
        now = self._clock()
        with self._lock:
            slots = list(self._slots)
            current = (self._slot, self._slot_count, list(self._slot_lags))
        if current[0]:
            slots.append(current)
        second = int(now)
        last_second = sum(count for at, count, _ in slots if at == second - 1)
        recent = [(at, count, lags) for at, count, lags in slots if at > second - _WINDOW]
        span = min(_WINDOW, second - recent[0][0] + 1) if recent else 1
        lags = sorted(lag for _, _, some in recent for lag in some)
        last_at = self.last_at
        return MeterReading(
            rate_1s=float(last_second),
            rate_60s=sum(count for _, count, _ in recent) / span,
            lag_p50_ms=_percentile(lags, 0.50),
            lag_p99_ms=_percentile(lags, 0.99),
            last_message_age=None if last_at is None else max(0.0, now - last_at),
        )


def combine(readings: Iterable[MeterReading]) -> MeterReading:
    """One reading for copies of the same stream (``redundancy``): the busiest copy's rates,
    the best lag (the merge passes on whichever copy is first), the freshest message."""
    readings = list(readings)
    ages = [r.last_message_age for r in readings if r.last_message_age is not None]
    p50s = [r.lag_p50_ms for r in readings if r.lag_p50_ms is not None]
    p99s = [r.lag_p99_ms for r in readings if r.lag_p99_ms is not None]
    return MeterReading(
        rate_1s=max((r.rate_1s for r in readings), default=0.0),
        rate_60s=max((r.rate_60s for r in readings), default=0.0),
        lag_p50_ms=min(p50s, default=None),
        lag_p99_ms=min(p99s, default=None),
        last_message_age=min(ages, default=None),
    )


def _event_time(message: Any) -> float | None:
    """Binance's event time ``E`` (epoch ms) of a payload or a combined-stream wrapper."""
    if type(message) is not dict:
        return None
    event_time = message.get("E")
    if event_time is None:
        data = message.get("data")
        if type(data) is dict:
            event_time = data.get("E")
    if type(event_time) is int:
        return float(event_time)
    return None


def _percentile(ordered: list[float], share: float) -> float | None:
    """The nearest-rank percentile of an ascending list (None when empty)."""
    if not ordered:
        return None
    rank = max(0, min(len(ordered) - 1, int(share * len(ordered) + 0.5) - 1))
    return ordered[rank]
