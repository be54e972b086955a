"""Operators for Binance streams, in RxPY style: functions that return operators.

.. code-block:: python

    import rxbinance.operators as rbo

    combined = streams.multiplex(["btcusdt@trade", "btcusdt@depth5"])
    combined.pipe(rbo.select_stream("btcusdt@depth5")).subscribe(print)   # bare payloads
    combined.pipe(rbo.demultiplex()).subscribe(lambda g: g.subscribe(print))  # one per stream

    tagged = rbo.merge_tagged({"btc": streams.trades("BTCUSDT"), "eth": streams.trades("ETHUSDT")})
    # emits {"stream": "btc", "data": {...}}: the same shape as multiplex, so the same operators
    # split it again.

A message without a ``"stream"`` key on a combined stream is the give-up dict
(``{'e': 'error', 'm': 'Max reconnect retries reached'}``): every operator above forwards it to
every consumer, so nobody misses that its data has stopped. :func:`raise_on_give_up` turns it
into ``on_error(ConnectionFailure)`` naming the stream, so code that reads the messages' fields
(``ops.map(lambda m: m["p"])``) never takes it for data:

.. code-block:: python

    streams.trades("BNBBTC").pipe(rbo.raise_on_give_up("bnbbtc@trade"), ops.map(lambda m: m["p"]))

Typed operators turn raw dicts into :mod:`rxbinance.models` and work on those:

.. code-block:: python

    from rxbinance.models import Kline, Trade

    trades = streams.trades("BNBBTC").pipe(rbo.parse_as(Trade))          # Observable[Trade]
    candles = streams.klines("BNBBTC", "1m").pipe(rbo.parse_as(Kline), rbo.closed_klines())
    hourly = candles.pipe(rbo.resample("1h"))                             # Observable[Kline]
    rxbinance.order_book(streams, "BNBBTC").pipe(rbo.mid())               # Observable[Decimal]

- :func:`parse` / :func:`parse_as` / :func:`parse_list_as`: payloads to models;
- :func:`closed_klines`, :func:`resample`: finished candles, and larger candles built from
  them (complete periods only);
- :func:`spread`, :func:`mid`: of quotes and order books;
- :func:`to_dataframe`: models to pandas DataFrames (the optional ``pandas`` extra).

A subscriber slower than its stream runs on the socket's reader thread and delays the socket
until Binance drops it. :func:`observe_on_bounded` moves it to a scheduler through a bounded
queue, with a policy for what to do when the queue is full:

.. code-block:: python

    from reactivex.scheduler import ThreadPoolScheduler

    latest = rbo.observe_on_bounded(ThreadPoolScheduler(1), 10, "latest")
    rxbinance.order_book(streams, "BTCUSDT").pipe(latest).subscribe(slow_redraw)
    latest.statistics()  # BoundedStatistics(..., delivered=..., dropped=..., high_water=...)

Typed operators do not pass the give-up dict on (it is not a model): they end the subscription
with ``on_error(ConnectionFailure("bnbbtc@trade: Max reconnect retries reached"))`` instead, the
typed equivalent of "the data stopped for good", as :func:`raise_on_give_up` does. The stream
named is their ``stream`` argument, else the names of the combined-stream wrappers seen (the
typed pipelines, ``order_book`` and the others, always name theirs). Parsing failures end it with
the ``ParseError`` (``errors="raise"``, the default) or are logged and dropped
(``errors="skip"``).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, cast, overload

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.observable.groupedobservable import GroupedObservable
from reactivex.subject import Subject

from rxbinance._reactive.bounded import (
    BoundedStatistics,
    DropCounters,
    ObserveOnBounded,
    OverflowPolicy,
)
from rxbinance.errors import ConnectionFailure, InvalidInputError
from rxbinance.events import Gap, Overflow
from rxbinance.models import (
    AggTrade,
    AvgPrice,
    BookTicker,
    ContinuousKline,
    Event,
    Kline,
    MiniTicker,
    ParseError,
    RollingTicker,
    Ticker,
    Trade,
    parser_for,
)
from rxbinance.models import parse as parse_payload
from rxbinance.protocol.frames import give_up_error, is_give_up
from rxbinance.protocol.intervals import (
    candle_close,
    candle_open,
    check_interval,
    parse_utc_offset,
)
from rxbinance.protocol.payloads import (
    AggTradePayload,
    AvgPricePayload,
    BookTickerPayload,
    KlinePayload,
    MiniTickerPayload,
    RollingTickerPayload,
    TickerPayload,
    TradePayload,
)

if TYPE_CHECKING:
    from rxbinance.streams import BinanceStreams

__all__ = [
    "BoundedStatistics",
    "ObserveOnBounded",
    "closed_klines",
    "demultiplex",
    "merge_tagged",
    "mid",
    "observe_on_bounded",
    "parse",
    "parse_as",
    "parse_list_as",
    "raise_on_give_up",
    "resample",
    "select_stream",
    "spread",
    "tag",
    "to_dataframe",
]

Message = dict[str, Any]
_T = TypeVar("_T")

log = logging.getLogger("rxbinance.operators")


def _is_wrapped(message: Any) -> bool:
    return type(message) is dict and "stream" in message and "data" in message


def select_stream(name: str) -> Callable[[Observable[Message]], Observable[Any]]:
    """Keep the payloads of stream ``name`` from a combined stream, unwrapped.

    ``{"stream": name, "data": payload}`` becomes ``payload``; other streams' messages are
    dropped; the give-up dict passes through unchanged.
    """

    def keep(message: Message) -> bool:
        return not _is_wrapped(message) or message["stream"] == name

    def unwrap(message: Message) -> Any:
        return message["data"] if _is_wrapped(message) else message

    def operator(source: Observable[Message]) -> Observable[Any]:
        return source.pipe(ops.filter(keep), ops.map(unwrap))

    return operator


def demultiplex() -> Callable[[Observable[Message]], Observable[GroupedObservable[str, Any]]]:
    """Split a combined stream into one Observable per stream name, in order of first sight.

    Emits a ``GroupedObservable`` (``.key`` is the stream name) the first time a stream is seen;
    it carries that stream's bare payloads. The give-up dict goes to every group; completion and
    errors end every group, then the outer Observable. Groups are hot: subscribe to a group in the
    callback that receives it, or you miss its first payload.
    """

    def operator(source: Observable[Message]) -> Observable[GroupedObservable[str, Any]]:
        def subscribe(
            observer: abc.ObserverBase[GroupedObservable[str, Any]],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            groups: dict[str, Subject[Any]] = {}
            lock = threading.Lock()

            def group(name: str) -> Subject[Any]:
                with lock:
                    subject = groups.get(name)
                    if subject is not None:
                        return subject
                    subject = groups[name] = Subject()
                observer.on_next(GroupedObservable(name, subject))
                return subject

            def on_next(message: Message) -> None:
                if _is_wrapped(message):
                    group(message["stream"]).on_next(message["data"])
                else:
                    for subject in list(groups.values()):
                        subject.on_next(message)

            def on_error(error: Exception) -> None:
                for subject in list(groups.values()):
                    subject.on_error(error)
                observer.on_error(error)

            def on_completed() -> None:
                for subject in list(groups.values()):
                    subject.on_completed()
                observer.on_completed()

            return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

        return reactivex.create(subscribe)

    return operator


def tag(name: str) -> Callable[[Observable[Any]], Observable[Message]]:
    """Wrap each payload as ``{"stream": name, "data": payload}``, the combined-stream shape.

    The give-up dict is passed through unwrapped, as on a combined socket.
    """

    def wrap(payload: Any) -> Message:
        if type(payload) is dict and payload.get("e") == "error" and "m" in payload:
            return payload
        return {"stream": name, "data": payload}

    return ops.map(wrap)


def merge_tagged(streams: Mapping[str, Observable[Any]]) -> Observable[Message]:
    """Merge several keyed streams into one tagged stream.

    ``merge_tagged({"btc": a, "eth": b})`` emits ``{"stream": "btc", "data": ...}`` and
    ``{"stream": "eth", "data": ...}`` as they arrive, serialized (one at a time, even though
    the sources are read by different threads), and completes when every source has completed.
    """
    if not streams:
        raise ValueError("merge_tagged needs at least one stream")
    tagged = [source.pipe(tag(name)) for name, source in streams.items()]

    def subscribe(
        observer: abc.ObserverBase[Message], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        # merge() serializes emissions of sources on different threads (reactivex-notes 12)
        # but a lock of our own makes that guarantee explicit and independent of the version.
        lock = threading.Lock()

        def on_next(message: Message) -> None:
            with lock:
                observer.on_next(message)

        subscription = reactivex.merge(*tagged).subscribe(
            on_next, observer.on_error, observer.on_completed, scheduler=scheduler
        )
        return subscription

    return reactivex.create(subscribe)


class _StreamName:
    """The stream a give-up error names: ``stream`` if given, else every stream name seen so far
    in combined-stream wrappers, sorted and joined by '/' (the key of a multiplex socket)."""

    __slots__ = ("_fixed", "_seen")

    def __init__(self, stream: str | None) -> None:
        if stream is not None and not isinstance(stream, str):
            raise InvalidInputError(f"invalid stream {stream!r}: a stream name (str), or ''")
        self._fixed = stream or ""
        self._seen: set[str] = set()

    def note(self, message: Any) -> None:
        """Remember the name of a combined-stream wrapper (a no-op when the name was given)."""
        if not self._fixed and message.__class__ is dict and "stream" in message:
            name = message["stream"]
            if name.__class__ is str and name not in self._seen and "data" in message:
                self._seen.add(name)

    def give_up(self, message: dict[str, Any]) -> ConnectionFailure:
        return give_up_error(message, self._fixed or "/".join(sorted(self._seen)))


def raise_on_give_up(stream: str = "") -> Callable[[Observable[_T]], Observable[_T]]:
    """Pass every message on, and turn the give-up dict into ``on_error(ConnectionFailure)``.

    A raw stream whose reconnects are spent emits ``{'e': 'error', 'm': 'Max reconnect retries
    reached'}`` and completes (python-binance's contract, kept for its users). Code that reads
    the messages' fields would then take that dict for data. After this operator it never sees
    it: the dict ends the subscription with :class:`~rxbinance.errors.ConnectionFailure`, whose
    message and ``stream`` attribute name the stream (``"bnbbtc@trade: Max reconnect retries
    reached"``), the same error every typed pipeline ends with. Everything else, including the
    completion of a source that did not give up and any error it raises, passes through
    unchanged; messages after the give-up dict are not delivered.

    ``stream`` names the stream in the error. Without it, the names seen in combined-stream
    wrappers (``{"stream": name, "data": ...}``, from ``multiplex`` or :func:`merge_tagged`) are
    used, sorted and joined by '/'; with neither, the message is the give-up dict's alone. The
    error is raised on the thread that delivered the dict (the socket's reader thread, or the
    streams' scheduler).

    .. code-block:: python

        prices = streams.trades("BNBBTC").pipe(
            rbo.raise_on_give_up("bnbbtc@trade"),
            ops.map(lambda m: float(m["p"])),   # never sees the give-up dict
        )
        prices.subscribe(print, on_error=lambda e: print("stopped:", e))

    ::

        trades:  --t1--t2--{'e': 'error', ...}|
        result:  --t1--t2--X(ConnectionFailure("bnbbtc@trade: Max reconnect retries reached"))
    """
    _StreamName(stream)  # validates it now, not at subscription

    def operator(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            names = _StreamName(stream)  # the names seen by this subscription

            def on_next(message: _T) -> None:
                if is_give_up(message):
                    observer.on_error(names.give_up(cast(dict[str, Any], message)))
                    return
                names.note(message)
                observer.on_next(message)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return reactivex.create(subscribe)

    return operator


# --------------------------------------------------------------------------------------------
# Delivery


def observe_on_bounded(
    scheduler: abc.SchedulerBase,
    maxsize: int,
    overflow: OverflowPolicy = "error",
    *,
    stream: str = "",
    on_overflow: Callable[[Overflow], None] | None = None,
    drops: DropCounters | None = None,
    streams: BinanceStreams | None = None,
) -> ObserveOnBounded:
    """Deliver on ``scheduler`` through a queue of at most ``maxsize`` items: ``observe_on``
    for consumers that may be slower than their stream.

    The source's thread (a socket's reader) only appends to the queue and never waits for the
    subscriber, so a slow subscriber cannot delay the socket; ``ops.observe_on`` does the same
    but its queue grows without limit. When an item arrives while ``maxsize`` items wait,
    ``overflow`` decides:

    - ``"error"`` (the default): the item is refused and the subscriber gets
      ``on_error(QueueOverflow)`` (its ``maxsize`` is the bound) after the waiting items; the
      source's subscription is disposed at once (for a stream of ``BinanceStreams``: the socket
      closes when it was the last subscriber). For data where a hole is unacceptable (trades).
    - ``"drop_oldest"``: the oldest waiting item is dropped, so the latest ``maxsize`` items
      wait: the subscriber sees every item of the recent past, late.
    - ``"latest"``: every waiting item is dropped and the new one waits alone: the subscriber
      skips the backlog and jumps to the present (conflation; right for books and tickers,
      where only the latest state matters). With ``maxsize=1`` the two drop policies are the
      same.

    ::

        source:         -1-2-3-4-5-6-|      maxsize=2; the subscriber is busy with 1 until 6
        "error":        -1-----------2-3-X  X: QueueOverflow(2); 4 refused, source disposed
        "drop_oldest":  -1-----------5-6-|  2, 3, 4 dropped
        "latest":       -1-----------6-|    2 and 3 dropped at 4, 4 and 5 at 6

    ``on_error`` and ``on_completed`` of the source wait behind the queued items and are never
    dropped. Order is kept, and the subscriber is called one call at a time, on the scheduler's
    thread, even on a thread pool: one scheduled action at a time delivers up to ``maxsize``
    waiting items, then schedules the next if more wait, so streams sharing one scheduler
    thread (an ``EventLoopScheduler``, an asyncio loop) take turns even when a subscriber never
    catches up. A subscriber that raises is logged (the first traceback, then a count) and
    keeps receiving; the scheduler's thread survives it. Disposing stops the delivery after the
    call in progress and frees the queue.

    **Counters.** The returned operator is applied with ``pipe`` and has a ``statistics()``
    method: a frozen :class:`BoundedStatistics` (``queued``, ``delivered``, ``dropped``,
    ``high_water``, ``overflows``) summed over every subscription made through it, readable
    from any thread while they run. ``drops``, a
    :class:`~rxbinance._reactive.bounded.DropCounters`, also counts every drop under the key
    ``stream`` (how ``BinanceStreams`` attributes drops to its streams).

    **Overflow events.** When the queue overflows, ``on_overflow`` is called with an
    :class:`~rxbinance.events.Overflow` event (``stream``, ``maxsize``, ``policy``, items
    ``dropped`` so far): once per spell of falling behind, i.e. at the first drop after the
    subscriber last caught up with everything queued. It runs on the source's thread (the
    socket's reader), outside any lock: keep it quick; what it raises is logged. Without it,
    each spell is logged as a WARNING on ``rxbinance.operators``. To see it among the
    streams' connection events: ``on_overflow=streams.context.emit_event``.

    ``streams``: the :class:`~rxbinance.BinanceStreams` the source comes from: its drops then
    count in ``streams.statistics()[stream].dropped`` and its overflow events go to
    ``streams.events`` (unless ``drops`` / ``on_overflow`` say otherwise).

    ``maxsize`` must be an int >= 1 and ``overflow`` one of ``"error"``, ``"drop_oldest"``,
    ``"latest"`` (InvalidInputError otherwise, at once). ``stream`` names the stream in the
    events, the drop counters and the log (``""``: unnamed).

    .. code-block:: python

        from reactivex.scheduler import EventLoopScheduler

        bounded = rbo.observe_on_bounded(
            EventLoopScheduler(), 1000, "drop_oldest", stream="btcusdt@trade", streams=streams
        )
        streams.trades("BTCUSDT").pipe(bounded).subscribe(store_in_database)
    """
    if streams is not None:
        context = streams.context
        drops = context.drops if drops is None else drops
        on_overflow = context.emit_event if on_overflow is None else on_overflow
    return ObserveOnBounded(
        scheduler, maxsize, overflow, stream=stream, on_overflow=on_overflow, drops=drops
    )


# --------------------------------------------------------------------------------------------
# Typed operators

_M = TypeVar("_M", bound=Event)
_K = TypeVar("_K", Kline, ContinuousKline)

Errors = Literal["raise", "skip"]
"""What a typed operator does with a payload that does not parse: ``"raise"`` ends the
subscription with the ParseError, ``"skip"`` logs a warning and drops the payload."""


def _check_errors(errors: object) -> None:
    if errors not in ("raise", "skip"):
        raise InvalidInputError(f"invalid errors={errors!r}: allowed are 'raise', 'skip'")


def _convert(
    convert: Callable[[Any], _T], errors: Errors, stream: str | None
) -> Callable[[Observable[Any]], Observable[_T]]:
    """map(convert), with the give-up dict as an error naming the stream (see
    :func:`raise_on_give_up`), a :class:`~rxbinance.events.Gap` passed on as it is (it marks a
    hole REST could not fill: not a payload), and ParseError handled per ``errors``."""
    _check_errors(errors)
    _StreamName(stream)  # validates it now, not at subscription

    def operator(source: Observable[Any]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            names = _StreamName(stream)

            def on_next(payload: Any) -> None:
                if is_give_up(payload):
                    observer.on_error(names.give_up(payload))
                    return
                if type(payload) is Gap:
                    # Passed on in place: typed as the model, like the give-up dict is typed as
                    # a payload upstream (Gap is documented on every sequenced stream).
                    observer.on_next(cast(_T, payload))
                    return
                names.note(payload)
                try:
                    value = convert(payload)
                except ParseError as exc:
                    if errors == "raise":
                        observer.on_error(exc)
                    else:
                        log.warning("dropped a payload that does not parse: %s", exc)
                    return
                observer.on_next(value)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return reactivex.create(subscribe)

    return operator


class _Parse(Protocol):
    """What :func:`parse` returns: an operator whose output type follows its input's payload
    type (an ``Observable[TradePayload]`` becomes an ``Observable[Trade]``), and the union of
    every model for anything else."""

    @overload
    def __call__(self, source: Observable[TradePayload], /) -> Observable[Trade]: ...
    @overload
    def __call__(self, source: Observable[AggTradePayload], /) -> Observable[AggTrade]: ...
    @overload
    def __call__(self, source: Observable[KlinePayload], /) -> Observable[Kline]: ...
    @overload
    def __call__(self, source: Observable[TickerPayload], /) -> Observable[Ticker]: ...
    @overload
    def __call__(
        self, source: Observable[RollingTickerPayload], /
    ) -> Observable[RollingTicker]: ...
    @overload
    def __call__(self, source: Observable[MiniTickerPayload], /) -> Observable[MiniTicker]: ...
    @overload
    def __call__(
        self, source: Observable[list[MiniTickerPayload]], /
    ) -> Observable[list[MiniTicker]]: ...
    @overload
    def __call__(self, source: Observable[BookTickerPayload], /) -> Observable[BookTicker]: ...
    @overload
    def __call__(self, source: Observable[AvgPricePayload], /) -> Observable[AvgPrice]: ...
    @overload
    def __call__(self, source: Observable[Any], /) -> Observable[Event | list[Event]]: ...


def parse(stream: str | None = None, *, errors: Errors = "raise") -> _Parse:
    """Parse each payload into its model (:func:`rxbinance.models.parse`).

    ``streams.trades("BNBBTC").pipe(rbo.parse())`` emits :class:`~rxbinance.models.Trade`
    values, and mypy sees an ``Observable[Trade]``: the raw stream methods are typed with
    :mod:`rxbinance.protocol.payloads` and ``parse`` maps each payload type to its model. The
    model is picked from the event type (``e``), or the shape for the spot payloads without one,
    and combined-stream wrappers are unwrapped, so it works on ``multiplex`` too (typed there as
    the union of every model: use :func:`parse_as` when you know it). An array payload
    (``!miniTicker@arr``) becomes a list of models. ``stream``, the stream name, makes parsing
    faster (:func:`~rxbinance.models.parser_for`) and gives partial depth payloads, which carry
    no symbol, their symbol.

    The give-up dict ends the subscription with ``on_error(ConnectionFailure)``; a payload that
    does not parse, with the ParseError (``errors="raise"``) or is logged and dropped
    (``errors="skip"``).
    """
    convert: Callable[[Any], Event | list[Event]]
    convert = parse_payload if stream is None else parser_for(stream)
    return cast(_Parse, _convert(convert, errors, stream))


def _as_model(model: type[_M], stream: str | None) -> Callable[[Any], _M]:
    events: tuple[str, ...] = getattr(model, "EVENT_TYPES", ())
    label: str = getattr(model, "EVENT_LABEL", model.__name__)
    fast = model.from_dict
    # Spot bookTicker has no "e": its "u" tells it from a wrapper or an envelope.
    shape_key = "u" if model is BookTicker else None

    def convert(payload: Any) -> _M:
        if payload.__class__ is dict:
            event_type = payload.get("e")
            if event_type in events or (event_type is None and shape_key in payload):
                return cast(_M, fast(payload))
        value = parse_payload(payload, stream)
        if isinstance(value, model):
            return value
        got = type(value).__name__ if not isinstance(value, list) else "a list"
        raise ParseError(label, f"expected a {model.__name__} payload, got {got}")

    return convert


def parse_as(
    model: type[_M], stream: str | None = None, *, errors: Errors = "raise"
) -> Callable[[Observable[Any]], Observable[_M]]:
    """Parse each payload as ``model``: the typed variant of :func:`parse`.

    ``streams.trades("BNBBTC").pipe(rbo.parse_as(Trade))`` is an ``Observable[Trade]`` to mypy
    and at run time. Accepts bare payloads and combined-stream wrappers. A payload of another
    event type (or a ParseError) ends the subscription with a ParseError, or is dropped with
    ``errors="skip"``; the give-up dict ends it with ``on_error(ConnectionFailure)``.
    ``stream`` gives :class:`~rxbinance.models.PartialDepth` its symbol.
    """
    return _convert(_as_model(model, stream), errors, stream)


def parse_list_as(
    model: type[_M], stream: str | None = None, *, errors: Errors = "raise"
) -> Callable[[Observable[Any]], Observable[list[_M]]]:
    """Parse each array payload (``!miniTicker@arr``, ``!ticker_1d@arr``) as a list of
    ``model``: ``streams.mini_ticker().pipe(rbo.parse_list_as(MiniTicker))`` is an
    ``Observable[list[MiniTicker]]``. A non-array payload is a ParseError; see :func:`parse_as`.
    """
    one = _as_model(model, stream)
    label: str = getattr(model, "EVENT_LABEL", model.__name__)

    def convert(payload: Any) -> list[_M]:
        if isinstance(payload, dict) and "stream" in payload and "data" in payload:
            payload = payload["data"]
        if not isinstance(payload, list):
            raise ParseError(label, f"expected a JSON array, got {type(payload).__name__}")
        return [one(item) for item in payload]

    return _convert(convert, errors, stream)


def _is_gap(item: object) -> bool:
    # A Gap travels in-band typed as the model (see _convert): mypy cannot see it there.
    return type(item) is Gap


def _series_key(kline: Kline | ContinuousKline) -> tuple[str, str]:
    if isinstance(kline, Kline):
        return kline.symbol, kline.interval
    return f"{kline.pair}_{kline.contract_type}", kline.interval


def closed_klines() -> Callable[[Observable[_K]], Observable[_K]]:
    """Only finished candles (``closed``, Binance's ``x = true``), each once.

    ``streams.klines("BNBBTC", "1m").pipe(rbo.parse_as(Kline), rbo.closed_klines())`` emits
    each minute's final candle once. "Once" is per (symbol, interval): a closed candle whose
    open time is not after the last one passed (a repeat after a reconnect, or an older one) is
    dropped. Works on Kline and ContinuousKline, and on a mix of symbols. A
    :class:`~rxbinance.events.Gap` (closed candles the stream could not refill) is passed on
    in place.

    ::

        k(t0, open) k(t0, open) k(t0, closed) k(t0, closed) k(t1, open) k(t1, closed)
        ---------------------------k(t0)----------------------------------k(t1)------>
    """

    def operator(source: Observable[_K]) -> Observable[_K]:
        def subscribe(
            observer: abc.ObserverBase[_K], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            last: dict[tuple[str, str], int] = {}

            def on_next(kline: _K) -> None:
                if _is_gap(kline):
                    observer.on_next(kline)  # the candles that are missing: said in place
                    return
                if not kline.closed:
                    return
                key = _series_key(kline)
                previous = last.get(key)
                if previous is not None and kline.open_time <= previous:
                    return
                last[key] = kline.open_time
                observer.on_next(kline)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return reactivex.create(subscribe)

    return operator


class _Bucket:
    """The resampled candle being built for one symbol.

    ``next_open`` is where the next part must open for the parts to tile the period without a
    hole; ``holed`` records that one did not (the first part opened after the period's open, or
    a part was missing between two others).
    """

    __slots__ = (
        "first",
        "high",
        "holed",
        "last",
        "low",
        "next_open",
        "open_time",
        "parts",
        "q",
        "qb",
        "qq",
        "v",
        "vb",
    )

    def __init__(self, open_time: int, first: Kline) -> None:
        self.open_time = open_time
        self.next_open = open_time
        self.holed = False
        self.first = first
        self.last = first
        self.high = first.high
        self.low = first.low
        self.v = self.q = self.vb = self.qb = Decimal(0)
        self.qq = 0  # trades
        self.parts: list[Kline] = []

    def add(self, kline: Kline) -> None:
        if kline.open_time != self.next_open:
            self.holed = True
        self.next_open = kline.close_time + 1
        self.last = kline
        self.high = max(self.high, kline.high)
        self.low = min(self.low, kline.low)
        self.v += kline.volume
        self.q += kline.quote_volume
        self.vb += kline.taker_buy_base_volume
        self.qb += kline.taker_buy_quote_volume
        self.qq += kline.trades
        self.parts.append(kline)

    def complete(self, close_time: int) -> bool:
        """True when the parts tile ``[open_time, close_time]`` exactly, with no hole."""
        return not self.holed and self.next_open == close_time + 1

    def covered(self) -> int:
        """Milliseconds of the period the parts cover."""
        return sum(k.close_time - k.open_time + 1 for k in self.parts)

    def candle(self, interval: str, close_time: int) -> Kline:
        traded = [k for k in self.parts if k.first_trade_id != -1]
        return Kline(
            event_time=self.last.event_time,
            symbol=self.first.symbol,
            interval=interval,
            open_time=self.open_time,
            close_time=close_time,
            open=self.first.open,
            high=self.high,
            low=self.low,
            close=self.last.close,
            volume=self.v,
            quote_volume=self.q,
            taker_buy_base_volume=self.vb,
            taker_buy_quote_volume=self.qb,
            trades=self.qq,
            first_trade_id=traded[0].first_trade_id if traded else -1,
            last_trade_id=traded[-1].last_trade_id if traded else -1,
            closed=True,
        )


def resample(
    interval: str, *, utc_offset: str = "+00:00"
) -> Callable[[Observable[Kline]], Observable[Kline]]:
    """Build ``interval`` candles from smaller closed ones (``1m`` into ``1h``, ``1d`` into
    ``1M``...). Only complete periods are emitted: a candle built from part of its period's
    data is dropped, never passed on as if it were whole.

    Only closed candles are used (open ones are ignored, so it may follow the raw kline stream
    or :func:`closed_klines`). Boundaries are Binance's: multiples of the interval since the
    epoch (``3d`` included), Monday 00:00 for ``1w``, the 1st of the month for ``1M``,
    computed at ``utc_offset`` (``"+08:00"`` to match a ``@+08:00`` kline stream). Open, high,
    low and close, the volumes and the trade count are aggregated; trade ids are the first and
    last known; ``event_time`` is that of the last part.

    A period is **complete** when its parts tile it exactly: the first opens at the period's
    open, each next one opens 1 ms after the previous one's close time, and the last closes at
    the period's close. Binance publishes a candle for every interval, trades or not (an empty
    one has ``trades == 0``), so a hole is data this subscription did not get. A complete
    period is emitted (``closed=True``) as soon as the part ending it arrives. A period that is
    not complete is dropped, never emitted:

    - the **leading** period, when the data starts after its open (``1s`` history starting at
      10:00:37 gives no 10:00 minute: the first candle is 10:01), logged at DEBUG;
    - a period with a **hole** (a part missing at its start, between two parts or at its end),
      once it is over (its last part arrived, or a part of a later period did), logged as a
      WARNING naming the symbol, the period and how much of it the parts cover;
    - the **trailing** period, when the source ends before the part ending it arrived.

    So every candle emitted aggregates every candle of its period, and lost data shows as a
    missing candle (the next candle's ``open_time`` jumps), never as a wrong one. A period
    Binance itself has a hole in (a few exchange outages in its history) is dropped too:
    resample that span from Binance's own longer candles. A :class:`~rxbinance.events.Gap` in
    the source (parts the stream could not refill; its bounds are the parts' open times) is
    passed on in place, so the missing period is explained, never silent.

    Parts older than the period being built, repeated or overlapping the previous part are
    ignored. Each symbol is resampled on its own. A part longer than one period (``1h`` into
    ``15m``, ``1w`` into ``1M``) ends the subscription with ``on_error(InvalidInputError)``.

    ::

        1m parts:  [10:00] [10:01] ... [10:59] [11:00] ... [11:59]
        "1h":                            [10:00-10:59] ... [11:00-11:59]->

        1m parts:  [10:30] ... [10:59] [11:00] ... [11:59]
        "1h":                (10:00: leading, dropped) ... [11:00-11:59]->

        1m parts:  [10:00] ... [10:41] [10:45] ... [10:59] [11:00] ... [11:59]
        "1h":                  (10:00: 10:42-10:44 missing, dropped) [11:00-11:59]->
    """
    check_interval(interval)
    offset = parse_utc_offset(utc_offset)

    def operator(source: Observable[Kline]) -> Observable[Kline]:
        def subscribe(
            observer: abc.ObserverBase[Kline], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            building: dict[str, _Bucket] = {}
            done: dict[str, int] = {}  # symbol -> open time of the last period closed

            def close(symbol: str, bucket: _Bucket) -> None:
                """The period of ``bucket`` is over: emit it if complete, else drop it."""
                del building[symbol]
                leading = symbol not in done
                done[symbol] = bucket.open_time
                end = candle_close(interval, bucket.open_time, offset)
                if bucket.complete(end):
                    observer.on_next(bucket.candle(interval, end))
                    return
                share = bucket.covered() / (end - bucket.open_time + 1)
                opened = _utc_text(bucket.open_time)
                if leading and bucket.parts[0].open_time != bucket.open_time:
                    log.debug(
                        "resample(%r): %s: dropped the leading period %s: the data starts at %s",
                        interval,
                        symbol,
                        opened,
                        _utc_text(bucket.parts[0].open_time),
                    )
                else:
                    log.warning(
                        "resample(%r): %s: dropped the period %s: parts missing, the parts "
                        "received cover %.1f%% of it",
                        interval,
                        symbol,
                        opened,
                        100 * share,
                    )

            def on_next(kline: Kline) -> None:
                if _is_gap(kline):
                    observer.on_next(kline)  # why the period around it will be missing
                    return
                if not kline.closed:
                    return
                symbol = kline.symbol
                start = candle_open(interval, kline.open_time, offset)
                end = candle_close(interval, start, offset)
                if kline.close_time > end:
                    observer.on_error(
                        InvalidInputError(
                            f"cannot resample {kline.interval!r} candles into {interval!r}: "
                            f"the candle opening at {kline.open_time} spans two periods"
                        )
                    )
                    return
                finished = done.get(symbol)
                if finished is not None and start <= finished:
                    return  # its period was closed already
                bucket = building.get(symbol)
                if bucket is not None and bucket.open_time != start:
                    if start < bucket.open_time:
                        return  # older than the period being built
                    # A later period started: the one being built is over, its end missing.
                    close(symbol, bucket)
                    bucket = None
                if bucket is None:
                    bucket = building[symbol] = _Bucket(start, kline)
                elif kline.open_time < bucket.next_open:
                    return  # a repeat, or a part overlapping the previous one
                bucket.add(kline)
                if kline.close_time == end:
                    close(symbol, bucket)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return reactivex.create(subscribe)

    return operator


def _utc_text(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class _Quoted(Protocol):
    """Anything with a spread and a mid: Quote, OrderBook."""

    @property
    def spread(self) -> Decimal | None: ...

    @property
    def mid(self) -> Decimal | None: ...


def _pick(attribute: str) -> Callable[[Observable[_Quoted]], Observable[Decimal]]:
    def operator(source: Observable[_Quoted]) -> Observable[Decimal]:
        def subscribe(
            observer: abc.ObserverBase[Decimal], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            def on_next(item: _Quoted) -> None:
                value = getattr(item, attribute)
                if value is not None:
                    observer.on_next(value)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return reactivex.create(subscribe)

    return operator


def spread() -> Callable[[Observable[_Quoted]], Observable[Decimal]]:
    """The spread (best ask price - best bid price) of each Quote or OrderBook, as Decimal.

    ``rxbinance.best_bid_ask(streams, "BTCUSDT").pipe(rbo.spread())``. Books with an empty
    side have no spread and are skipped.
    """
    return _pick("spread")


def mid() -> Callable[[Observable[_Quoted]], Observable[Decimal]]:
    """The mid price ((best bid + best ask) / 2) of each Quote or OrderBook, as Decimal.

    ``rxbinance.order_book(streams, "BTCUSDT").pipe(rbo.mid())``. Books with an empty side
    have no mid and are skipped.
    """
    return _pick("mid")


def _import_pandas() -> Any:
    try:
        # An optional extra, imported only when asked for (and typed Any: no stubs needed).
        pandas = importlib.import_module("pandas")
    except ImportError as exc:
        raise ModuleNotFoundError(
            "to_dataframe() needs pandas: pip install 'rxbinance[pandas]'", name="pandas"
        ) from exc
    return pandas


def _row(item: Any, exact: bool) -> dict[str, Any]:
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        row = {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
    elif isinstance(item, Mapping):
        row = dict(item)
    else:
        raise TypeError(f"to_dataframe() takes models or dicts, not {type(item).__name__}")
    if not exact:
        for name, value in row.items():
            if isinstance(value, Decimal):
                row[name] = float(value)
    return row


def to_dataframe(
    *,
    key: str | None = None,
    max_rows: int | None = None,
    batch: bool = False,
    exact: bool = False,
) -> Callable[[Observable[Any]], Observable[Any]]:
    """Models (or dicts) as pandas DataFrames, live-updating or batched.

    One column per model field. Prices and quantities become floats (``exact=True`` keeps
    the Decimals, in object columns); int millisecond columns named ``*_time`` become UTC
    datetimes. ``key`` names the column that identifies a row: it becomes the index, and a
    later row with the same key replaces the earlier one (``key="open_time"`` keeps one row
    per candle while the open candle updates in place).

    - live-updating (``batch=False``, the default): after each item, the frame of every row so
      far (the last ``max_rows`` if given), in arrival order;
    - batched (``batch=True``): each item is a list of models (put ``ops.buffer_with_time(1.0)``
      or ``ops.buffer_with_count(100)`` before it) and becomes a frame of those rows alone;
      empty lists are skipped.

    .. code-block:: python

        candles.pipe(rbo.to_dataframe(key="open_time", max_rows=500)).subscribe(plot)

    pandas is an optional extra: without it this raises, at once, ``ModuleNotFoundError:
    to_dataframe() needs pandas: pip install 'rxbinance[pandas]'``. Building a frame costs
    O(rows) per emission: for very fast streams, batch or buffer first. A
    :class:`~rxbinance.events.Gap` (a hole REST could not fill) is not a row: it is skipped
    here (subscribe to ``BinanceStreams.events`` to see it).
    """
    pd = _import_pandas()
    if max_rows is not None and (isinstance(max_rows, bool) or max_rows < 1):
        raise InvalidInputError(f"invalid max_rows {max_rows!r}: an int >= 1, or None")

    def frame(rows: list[dict[str, Any]]) -> Any:
        df = pd.DataFrame.from_records(rows)
        for column in df.columns:
            if str(column).endswith("_time") and pd.api.types.is_integer_dtype(df[column]):
                df[column] = pd.to_datetime(df[column], unit="ms", utc=True)
        if key is not None and key in df.columns:
            df = df.set_index(key)
        return df

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            rows: dict[Any, dict[str, Any]] = {}
            counter = 0
            names = _StreamName(None)

            def on_next(item: Any) -> None:
                nonlocal counter
                if is_give_up(item):
                    observer.on_error(names.give_up(item))
                    return
                if type(item) is Gap:
                    return  # a hole, not a row (it is on BinanceStreams.events too)
                names.note(item)
                if batch:
                    batch_rows: dict[Any, dict[str, Any]] = {}
                    for one in item:
                        if type(one) is Gap:
                            continue
                        row = _row(one, exact)
                        batch_rows[row.get(key) if key else len(batch_rows)] = row
                    if batch_rows:
                        observer.on_next(frame(list(batch_rows.values())))
                    return
                row = _row(item, exact)
                if key is not None:
                    rows.pop(row.get(key), None)  # a replaced row moves to the end
                    rows[row.get(key)] = row
                else:
                    counter += 1
                    rows[counter] = row
                while max_rows is not None and len(rows) > max_rows:
                    del rows[next(iter(rows))]
                observer.on_next(frame(list(rows.values())))

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return reactivex.create(subscribe)

    return operator
