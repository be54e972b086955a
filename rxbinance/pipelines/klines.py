"""Candles with history: the last N from REST, then live, seamlessly."""

from __future__ import annotations

import itertools
import logging
import threading
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import reactivex
from reactivex import Observable, abc

from rxbinance._reactive.budget import WeightBudget
from rxbinance._reactive.context import StreamsContext
from rxbinance._reactive.hub import Sink
from rxbinance._reactive.reconnect import is_fatal, retry_after
from rxbinance.errors import InvalidInputError, ProtocolError
from rxbinance.events import Gap
from rxbinance.models import Kline, ParseError
from rxbinance.pipelines._rest import KlinesClient
from rxbinance.protocol import names
from rxbinance.protocol.frames import give_up_error, is_give_up
from rxbinance.protocol.intervals import next_open

if TYPE_CHECKING:
    from rxbinance.streams import BinanceStreams

__all__ = ["klines_with_history"]

log = logging.getLogger("rxbinance.pipelines")

_KLINES_WEIGHT = 2  # GET /api/v3/klines, any limit (binance-protocol.md 7)
_MAX_LIMIT = 1000


def klines_with_history(
    streams: BinanceStreams,
    symbol: str,
    interval: str = "1m",
    history: int = 500,
    *,
    rest: KlinesClient | None = None,
    budget: WeightBudget | None = None,
) -> Observable[Kline]:
    """The last ``history`` candles of ``symbol`` from REST, then the live ones, as Klines.

    .. code-block:: python

        candles = rxbinance.klines_with_history(streams, "BTCUSDT", "1m", history=500)
        candles.pipe(rbo.closed_klines()).subscribe(on_candle)

    Emits, oldest first, the ``history`` most recent candles (``GET /api/v3/klines``; the
    last one is usually still open, ``closed=False``), then continues with the kline stream:

    - **No duplicate**: candles are deduplicated by open time. An update of a candle already
      emitted is passed on only if it is newer: it closes the candle, or it has more trades.
      So a candle never goes backwards and never repeats; the open candle "updates in place"
      (same ``open_time``, later state). Keep the latest per ``open_time`` to have the series.
    - **No gap**: the stream is subscribed (and buffered) before the REST call; if its first
      candles come after the history's last (the close of the candle in progress was not
      heard), the missing ones are fetched once more before live candles continue. After
      that seam, holes are the kline stream's to repair (one mechanism for both:
      :meth:`~rxbinance.BinanceStreams.klines` refills closed candles missed while down from
      REST by time): a :class:`~rxbinance.events.Gap` of candle open times it could not
      refill is passed on in place, in-band, like :func:`~rxbinance.operators.parse` does.

    History candles carry what REST reports: no trade ids (``first_trade_id`` and
    ``last_trade_id`` are -1) and no event time (``event_time`` is the close time of a closed
    candle, the latest live event time known, or the open time, for the open one).

    Cold per subscriber (each subscription fetches its own history) over the hot, shared kline
    socket. REST weight (2 per call) comes from the streams' shared budget (``budget``);
    failures are retried with a growing delay, 429/418 pause the budget for ``Retry-After``, a
    refused connection costs no weight, and an error Binance will not change its mind about
    (bad symbol) ends the subscription with it.
    Runs on the kline socket's reader thread, or on the REST worker thread
    (``rxbinance-klines:<SYMBOL>@<interval>``) for fetched candles, one at a time (on the
    streams' scheduler if it has one). ``history``: 1 to 1000. Bad arguments raise ValueError
    at once.
    """
    stream_name = names.kline_stream(symbol, interval)
    if isinstance(history, bool) or not isinstance(history, int) or not 1 <= history <= 1000:
        raise InvalidInputError(f"invalid history {history!r}: an int from 1 to 1000")
    upper = names.normalize_symbol(symbol).upper()
    context = streams.context
    live = streams.klines(upper, interval)

    def subscribe(
        observer: abc.ObserverBase[Kline], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        # One session per subscriber (each gets its own history), kept in the hub under a key
        # of its own: delivery, ending and closing work as for every shared stream.
        key = ("klines_with_history", upper, interval, history, next(_session_ids))

        def make() -> _Session:
            return _Session(
                context,
                live,
                symbol=upper,
                interval=interval,
                history=history,
                stream_name=stream_name,
                rest=rest if rest is not None else context.rest(),
                budget=budget if budget is not None else context.budget,
            )

        shared = context.hub.observable(key, make, name=f"klines_with_history({stream_name})")
        return shared.subscribe(observer, scheduler=scheduler)

    return reactivex.create(subscribe)


_session_ids = itertools.count()


class _Session:
    """One subscriber's seam between REST candles and live ones: a hub source.

    Candles are posted to the hub entry under ``_lock`` and delivered by ``_flush()`` after it
    is released, so the subscriber never runs under the lock and receives them in order.
    """

    def __init__(
        self,
        context: StreamsContext,
        live: Observable[Any],
        *,
        symbol: str,
        interval: str,
        history: int,
        stream_name: str,
        rest: KlinesClient,
        budget: WeightBudget,
    ) -> None:
        self._context = context
        self._live = live
        self._sink: Sink[Kline] | None = None
        self._symbol = symbol
        self._interval = interval
        self._stream_name = stream_name
        self._rest = rest
        self._budget = budget
        self._lock = threading.RLock()
        self._last: Kline | None = None  # the last candle emitted
        # While a REST fetch is pending: live candles (and the stream's Gaps) wait here. None:
        # live candles flow.
        self._buffer: list[Kline | Gap] | None = []
        # Joined: the history met the live stream, whose own repair keeps it whole from then on.
        self._joined = False
        self._request: tuple[int | None, int] | None = (None, history)  # (startTime, limit)
        self._worker: threading.Thread | None = None
        self._stopped = False
        self._stop_event = threading.Event()
        self._subscription: abc.DisposableBase | None = None

    def start(self, sink: Sink[Kline]) -> None:
        with self._lock:
            if self._stopped:
                return
            self._sink = sink
        subscription = self._live.subscribe(
            self._on_live, self._on_live_error, self._on_live_completed
        )
        with self._lock:
            if self._halted():  # (a method: mypy would keep the narrowing from above)
                subscription.dispose()
                return
            self._subscription = subscription
            self._ensure_worker()  # the REST call starts only once the stream is subscribed
        self._flush()  # live candles that came while subscribing

    def _halted(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._stop_event.set()
            subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.dispose()

    def _end(self, error: Exception | None) -> None:
        with self._lock:
            if self._stopped:
                return
        self._flush()  # what was posted before the end goes first
        if self._sink is not None:
            self._sink.end(error)
        self.stop()

    def _flush(self) -> None:
        """Deliver the posted candles, in order: call without holding ``_lock``."""
        if self._sink is not None:
            self._sink.flush()

    # -- live --------------------------------------------------------------------------------

    def _on_live(self, message: Any) -> None:
        if type(message) is Gap:
            # Closed candles the kline stream's repair could not refill: passed on in place.
            with self._lock:
                if self._stopped:
                    return
                if self._buffer is not None:
                    self._buffer.append(message)
                else:
                    self._pass_gap(message)
            self._flush()
            return
        if is_give_up(message):
            self._end(give_up_error(message, self._stream_name))
            return
        try:
            kline = Kline.from_dict(message)
        except ParseError as exc:
            self._end(exc)
            return
        with self._lock:
            if self._stopped:
                return
            if self._buffer is not None:
                self._buffer.append(kline)
            else:
                self._offer(kline)
        self._flush()

    def _on_live_error(self, error: Exception) -> None:
        self._end(error)

    def _on_live_completed(self) -> None:
        self._end(None)

    # -- the seam (under self._lock) ---------------------------------------------------------

    def _emit(self, kline: Kline) -> None:
        self._last = kline
        if self._sink is not None:
            self._sink.post(kline)

    def _newer(self, kline: Kline) -> bool | None:
        """True: emit; False: drop (stale or a repeat); None: a later candle (check the gap)."""
        last = self._last
        if last is None or kline.open_time > last.open_time:
            return None
        if kline.open_time < last.open_time or last.closed:
            return False
        return kline.closed or kline.trades > last.trades

    def _pass_gap(self, gap: Gap) -> None:
        """The stream's Gap: dropped if the history already holds its candles, else posted."""
        last = self._last
        if (last is None or gap.last > last.open_time) and self._sink is not None:
            self._sink.post(gap)  # type: ignore[arg-type]  # in-band, as parse() does

    def _offer(self, kline: Kline) -> None:
        """A live candle: emit it, drop it, or (a hole at the seam) fetch what is missing."""
        verdict = self._newer(kline)
        joined, self._joined = self._joined, True
        if verdict is None:
            last = self._last
            if (
                not joined
                and last is not None
                and (not last.closed or kline.open_time > next_open(self._interval, last.open_time))
            ):
                # The final state of `last`, or whole candles, went by before the stream's
                # first candle: fetch from `last` on, and hold live candles until then. Later
                # holes are the stream's own repair's (or its Gap's): never fetched twice.
                self._buffer = [kline]
                self._request = (last.open_time, _MAX_LIMIT)
                self._ensure_worker()
                return
            self._emit(kline)
        elif verdict:
            self._emit(kline)

    def _fetched(self, candles: list[Kline]) -> None:
        """REST candles arrived: emit them, then the buffered live ones."""
        buffered = self._buffer or []
        self._buffer = None
        for kline in candles:
            verdict = self._newer(kline)
            if verdict is None or verdict:
                self._emit(kline)
        for i, item in enumerate(buffered):
            pending = self._pending()
            if pending is not None:  # a hole at the seam: the rest waits for that fetch
                pending.extend(buffered[i:])
                break
            if isinstance(item, Gap):
                self._pass_gap(item)
            else:
                self._offer(item)

    def _pending(self) -> list[Kline | Gap] | None:
        # A method, not the attribute: _offer() may have started a new buffer meanwhile.
        return self._buffer

    # -- the worker --------------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        if self._worker is None and not self._stopped and self._request is not None:
            worker = self._context.new_thread(
                self._work, f"rxbinance-klines:{self._symbol}@{self._interval}"
            )
            self._worker = worker
            worker.start()

    def _work(self) -> None:
        failures = 0
        while True:
            with self._lock:
                request = self._request
                if self._stopped or request is None:
                    self._worker = None
                    return
            start_time, limit = request
            if failures:
                delay = self._context.rest_retry.delay(failures)
                if self._stop_event.wait(delay):
                    continue
            if not self._budget.acquire(_KLINES_WEIGHT, self._stop_event):
                continue
            try:
                rows = self._rest.klines(
                    self._symbol, self._interval, start_time=start_time, limit=limit
                )
            except Exception as exc:
                self._budget.refund(_KLINES_WEIGHT, exc)
                pause = retry_after(exc)
                if pause is not None:
                    self._budget.pause(pause)
                if is_fatal(exc):
                    self._end(exc)
                    continue
                failures += 1
                log.warning("%s: REST klines failed (%r); retrying", self._stream_name, exc)
                continue
            failures = 0
            with self._lock:
                if self._stop_event.is_set():
                    continue
                try:
                    candles = self._candles(rows)
                except ProtocolError as exc:
                    self._end(exc)
                    continue
                if self._request is request:
                    self._request = None
                self._fetched(candles)
            self._flush()

    def _candles(self, rows: Any) -> list[Kline]:
        """REST rows -> Klines. Every row but the last is closed (REST knows a later candle).
        The last is the candle in progress as far as REST knew: open. If it has closed since,
        the live stream's closing update (buffered, or still to come) closes it; if that update
        was missed, the next live candle finds it open and fetches it again (see _offer)."""
        buffered = self._buffer or []
        latest_event = max((k.event_time for k in buffered if type(k) is Kline), default=None)
        out = []
        try:
            for i, row in enumerate(rows):
                open_time = int(row[0])
                close_time = int(row[6])
                closed = i + 1 < len(rows)
                out.append(
                    Kline(
                        event_time=close_time if closed else (latest_event or open_time),
                        symbol=self._symbol,
                        interval=self._interval,
                        open_time=open_time,
                        close_time=close_time,
                        open=Decimal(row[1]),
                        high=Decimal(row[2]),
                        low=Decimal(row[3]),
                        close=Decimal(row[4]),
                        volume=Decimal(row[5]),
                        quote_volume=Decimal(row[7]),
                        trades=int(row[8]),
                        taker_buy_base_volume=Decimal(row[9]),
                        taker_buy_quote_volume=Decimal(row[10]),
                        first_trade_id=-1,
                        last_trade_id=-1,
                        closed=closed,
                    )
                )
        except (TypeError, ValueError, IndexError, ArithmeticError) as exc:
            raise ProtocolError(f"malformed REST kline row: {exc!r}") from exc
        return out
