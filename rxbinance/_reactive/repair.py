"""Lossless sequenced streams: holes refilled from REST, or reported as a Gap, never silent.

A :class:`RepairingSink` sits between a stream's :class:`~rxbinance._reactive.connection.
SharedConnection` and its hub entry, for the streams whose messages carry a sequence
(:mod:`rxbinance.protocol.sequence`: aggregate trade ids, trade ids, closed candles):

- **The hot path** (the next message, nothing being repaired) is one sequence check on the
  reader thread and the entry's own fan-out: no lock, no queue.
- **A repeat** (what a reconnect or a REST page re-sends) is dropped: every message reaches the
  subscribers once.
- **A hole** (a reconnect, a rollover or a stall missed messages: the next one is further on)
  holds the message that revealed it, and every later one, while a worker thread
  (``rxbinance-repair:<stream>``) fetches the missing ones from REST, page by page, each page
  paid for from the streams' :class:`~rxbinance._reactive.budget.WeightBudget` (waiting at most
  ``budget_timeout`` seconds for it: ``BinanceStreams(repair_timeout=...)``). Then the
  fetched messages, and after them the held ones, are delivered in order.
- **What REST cannot give** becomes one :class:`~rxbinance.events.Gap` with its exact bounds,
  delivered in-band where the hole is and on ``BinanceStreams.events``: history older than
  REST keeps (``"beyond REST retention"``), a refusal (``"REST refused: ..."``), repeated
  failures, a budget that would make the repair wait longer than ``budget_timeout``
  (``"REST weight budget spent"``), a stream that ended meanwhile, or ``backfill=False``.

Threads: ``on_next`` runs on the socket's reader; the repair on its worker, started per hole
and joined by ``BinanceStreams.close()``. Deliveries after a repair are posted to the entry
under this sink's lock and flushed after it, so the reader's next live message (which finds the
entry's queue non-empty) is delivered after them: order holds across the two threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from rxbinance._reactive.budget import WeightBudget
from rxbinance._reactive.hub import Sink
from rxbinance._reactive.reconnect import ReconnectPolicy, is_fatal, retry_after
from rxbinance.events import ConnectionEvent, Gap
from rxbinance.protocol.intervals import candle_open, next_open
from rxbinance.protocol.sequence import (
    CandleSequence,
    DepthSequence,
    IdSequence,
    Verdict,
    agg_trade_message,
    kline_message,
    trade_message,
)

__all__ = [
    "AggTradeBackfill",
    "Backfill",
    "KlineBackfill",
    "RepairStatistics",
    "RepairingSink",
    "TradeBackfill",
]

log = logging.getLogger("rxbinance.repair")

Sequence = IdSequence | CandleSequence | DepthSequence


class Backfill(Protocol):
    """How one sequenced stream is refilled from REST: ``weight`` per call, and ``page(first,
    last)``, the stream's own messages from position ``first`` on (at most up to ``last``,
    possibly starting later when REST no longer keeps ``first``)."""

    weight: int

    def page(self, first: int, last: int) -> list[Any]: ...


@dataclass(frozen=True, slots=True)
class RepairStatistics:
    """What repairing one stream cost and gave, since the stream went live."""

    holes: int  # holes found
    repaired: int  # messages fetched from REST and delivered in their place
    gaps: int  # Gap events delivered (holes or parts of holes REST could not fill)
    dropped: int  # repeats dropped
    rest_calls: int
    rest_weight: int  # request weight of the calls that reached Binance
    filled: int = 0  # holes refilled completely from REST (the others gave Gaps)


class RepairingSink:
    """A :class:`~rxbinance._reactive.hub.Sink` in front of another that keeps a sequenced
    stream whole (see the module docstring)."""

    #: Calls that find nothing new before REST is given up on for a hole (REST may lag the
    #: stream by a moment: the newest ids are retried a little later).
    EMPTY_TRIES = 5
    #: Consecutive failures of one page before the rest of the hole becomes a Gap.
    MAX_FAILURES = 5

    def __init__(
        self,
        target: Sink[Any],
        *,
        stream: str,
        sequence: Sequence,
        backfill: Backfill | None,
        budget: WeightBudget,
        rest_retry: ReconnectPolicy,
        new_thread: Callable[[Callable[[], None], str], threading.Thread],
        emit_event: Callable[[ConnectionEvent], None],
        budget_timeout: float = 30.0,
    ) -> None:
        self.key = target.key
        self._target = target
        self._deliver = target.on_next
        self._stream = stream
        self._seq = sequence
        self._field = sequence.field if isinstance(sequence, IdSequence) else None
        self._history_less = isinstance(sequence, DepthSequence)
        self._backfill = backfill
        self._budget = budget
        self._retry = rest_retry
        self._new_thread = new_thread
        self._emit_event = emit_event
        self._budget_timeout = budget_timeout
        self._lock = threading.Lock()
        self._repairing = False  # read without the lock on the hot path: set under it
        self._held: list[Any] = []  # live messages waiting for the repair, in order
        self._stop = threading.Event()
        self._holes = self._repaired = self._gaps = self._dropped = 0
        self._calls = self._weight = 0
        self._filled = 0

    # -- the Sink the connection writes to ------------------------------------------------

    def on_next(self, message: Any) -> None:
        # The hot path, inlined for trade ids (the busiest streams): the next id, nothing held.
        field = self._field
        if field is not None and not self._repairing:
            try:
                position = message[field]
            except (KeyError, TypeError, IndexError):
                position = None
            seq = self._seq
            if position is not None and position == seq.expected:
                seq.expected = position + 1
                self._deliver(message)
                return
        self._on_next(message)

    def _on_next(self, message: Any) -> None:
        if self._repairing:
            self._hold(message)
            return
        verdict = self._seq.check(message)
        if verdict is Verdict.DELIVER or verdict is Verdict.OTHER:
            self._target.on_next(message)
        elif verdict is Verdict.DROP:
            self._dropped += 1
        else:
            self._found_hole(message)

    def post(self, value: Any, *, current: bool = False) -> None:
        self._target.post(value, current=current)

    def forget_current(self) -> None:
        self._target.forget_current()

    def flush(self) -> None:
        self._target.flush()

    def end(self, error: Exception | None = None, *, last: Any = None) -> None:
        """The stream ends: a repair under way is abandoned (its hole becomes a Gap, what was
        held is delivered before the end)."""
        self._stop.set()
        gaps: list[Gap] = []
        with self._lock:
            if self._repairing:  # the hole, and any later one the held messages show, are lost
                self._repairing = False
                held, self._held = self._held, []
                gaps.append(self._skip_hole("stream ended before the repair"))
                for message in held:
                    verdict = self._seq.check(message)
                    if verdict is Verdict.HOLE:
                        gaps.append(self._skip_hole("stream ended before the repair"))
                        verdict = self._seq.check(message)
                    if verdict is not Verdict.DROP:
                        self._target.post(message)
        self._announce(gaps)
        self._target.end(error, last=last)

    def cancel(self) -> None:
        """The stream stopped (last subscriber gone, or closed): abandon a repair under way
        and let its worker end at once."""
        self._stop.set()

    @property
    def subscribers(self) -> int:
        return self._target.subscribers

    @property
    def last(self) -> Any:
        return self._target.last

    def statistics(self) -> RepairStatistics:
        return RepairStatistics(
            self._holes,
            self._repaired,
            self._gaps,
            self._dropped,
            self._calls,
            self._weight,
            self._filled,
        )

    # -- holes -------------------------------------------------------------------------------

    def _hold(self, message: Any) -> None:
        with self._lock:
            if self._repairing:
                self._held.append(message)
                return
        self._on_next(message)  # the repair finished meanwhile

    def _found_hole(self, message: Any) -> None:
        self._holes += 1
        if self._backfill is None:
            gap = self._skip_hole("depth has no history" if self._history_less else "backfill off")
            self._target.flush()
            self._emit_event(gap)
            self._on_next(message)
            return
        log.info("%s: %d to %d missed; repairing", self._stream, *self._seq.hole)
        with self._lock:
            self._repairing = True
            self._held = [message]
            worker = self._new_thread(self._repair, f"rxbinance-repair:{self._stream}")
        worker.start()

    def _repair(self) -> None:
        """Worker: fill the current hole, deliver, and go on while the held messages reveal
        another one."""
        while not self._stop.is_set():
            first, last = self._seq.hole
            fetched, gaps = self._fetch(first, last)
            with self._lock:
                if not self._repairing or self._stop.is_set():
                    # The stream ended or stopped meanwhile: what is held stays undelivered
                    # (never delivered past a hole that was neither filled nor reported).
                    return
                for item in fetched:
                    if isinstance(item, Gap):
                        self._seq.skip(item.last)
                        self._target.post(item)
                        continue
                    verdict = self._seq.check(item)
                    if verdict is Verdict.HOLE:  # REST itself skipped some: say so
                        gaps.append(self._skip_hole("not in REST"))
                        verdict = self._seq.check(item)
                    if verdict is Verdict.DELIVER:
                        self._repaired += 1
                        self._target.post(item)
                self._seq.skip(last)  # whatever REST did not give is reported in `gaps`
                if not gaps:
                    self._filled += 1
                held, self._held = self._held, []
                again = self._deliver_held(held)
                if again is None:
                    self._repairing = False
            self._target.flush()
            self._announce(gaps)
            if again is None:
                return

    def _deliver_held(self, held: list[Any]) -> list[Any] | None:
        """Post the held messages in order (under the lock); if one reveals a new hole, keep
        it and the rest held and return them (the worker repairs again), else None."""
        for index, message in enumerate(held):
            verdict = self._seq.check(message)
            if verdict is Verdict.HOLE:
                self._holes += 1
                self._held = held[index:]
                return self._held
            if verdict is Verdict.DROP:
                self._dropped += 1
            else:
                self._target.post(message)
        return None

    def _fetch(self, first: int, last: int) -> tuple[list[Any], list[Gap]]:
        """The messages of ``first`` to ``last`` from REST, in order, with a Gap (in place)
        for each part REST could not give; the Gaps also returned apart, to announce."""
        backfill = self._backfill
        assert backfill is not None
        out: list[Any] = []
        gaps: list[Gap] = []
        cursor = first
        failures = empty = 0

        def gap(upto: int, reason: str) -> None:
            item = self._gap(cursor, upto, reason)
            out.append(item)
            gaps.append(item)

        while cursor <= last and not self._stop.is_set():
            if not self._budget.acquire(backfill.weight, self._stop, self._budget_timeout):
                if not self._stop.is_set():
                    gap(last, "REST weight budget spent")
                break
            self._calls += 1
            self._weight += backfill.weight
            try:
                page = backfill.page(cursor, last)
            except Exception as exc:
                if self._budget.refund(backfill.weight, exc):
                    self._weight -= backfill.weight  # never reached Binance: cost nothing
                pause = retry_after(exc)
                if pause is not None:
                    self._budget.pause(pause)
                failures += 1
                if is_fatal(exc):
                    gap(last, f"REST refused: {exc}")
                    break
                if failures >= self.MAX_FAILURES:
                    gap(last, f"REST failed {failures} times: {exc}")
                    break
                self._stop.wait(max(pause or 0.0, self._retry.delay(failures)))
                continue
            failures = 0
            page = [m for m in page if cursor <= (self._position(m) or -1) <= last]
            if not page:
                empty += 1
                if empty >= self.EMPTY_TRIES:
                    gap(last, "not available from REST")
                    break
                self._stop.wait(self._retry.delay(empty))  # REST may not have them yet
                continue
            empty = 0
            start = self._position(page[0])
            assert start is not None
            if start > cursor:
                gap(self._before(start), "beyond REST retention")
            out.extend(page)
            end = self._position(page[-1])
            assert end is not None
            cursor = self._after(end)
        return out, gaps

    # -- positions -----------------------------------------------------------------------

    # Only ids and candles are ever fetched (depth has no history: no backfill, so _fetch never
    # runs for it).

    def _position(self, message: Any) -> int | None:
        seq = self._seq
        if isinstance(seq, IdSequence):
            return seq.position(message)
        assert isinstance(seq, CandleSequence)
        found = seq.position(message)
        return None if found is None else found[0]

    def _after(self, position: int) -> int:
        seq = self._seq
        if isinstance(seq, IdSequence):
            return position + 1
        assert isinstance(seq, CandleSequence)
        return next_open(seq.interval, position)

    def _before(self, position: int) -> int:
        seq = self._seq
        if isinstance(seq, IdSequence):
            return position - 1
        assert isinstance(seq, CandleSequence)
        return candle_open(seq.interval, position - 1)

    def _skip_hole(self, reason: str) -> Gap:
        """Post a Gap for the current hole and go past it (under the lock, or on the reader
        while nothing is being repaired)."""
        first, last = self._seq.hole
        gap = self._gap(first, last, reason)
        self._target.post(gap)
        self._seq.skip(last)
        return gap

    def _gap(self, first: int, last: int, reason: str) -> Gap:
        self._gaps += 1
        log.warning("%s: %d to %d lost: %s", self._stream, first, last, reason)
        return Gap(self._stream, time.time(), first=first, last=last, reason=reason)

    def _announce(self, gaps: list[Gap]) -> None:
        for gap in gaps:
            self._emit_event(gap)


# -- REST strategies, one per sequenced stream ----------------------------------------------------

#: Messages one REST call returns at most (aggTrades, historicalTrades, klines).
PAGE = 1000


class AggTradeBackfill:
    """``GET /api/v3/aggTrades`` (spot, weight 4) or ``/fapi/v1/aggTrades`` (USD-M, weight 20,
    the last 48 h only) by ``fromId``: public, no API key."""

    def __init__(self, rest: Callable[[], Any], symbol: str, *, usdm: bool) -> None:
        self._rest = rest
        self._symbol = symbol
        self.weight = 20 if usdm else 4

    def page(self, first: int, last: int) -> list[Any]:
        rows = self._rest().agg_trades(
            self._symbol, from_id=first, limit=min(PAGE, last - first + 1)
        )
        return [agg_trade_message(row, self._symbol) for row in rows]


class TradeBackfill:
    """``GET /api/v3/historicalTrades`` by ``fromId`` (spot, weight 25). Binance's current
    market-data documentation lists it without a security type: no API key needed (one is
    sent when the streams have it). USD-M has no trade stream."""

    weight = 25

    def __init__(self, rest: Callable[[], Any], symbol: str) -> None:
        self._rest = rest
        self._symbol = symbol

    def page(self, first: int, last: int) -> list[Any]:
        rows = self._rest().historical_trades(
            self._symbol, from_id=first, limit=min(PAGE, last - first + 1)
        )
        return [trade_message(row, self._symbol) for row in rows]


class KlineBackfill:
    """``GET /api/v3/klines`` (spot, weight 2) or ``/fapi/v1/klines`` (USD-M, weight 5 for up
    to 1000 rows) by ``startTime``/``endTime``: the closed candles opening in the hole."""

    def __init__(self, rest: Callable[[], Any], symbol: str, interval: str, *, usdm: bool) -> None:
        self._rest = rest
        self._symbol = symbol
        self._interval = interval
        self.weight = 5 if usdm else 2

    def page(self, first: int, last: int) -> list[Any]:
        rows = self._rest().klines(
            self._symbol, self._interval, start_time=first, end_time=last, limit=PAGE
        )
        return [kline_message(row, self._symbol, self._interval) for row in rows]
