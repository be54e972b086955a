"""BinanceStreams: every Binance market stream as a hot, shared, self-healing Observable.

.. code-block:: python

    import reactivex.operators as ops
    from rxbinance import BinanceStreams

    with BinanceStreams() as streams:
        sub = streams.trades("BNBBTC").pipe(ops.map(lambda m: m["p"])).subscribe(print)

Semantics every method shares:

- **Hot, shared, ref-counted, one socket per stream key.** The key is the Binance stream name
  (``bnbbtc@trade``) or, for :meth:`BinanceStreams.multiplex`, the sorted names joined by '/'.
  The first subscriber opens the socket, later subscribers share it, the last dispose closes it
  (at once, with a close frame). A subscriber arriving after that opens a fresh socket. Calling a
  method twice returns two Observable objects onto the same socket.
- **Validated before anything opens.** A bad symbol, interval, depth level, speed, window or
  stream name raises ``ValueError`` (:class:`~rxbinance.errors.InvalidInputError`) naming it and
  what is allowed.
- **Self-healing.** A dropped connection (abnormal close, close 1000/1001, handshake failure,
  refused connection, or a stall: no data and no ping for ``stall_timeout`` seconds) is reopened
  after an exponential, jittered delay from ``retry_delay`` up to ``max_retry_delay``.
  ``serverShutdown`` reopens at once and does not count. ``max_retries`` counts consecutive failed
  attempts; a connection that delivers a message resets it. When the last retry fails, every
  subscriber receives ``{'e': 'error', 'm': 'Max reconnect retries reached'}`` as a message, then
  ``on_completed``; the key is forgotten, so a later subscriber starts afresh.
- **Connection state apart from data**: :attr:`BinanceStreams.events` emits
  :mod:`rxbinance.events` (connecting, connected, disconnected, reconnecting, gave up, malformed
  frame), each naming its stream key.
- **Threads.** Each socket is read by its own daemon thread (named ``rxbinance:<key>``), and
  subscribers are called on it, in order, unless ``scheduler=`` names a reactivex scheduler to
  deliver on. A slow subscriber on the reader thread delays that socket (and, if it is slow
  enough, Binance drops it): move heavy work off it with ``ops.observe_on(scheduler)`` or the
  ``scheduler=`` argument. A subscriber that raises is logged and stays subscribed; the socket and
  the other subscribers carry on.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.scheduler import EventLoopScheduler

from rxbinance._reactive.reconnect import ReconnectPolicy
from rxbinance._reactive.shared import SharedConnection, SocketLike, StreamRegistry
from rxbinance.errors import ConnectionFailure, InvalidInputError
from rxbinance.events import ConnectionEvent
from rxbinance.protocol import names
from rxbinance.protocol.endpoints import combined_url, endpoints_for, raw_url
from rxbinance.transport import StreamSocket

if TYPE_CHECKING:
    from rxbinance.rest import Client

__all__ = ["BinanceStreams", "Message", "StreamStatistics"]

log = logging.getLogger("rxbinance.streams")

#: A Binance message as decoded JSON: a dict for most streams.
Message = dict[str, Any]

#: Binance allows at most this many streams on one connection (binance-protocol.md 2).
MAX_STREAMS_PER_CONNECTION = 1024

_JOIN_TIMEOUT = 2.0


class StreamStatistics:
    """A snapshot of one live stream key: ``subscribers``, ``connects`` (sockets opened so far,
    the first included) and ``messages`` (data messages delivered by its current socket)."""

    __slots__ = ("connects", "key", "messages", "subscribers")

    def __init__(self, key: str, subscribers: int, connects: int, messages: int) -> None:
        self.key = key
        self.subscribers = subscribers
        self.connects = connects
        self.messages = messages

    def __repr__(self) -> str:
        return (
            f"StreamStatistics(key={self.key!r}, subscribers={self.subscribers}, "
            f"connects={self.connects}, messages={self.messages})"
        )


class BinanceStreams:
    """Binance WebSocket market streams as hot, shared, ref-counted, self-healing Observables.

    Keyword arguments, grouped by concern:

    - where: ``market`` (``"spot"``), or explicit ``ws_url`` / ``rest_url`` / ``ws_api_url``,
      which override the market's endpoints (point them at
      :class:`rxbinance.testing.FakeBinance` in tests);
    - healing: ``max_retries`` (5), ``retry_delay`` (1.0 s), ``max_retry_delay`` (30.0 s),
      ``stall_timeout`` (60.0 s without data or ping), ``connect_timeout`` (10.0 s);
    - delivery: ``scheduler``, a reactivex scheduler to call subscribers on instead of the
      socket's reader thread (in Jupyter: ``AsyncIOThreadSafeScheduler(loop)``);
    - the escape hatch: ``ssl_context`` for ``wss://`` endpoints with a private CA.

    Use it as a context manager or call :meth:`close`, which closes every socket, completes every
    subscriber and joins the reader threads.
    """

    def __init__(
        self,
        *,
        market: str = "spot",
        ws_url: str | None = None,
        rest_url: str | None = None,
        ws_api_url: str | None = None,
        max_retries: int = 5,
        retry_delay: float = 1.0,
        max_retry_delay: float = 30.0,
        stall_timeout: float = 60.0,
        connect_timeout: float = 10.0,
        scheduler: abc.SchedulerBase | None = None,
        ssl_context: ssl.SSLContext | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
    ) -> None:
        endpoints = endpoints_for(market)
        self._api_key = api_key
        self._api_secret = api_secret
        self.market = market
        self.ws_url = (ws_url or endpoints.ws_url).rstrip("/")
        self.rest_url = (rest_url or endpoints.rest_url).rstrip("/")
        self.ws_api_url = ws_api_url or endpoints.ws_api_url
        self.policy = ReconnectPolicy(
            max_retries=max_retries, retry_delay=retry_delay, max_retry_delay=max_retry_delay
        )
        if not stall_timeout > 0:
            raise InvalidInputError(f"stall_timeout must be > 0 seconds, got {stall_timeout!r}")
        self._stall_timeout = stall_timeout
        self._connect_timeout = connect_timeout
        self._ssl_context = ssl_context
        self._events = reactivex.subject.Subject[ConnectionEvent]()
        self._events_lock = threading.Lock()
        # Reconnect delays run here: one named daemon thread that exits when idle.
        self._timers = EventLoopScheduler(
            thread_factory=lambda target: threading.Thread(
                target=target, name="rxbinance-timers", daemon=True
            ),
            exit_if_empty=True,
        )
        self._registry = StreamRegistry(make_connection=self._make_connection, scheduler=scheduler)
        self._rest: Client | None = None
        self._rest_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> BinanceStreams:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every socket, complete every subscriber, and join the reader threads.

        Idempotent. Safe to call from a subscriber's callback (its own reader thread is not
        joined). After ``close()`` new subscriptions fail with ``RuntimeError``.
        """
        connections = self._registry.close()
        self._timers.dispose()
        current = threading.current_thread()
        deadline = time.monotonic() + _JOIN_TIMEOUT
        for connection in connections:
            for sock in connection.sockets:
                if getattr(sock, "thread", None) is not current:
                    sock.join(max(0.0, deadline - time.monotonic()))
        with self._events_lock:
            self._events.on_completed()
        with self._rest_lock:
            rest, self._rest = self._rest, None
        if rest is not None:
            rest.close()

    @property
    def rest(self) -> Client:
        """The REST client of these streams (created on first use): a
        :class:`rxbinance.rest.Client` on ``rest_url`` for ``market``, with the streams'
        ``api_key``/``api_secret``. Pipelines fetch snapshots and history with it; it is
        closed by :meth:`close`."""
        from rxbinance.rest import Client  # rest imports requests: only when needed

        with self._rest_lock:
            if self._rest is None:
                self._rest = Client(
                    api_key=self._api_key,
                    api_secret=self._api_secret,
                    base_url=self.rest_url,
                    market=self.market,
                )
            return self._rest

    def __repr__(self) -> str:
        return f"BinanceStreams(market={self.market!r}, ws_url={self.ws_url!r})"

    # -- connection state --------------------------------------------------------------------

    @property
    def events(self) -> Observable[ConnectionEvent]:
        """Connection events of every stream key (see :mod:`rxbinance.events`).

        Emitted on the thread where they happen (reader or timer thread), one at a time.
        Filter by ``event.stream`` for one key.
        """
        return self._events

    def statistics(self) -> dict[str, StreamStatistics]:
        """A snapshot of every live stream key."""
        result = {}
        for key, connection in self._registry.live().items():
            sockets = connection.sockets
            result[key] = StreamStatistics(
                key,
                subscribers=len(connection.fanout.observers),
                connects=connection.connects,
                messages=sockets[-1].messages if sockets else 0,
            )
        return result

    def _emit_event(self, event: ConnectionEvent) -> None:
        # Subject does not serialize concurrent on_next calls; readers of different keys and the
        # timer thread all report here.
        with self._events_lock:
            try:
                self._events.on_next(event)
            except Exception:
                log.exception("a subscriber of BinanceStreams.events raised")

    def _make_connection(self, key: str, url: str) -> SharedConnection:
        return SharedConnection(
            key,
            url,
            open_socket=self._open_socket,
            policy=self.policy,
            timer_scheduler=self._timers,
            emit_event=self._emit_event,
            on_terminated=self._registry.terminated,
        )

    def _open_socket(
        self,
        url: str,
        *,
        key: str,
        on_message: Callable[[Any], None],
        on_event: Callable[[ConnectionEvent], None],
        on_closed: Callable[[ConnectionFailure | None], None],
    ) -> SocketLike:
        return StreamSocket(
            url,
            key=key,
            on_message=on_message,
            on_event=on_event,
            on_closed=on_closed,
            stall_timeout=self._stall_timeout,
            connect_timeout=self._connect_timeout,
            ssl_context=self._ssl_context,
        )

    # -- streams -----------------------------------------------------------------------------

    def stream(self, name: str) -> Observable[Any]:
        """Any market stream by its Binance name, e.g. ``"btcusdt@kline_1M"``.

        Payloads arrive bare (a dict, or a list for ``!...@arr`` streams). The name must be
        exactly Binance's: lowercase symbol, documented suffix.
        """
        names.validate_stream_name(name)
        return self._registry.observable(name, raw_url(self.ws_url, name))

    def trades(self, symbol: str) -> Observable[Message]:
        """Every trade of ``symbol`` (``<symbol>@trade``), real time."""
        return self.stream(names.trade_stream(symbol))

    def agg_trades(self, symbol: str) -> Observable[Message]:
        """Aggregate trades of ``symbol`` (``<symbol>@aggTrade``), real time."""
        return self.stream(names.agg_trade_stream(symbol))

    def depth(self, symbol: str, levels: int | None = None, speed: int = 1000) -> Observable[Any]:
        """Order book depth of ``symbol``.

        ``levels=None``: diff depth (``depthUpdate`` events, for a local book); ``levels`` 5, 10
        or 20: partial book snapshots ``{"lastUpdateId", "bids", "asks"}``, which carry no symbol.
        ``speed``: update period in ms, 1000 or 100.
        """
        return self.stream(names.depth_stream(symbol, levels, speed))

    def klines(self, symbol: str, interval: str = "1m") -> Observable[Message]:
        """Candles of ``symbol`` (``<symbol>@kline_<interval>``); ``"1M"`` is a month, ``"1m"`` a
        minute. ``k.x`` is true on the last update of a candle."""
        return self.stream(names.kline_stream(symbol, interval))

    def symbol_ticker(self, symbol: str) -> Observable[Message]:
        """24 h rolling statistics of ``symbol`` (``<symbol>@ticker``), every second."""
        return self.stream(names.symbol_ticker_stream(symbol))

    def rolling_ticker(self, symbol: str, window: str = "1h") -> Observable[Message]:
        """Rolling-window statistics of ``symbol`` (``<symbol>@ticker_<window>``), window 1h, 4h
        or 1d, every second."""
        return self.stream(names.rolling_ticker_stream(symbol, window))

    def ticker(self) -> Observable[Any]:
        """All-market tickers: a list of the symbols whose ticker changed, every second.

        Binance retired ``!ticker@arr`` on spot on 2026-03-26. This is its living equivalent,
        ``!ticker_1d@arr``: the same statistics over a rolling 1-day window (``e`` is
        ``"1dTicker"``; no best bid/ask fields, which ``!ticker@arr`` had).
        """
        return self.stream(names.rolling_ticker_stream(None, "1d"))

    def mini_ticker(self, symbol: str | None = None, update_time: int = 1000) -> Observable[Any]:
        """Mini tickers of ``symbol`` (``<symbol>@miniTicker``), or of every symbol that changed
        (``!miniTicker@arr``, a list) when ``symbol`` is None.

        Binance sends every second. ``update_time`` above 1000 ms is honoured here, per
        subscriber, on the event time ``E``: at most one message per ``update_time``. For the
        all-market list, the symbols seen in between are merged (latest per symbol) into the one
        list emitted, so no symbol's update is lost.
        """
        if isinstance(update_time, bool) or not isinstance(update_time, int) or update_time < 1000:
            raise InvalidInputError(
                f"invalid update_time {update_time!r}: an int of milliseconds >= 1000"
            )
        source = self.stream(names.mini_ticker_stream(symbol))
        if update_time == 1000:
            return source
        return source.pipe(_throttle_by_event_time(update_time, merge_lists=symbol is None))

    def book_ticker(self, symbol: str) -> Observable[Message]:
        """Best bid and ask of ``symbol`` (``<symbol>@bookTicker``), real time. No ``e`` field."""
        return self.stream(names.book_ticker_stream(symbol))

    def avg_price(self, symbol: str) -> Observable[Message]:
        """The 5 minute average price of ``symbol`` (``<symbol>@avgPrice``), every second."""
        return self.stream(names.avg_price_stream(symbol))

    def multiplex(self, stream_names: Iterable[str]) -> Observable[Message]:
        """Several streams on one combined socket (``/stream?streams=a/b``).

        Emits ``{"stream": name, "data": payload}``; the stream name is the only way to tell
        apart payloads without a symbol (partial depth). Names must be Binance stream names,
        lowercase; user data streams are refused. Shared and ref-counted like every stream, keyed
        by the sorted set of names, so ``multiplex(["a", "b"])`` and ``multiplex(["b", "a"])``
        share one socket. See :func:`rxbinance.operators.demultiplex` to split it again.
        """
        checked = names.validate_stream_names(stream_names)
        if len(checked) > MAX_STREAMS_PER_CONNECTION:
            raise InvalidInputError(
                f"{len(checked)} streams requested: Binance allows at most "
                f"{MAX_STREAMS_PER_CONNECTION} on one connection"
            )
        return self._registry.observable(
            names.combined_key(checked), combined_url(self.ws_url, checked)
        )


def _throttle_by_event_time(
    period_ms: int, *, merge_lists: bool
) -> Callable[[Observable[Any]], Observable[Any]]:
    """At most one message per ``period_ms`` of exchange event time (``E``).

    Passes a message when ``period_ms`` has elapsed since the last one passed. Lists (the
    all-market stream) are merged per symbol meanwhile, so the list that passes carries the latest
    update of every symbol seen since the last one. Messages without ``E`` (the give-up dict)
    always pass.
    """

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            last_passed: int | None = None
            pending: dict[str, Any] = {}

            def on_next(message: Any) -> None:
                nonlocal last_passed
                if isinstance(message, list):
                    if not message:
                        return
                    for ticker in message:
                        pending[ticker.get("s")] = ticker
                    event_time = max(int(t.get("E", 0)) for t in message)
                elif isinstance(message, dict) and "E" in message:
                    event_time = int(message["E"])
                else:
                    observer.on_next(message)
                    return
                if last_passed is not None and event_time - last_passed < period_ms:
                    return
                last_passed = event_time
                if merge_lists and isinstance(message, list):
                    message = list(pending.values())
                    pending.clear()
                observer.on_next(message)

            subscription = source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )
            return Disposable(subscription.dispose)

        return reactivex.create(subscribe)

    return operator
