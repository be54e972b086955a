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
- **Markets.** ``market`` picks the endpoints (``"spot"``, ``"spot-testnet"``, ``"spot-demo"``,
  ``"usdm"``, ``"usdm-testnet"``). On USD-M futures every stream goes to its routed path
  automatically (``/public`` for bookTicker and depth, ``/market`` for the rest, ``/private`` for
  user data): a stream on the wrong route connects and silently delivers nothing, so the library
  chooses, never the caller. Spot-only methods (:meth:`BinanceStreams.trades`,
  :meth:`~BinanceStreams.avg_price`, :meth:`~BinanceStreams.rolling_ticker`) raise
  ``ValueError`` on USD-M, and USD-M-only ones (:meth:`~BinanceStreams.mark_price`,
  :meth:`~BinanceStreams.force_orders`, :meth:`~BinanceStreams.continuous_klines`) on spot,
  naming the market.
- **User data.** :meth:`BinanceStreams.user` (with ``api_key``/``api_secret``) is a stream like
  the others: hot, shared, ref-counted, healed, with the same give-up dict; Binance refusing the
  key or signature ends it with ``on_error`` (see there).
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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.scheduler import EventLoopScheduler

from rxbinance._reactive.attempts import DEFAULT_ATTEMPTS, ConnectionAttempts, attempts_for
from rxbinance._reactive.budget import default_budget
from rxbinance._reactive.connection import SharedConnection
from rxbinance._reactive.context import StreamsContext, Threads
from rxbinance._reactive.hub import Broadcast, Hub, Sink
from rxbinance._reactive.meter import MeterReading
from rxbinance._reactive.pool import Pool, PooledStream
from rxbinance._reactive.reconnect import ReconnectPolicy
from rxbinance._reactive.redundancy import RedundancyStatistics, RedundantConnection
from rxbinance._reactive.repair import (
    AggTradeBackfill,
    Backfill,
    KlineBackfill,
    RepairingSink,
    RepairStatistics,
    TradeBackfill,
)
from rxbinance._reactive.user_data import (
    USER_DATA_KEY,
    ListenKeyHolder,
    SpotUserSession,
    UsdmUserSocket,
    classify_ws_api,
)
from rxbinance.errors import InvalidInputError, RxBinanceError
from rxbinance.events import ConnectionEvent
from rxbinance.models import BookTicker, ParseError, Quote
from rxbinance.protocol import names
from rxbinance.protocol.endpoints import (
    combined_url,
    endpoints_for,
    raw_url,
    routed_combined_url,
    routed_raw_url,
)
from rxbinance.protocol.frames import give_up_error, is_give_up
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
from rxbinance.protocol.sequence import CandleSequence, DepthSequence, IdSequence
from rxbinance.protocol.signing import Signer, load_signer
from rxbinance.transport import SocketFactory, SocketLike, StreamSocket

if TYPE_CHECKING:
    from rxbinance.rest import Client

__all__ = ["BinanceStreams", "Message", "StreamStatistics"]

log = logging.getLogger("rxbinance.streams")

#: A Binance message as decoded JSON: a dict for most streams.
Message = dict[str, Any]

#: Binance allows at most this many streams on one connection (binance-protocol.md 2, 8.2).
MAX_STREAMS_PER_CONNECTION = 1024
MAX_USDM_STREAMS_PER_CONNECTION = 200

_USDM_MARKETS = ", ".join(repr(m) for m in ("usdm", "usdm-testnet"))

_JOIN_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class StreamStatistics:
    """A snapshot of one live stream key.

    ``subscribers``: subscribers now; ``connects``: sockets opened since the key went live, the
    first included; ``reconnects``: those opened after a connection failed (rollovers and the
    first socket of each copy are not reconnects); ``messages``: data messages received since
    the key went live, over every socket it had (with ``redundancy``, over every copy);
    ``rollovers``: connections replaced make-before-break (``rollover_after``,
    ``serverShutdown``).

    Measured as the sockets receive (REST refills excluded), by the local clock:
    ``rate_1s``: messages received in the last whole second; ``rate_60s``: messages per second
    over the last minute (or since the key went live); ``lag_p50_ms`` / ``lag_p99_ms``: local
    receive time minus Binance's event time ``E``, over the last minute (sampled, at most 100
    messages a second; None for streams without ``E``, such as spot bookTicker, and before the
    first message; includes the clocks' offset); ``last_message_age``: seconds since the last
    message (None before the first). With ``redundancy``: the busiest copy's rates, the best
    lag, the freshest message.

    For sequenced streams (aggTrade, trade, kline), ``repair``: the holes found, messages
    repaired from REST, Gaps delivered, repeats dropped, REST calls and weight spent, holes
    filled (None for other streams); :attr:`gaps_repaired`, :attr:`gaps_unrepaired` and
    :attr:`rest_weight` read it. ``dropped``: messages of this key dropped by bounded delivery
    (:func:`rxbinance.operators.observe_on_bounded` with ``streams=`` and ``stream=`` the key). With
    ``BinanceStreams(redundancy=...)``, ``redundancy``: per copy, how many messages it delivered
    first and how many of its messages another copy had delivered already. With
    ``BinanceStreams(pool=True)``, ``connection``: the pooled connection carrying the stream
    (``"pool-1"``, ``"pool-market-2"``: also its reader thread's name after ``rxbinance:``).
    """

    key: str
    subscribers: int
    connects: int
    messages: int
    rollovers: int = 0
    repair: RepairStatistics | None = None
    redundancy: RedundancyStatistics | None = None
    reconnects: int = 0
    rate_1s: float = 0.0
    rate_60s: float = 0.0
    lag_p50_ms: float | None = None
    lag_p99_ms: float | None = None
    last_message_age: float | None = None
    dropped: int = 0
    connection: str | None = None

    @property
    def gaps_repaired(self) -> int:
        """Holes refilled completely from REST."""
        return 0 if self.repair is None else self.repair.filled

    @property
    def gaps_unrepaired(self) -> int:
        """Gaps delivered: holes, or parts of holes, REST could not fill."""
        return 0 if self.repair is None else self.repair.gaps

    @property
    def rest_weight(self) -> int:
        """REST request weight the repairs spent (calls that reached Binance)."""
        return 0 if self.repair is None else self.repair.rest_weight

    def summary(self) -> str:
        """One line for a status bar: ``btcusdt@trade 1 sub, 52.0/s (1 min 48.3/s), lag p50
        3 ms p99 12 ms, last 0.1 s ago, 1,234 msgs, 0 reconnects, gaps 2 repaired 0 lost``."""
        subs = "sub" if self.subscribers == 1 else "subs"
        parts = [f"{self.key} {self.subscribers} {subs}, {self.rate_1s:.1f}/s "
                 f"(1 min {self.rate_60s:.1f}/s)"]  # fmt: skip
        if self.lag_p50_ms is not None and self.lag_p99_ms is not None:
            parts.append(f"lag p50 {self.lag_p50_ms:.0f} ms p99 {self.lag_p99_ms:.0f} ms")
        if self.last_message_age is not None:
            parts.append(f"last {self.last_message_age:.1f} s ago")
        parts.append(f"{self.messages:,} msgs")
        parts.append(f"{self.reconnects} reconnect{'' if self.reconnects == 1 else 's'}")
        if self.repair is not None:
            parts.append(f"gaps {self.gaps_repaired} repaired {self.gaps_unrepaired} lost")
        if self.dropped:
            parts.append(f"{self.dropped:,} dropped")
        return ", ".join(parts)


class BinanceStreams:
    """Binance WebSocket market streams as hot, shared, ref-counted, self-healing Observables.

    Keyword arguments, grouped by concern:

    - where: ``market`` (``"spot"``, ``"spot-testnet"``, ``"spot-demo"``, ``"usdm"``,
      ``"usdm-testnet"``), or explicit ``ws_url`` / ``rest_url`` / ``ws_api_url``, which override
      the market's endpoints (point them at :class:`rxbinance.testing.FakeBinance` in tests;
      on USD-M, ``ws_url`` is the root the ``/public``, ``/market`` and ``/private`` routes
      hang from);
    - who: ``api_key`` and ``api_secret`` (an HMAC secret, or an Ed25519/RSA private key in
      PEM form) for :meth:`user` and the signed calls of :attr:`rest`;
      ``listen_key_keepalive`` (1800.0 s): how often a USD-M listenKey is extended;
    - healing: ``max_retries`` (5), ``retry_delay`` (1.0 s), ``max_retry_delay`` (30.0 s),
      ``stall_timeout`` (60.0 s without data or ping), ``connect_timeout`` (10.0 s);
      ``silence_timeout`` (None: off): a stream whose connection is up but which delivers no
      data for that long emits a :class:`~rxbinance.events.Silent` event on :attr:`events`
      (between 1 and 1.25 times the timeout after its last message), once per quiet spell;
      ``rollover_after`` (23.5 h; None: off): a market stream's connection is replaced
      make-before-break at that age, ahead of Binance's 24 h limit, and at once when Binance
      announces ``serverShutdown``: the new one delivers before the old one is closed, the
      overlap is de-duplicated, nothing is lost or repeated and no retry is counted
      (:class:`~rxbinance.events.RolledOver` on :attr:`events`);
      ``repair_timeout`` (30.0 s): the longest a repair of a sequenced stream waits for REST
      weight (while the messages after its hole are held) before the hole becomes a
      :class:`~rxbinance.events.Gap` ("REST weight budget spent");
      ``redundancy`` (1; 2 or 3): each market stream on that many connections, opened
      ``retry_delay`` seconds apart and merged message by message (by trade id, update id or
      event time, never going back), so losing any one of them costs nothing and needs no
      REST; each copy heals on its own, and the stream ends only when all of them have;
    - scale: ``pool`` (False): True puts market streams on shared connections instead of one
      socket each, with live SUBSCRIBE at a stream's first subscriber and UNSUBSCRIBE at its
      last dispose, batched and paced under Binance's 5 messages a second; a new connection
      opens only when the others are full (``streams_per_connection``: 1024 on spot, 200 on
      USD-M, or fewer), per market and USD-M route; an idle one closes after 2 s. Each stream
      is still its own hot, shared, ref-counted Observable, repaired after a reconnect; a
      stream Binance refuses errors only its own subscribers
      (:class:`~rxbinance.errors.SubscriptionRefused`). See :mod:`rxbinance._reactive.pool`.
      ``connection_attempts`` ((280, 300.0)): every connection, pooled or not, reconnects
      included, takes an attempt from one budget per host (and limit) shared by the whole
      process, at most that many per that many seconds (Binance allows 300 per 5 minutes per
      IP and bans repeat offenders); when it is spent, connections wait. None: no budget (a
      local test server);
    - delivery: ``scheduler``, a reactivex scheduler to call subscribers on instead of the
      socket's reader thread (in Jupyter: ``AsyncIOThreadSafeScheduler(loop)``);
    - the escape hatches: ``ssl_context`` for ``wss://`` endpoints with a private CA, and
      ``transport``, a :class:`~rxbinance.transport.SocketFactory` that opens every market
      stream's socket instead of the built-in websocket-client one (tests use
      :class:`rxbinance.testing.ScriptedSocket`; user data always uses the built-in one).

    Use it as a context manager or call :meth:`close`, which closes every socket, completes every
    subscriber and joins the reader threads.

    **Threads and callbacks.** Subscribers are called on the socket's reader thread
    (``rxbinance:<key>``), on a pipeline's worker (``rxbinance-book:<SYMBOL>``), or on
    ``scheduler``; never two calls into one subscriber at once, and never while a lock of
    rxbinance is held. So a subscriber (of a stream, a book or :attr:`events`) may subscribe,
    dispose, or call :meth:`close` from inside its callback. A subscriber that raises is logged
    (the first traceback, then a count) and stays subscribed.
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
        silence_timeout: float | None = None,
        rollover_after: float | None = 23.5 * 3600,
        redundancy: int = 1,
        repair_timeout: float = 30.0,
        pool: bool = False,
        streams_per_connection: int | None = None,
        connection_attempts: tuple[int, float] | None = DEFAULT_ATTEMPTS,
        scheduler: abc.SchedulerBase | None = None,
        ssl_context: ssl.SSLContext | None = None,
        transport: SocketFactory | None = None,
        api_key: str | None = None,
        api_secret: str | bytes | Signer | None = None,
        listen_key_keepalive: float = 1800.0,
    ) -> None:
        endpoints = endpoints_for(market)
        if api_key is not None and (not isinstance(api_key, str) or not api_key):
            raise InvalidInputError("api_key must be a non-empty string or None")
        if isinstance(listen_key_keepalive, bool) or not (
            isinstance(listen_key_keepalive, (int, float)) and 0 < listen_key_keepalive <= 3600
        ):
            raise InvalidInputError(
                f"listen_key_keepalive must be seconds in (0, 3600] (a listenKey lives 60 "
                f"minutes), got {listen_key_keepalive!r}"
            )
        self._api_key = api_key
        self._api_secret = api_secret
        self._signer: Signer | None = None
        self._listen_key_keepalive = float(listen_key_keepalive)
        # The account's USD-M listenKey, shared by its connections: an old connection's
        # deferred DELETE must never close the key a newer one holds (same key per account).
        self._listen_key_holder = ListenKeyHolder()
        self.market = market
        #: ``"spot"`` or ``"usdm"``: which stream names, routes and user data this market has.
        self.product = endpoints.product
        self.ws_url = _checked_url("ws_url", ws_url or endpoints.ws_url, ("ws", "wss")).rstrip("/")
        self.rest_url = _checked_url(
            "rest_url", rest_url or endpoints.rest_url, ("http", "https")
        ).rstrip("/")
        self.ws_api_url = _checked_url(
            "ws_api_url", ws_api_url or endpoints.ws_api_url, ("ws", "wss")
        )
        # A ws_url of one's own (a test server, a proxy) with the market's REST endpoint is
        # almost always a mistake: snapshots would silently come from the real Binance.
        self._rest_url_implied = (
            ws_url is not None and rest_url is None and self.ws_url != endpoints.ws_url.rstrip("/")
        )
        self.policy = ReconnectPolicy(
            max_retries=max_retries, retry_delay=retry_delay, max_retry_delay=max_retry_delay
        )
        if not stall_timeout > 0:
            raise InvalidInputError(f"stall_timeout must be > 0 seconds, got {stall_timeout!r}")
        if silence_timeout is not None and not silence_timeout > 0:
            raise InvalidInputError(
                f"silence_timeout must be None (off) or > 0 seconds, got {silence_timeout!r}"
            )
        self._silence_timeout = silence_timeout
        if rollover_after is not None and not 0 < rollover_after <= 24 * 3600:
            raise InvalidInputError(
                f"rollover_after must be None (off) or seconds in (0, 86400] (Binance ends a "
                f"connection at 24 h), got {rollover_after!r}"
            )
        self._rollover_after = rollover_after
        if (
            isinstance(redundancy, bool)
            or not isinstance(redundancy, int)
            or not 1 <= redundancy <= 3
        ):
            raise InvalidInputError(f"redundancy must be 1, 2 or 3 connections, got {redundancy!r}")
        self._redundancy = redundancy
        if not repair_timeout > 0:
            raise InvalidInputError(f"repair_timeout must be > 0 seconds, got {repair_timeout!r}")
        self._repair_timeout = float(repair_timeout)
        usdm = self.product == "usdm"
        most = MAX_USDM_STREAMS_PER_CONNECTION if usdm else MAX_STREAMS_PER_CONNECTION
        if streams_per_connection is None:
            streams_per_connection = most
        if (
            isinstance(streams_per_connection, bool)
            or not isinstance(streams_per_connection, int)
            or not 1 <= streams_per_connection <= most
        ):
            raise InvalidInputError(
                f"streams_per_connection must be an int from 1 to {most} on market "
                f"{market!r}, got {streams_per_connection!r}"
            )
        self._pool = bool(pool)
        self._streams_per_connection = streams_per_connection
        self._pools: dict[str, Pool] = {}  # per USD-M route ("" on spot)
        self._pools_lock = threading.Lock()
        if connection_attempts is None:
            self._attempts: ConnectionAttempts | None = None
        else:
            try:
                limit, window = connection_attempts
                valid = isinstance(limit, int) and limit >= 1 and float(window) > 0
            except (TypeError, ValueError):
                valid = False
            if not valid:
                raise InvalidInputError(
                    f"connection_attempts must be None or (attempts >= 1, seconds > 0), "
                    f"got {connection_attempts!r}"
                )
            self._attempts = attempts_for(self.ws_url, limit, float(window))
        self._stall_timeout = stall_timeout
        self._connect_timeout = connect_timeout
        self._ssl_context = ssl_context
        self._transport: SocketFactory = transport if transport is not None else self._open_socket
        self._events: Broadcast[ConnectionEvent] = Broadcast("BinanceStreams.events")
        self._hub = Hub(scheduler=scheduler)
        self._threads = Threads()
        # Reconnect delays, rollovers and silence checks run here: one named daemon thread that
        # exits when idle, and that close() joins (it stops once the scheduler is disposed).
        self._timers = EventLoopScheduler(
            thread_factory=lambda target: self._threads.new_thread(target, "rxbinance-timers"),
            exit_if_empty=True,
        )
        self._rest: Client | None = None
        self._rest_lock = threading.Lock()
        self._context = StreamsContext(
            hub=self._hub,
            market=market,
            product=self.product,
            events=self._events.observable(),
            emit_event=self._events.on_next,
            new_thread=self._threads.new_thread,
            rest=lambda: self.rest,
            budget=default_budget(self.product),
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> BinanceStreams:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every socket, complete every subscriber, and join the reader threads.

        Idempotent. Safe to call from any subscriber's callback, :attr:`events` included (its
        own thread is not joined, and the completion reaches that subscriber when its callback
        returns). After ``close()`` a new subscription gets ``on_error``
        (:class:`~rxbinance.errors.StreamsClosed`, a ``RuntimeError``) at once.
        """
        self._hub.close()
        with self._pools_lock:
            pools = list(self._pools.values())
        for pool in pools:
            pool.close()  # their idle connections would otherwise wait for a timer
        self._timers.dispose()
        # Readers and pipeline workers stop once their streams completed above; wait for them,
        # so close() leaves no thread of ours behind.
        self._threads.join_all(_JOIN_TIMEOUT)
        self._events.on_completed()
        with self._rest_lock:
            rest, self._rest = self._rest, None
        if rest is not None:
            rest.close()

    @property
    def context(self) -> StreamsContext:
        """What pipelines built on these streams share (the hub, the REST client and weight
        budget, worker threads, the event emitter): see
        :class:`~rxbinance._reactive.context.StreamsContext`. For pipeline authors; ordinary
        use needs none of it."""
        return self._context

    @property
    def rest(self) -> Client:
        """The REST client of these streams (created on first use): a
        :class:`rxbinance.rest.Client` on ``rest_url`` for ``market``, with the streams'
        ``api_key``/``api_secret``. Pipelines fetch snapshots and history with it; it is
        closed by :meth:`close`.

        Raises ``ValueError`` when ``ws_url`` points somewhere of one's own but ``rest_url``
        was not given: REST calls would otherwise go to the real Binance, silently. Pass
        ``rest_url`` (the market's own, to mean it).
        """
        from rxbinance.rest import Client  # rest imports requests: only when needed

        if self._rest_url_implied:
            raise InvalidInputError(
                f"BinanceStreams(ws_url={self.ws_url!r}) has no rest_url: REST calls (order "
                f"book snapshots, kline history) would go to {self.rest_url!r}, not to the "
                f"server of ws_url. Pass rest_url=... (rest_url={self.rest_url!r} to mean it)"
            )
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
        # Never the secret; the key only masked.
        key = f", api_key='{self._api_key[:4]}…'" if self._api_key else ""
        return f"BinanceStreams(market={self.market!r}, ws_url={self.ws_url!r}{key})"

    # -- connection state --------------------------------------------------------------------

    @property
    def events(self) -> Observable[ConnectionEvent]:
        """Connection events of every stream key (see :mod:`rxbinance.events`).

        Emitted on the thread where they happen (reader, timer or worker thread); calls into
        one subscriber never overlap and no lock is held while it runs, so it may dispose or
        call :meth:`close`. Filter by ``event.stream`` for one key. Completes at :meth:`close`.
        """
        return self._context.events

    def statistics(self) -> dict[str, StreamStatistics]:
        """A snapshot of every live stream key (books and other pipelines excluded: see
        :func:`rxbinance.order_book_statistics`)."""
        result = {}
        for entry in self._hub.entries():
            connection = entry.source
            if isinstance(connection, PooledStream):
                result[str(entry.key)] = self._pooled_statistics(
                    entry.key, entry.subscribers, connection
                )
                continue
            if isinstance(connection, (SharedConnection, RedundantConnection)):
                sink = connection.sink
                key = str(entry.key)
                reading = connection.reading()
                copies = (
                    len(connection.copies) if isinstance(connection, RedundantConnection) else 1
                )
                result[key] = self._statistics(
                    key,
                    entry.subscribers,
                    reading,
                    connects=connection.connects,
                    messages=connection.messages,
                    rollovers=connection.rollovers,
                    repair=sink.statistics() if isinstance(sink, RepairingSink) else None,
                    redundancy=(
                        connection.statistics()
                        if isinstance(connection, RedundantConnection)
                        else None
                    ),
                    reconnects=max(0, connection.connects - copies - connection.rollovers),
                )
        return result

    def _statistics(
        self, key: str, subscribers: int, reading: MeterReading, **counts: Any
    ) -> StreamStatistics:
        """One key's StreamStatistics: ``counts`` from its connection, the rest from ``reading``
        and the bounded deliveries' drops."""
        return StreamStatistics(
            key,
            subscribers=subscribers,
            rate_1s=reading.rate_1s,
            rate_60s=reading.rate_60s,
            lag_p50_ms=reading.lag_p50_ms,
            lag_p99_ms=reading.lag_p99_ms,
            last_message_age=reading.last_message_age,
            dropped=self._context.drops.get(key),
            **counts,
        )

    def _pooled_statistics(
        self, key: Any, subscribers: int, member: PooledStream
    ) -> StreamStatistics:
        sink = member.sink
        connects = member.connects
        return self._statistics(
            str(key),
            subscribers,
            member.reading(),
            connects=connects,
            messages=member.messages,
            repair=sink.statistics() if isinstance(sink, RepairingSink) else None,
            reconnects=max(0, connects - 1),
            connection=None if member.connection is None else member.connection.name,
        )

    def _shared(
        self,
        key: str,
        url: str,
        open_socket: SocketFactory,
        *,
        hub_key: str | None = None,
        wrap: Callable[[Sink[Any]], Sink[Any]] | None = None,
    ) -> Observable[Any]:
        """The hub's Observable of one socket-backed stream ``key`` (the stream name events and
        threads carry); ``hub_key`` (default ``key``) is what it is shared under."""

        user_data = key == USER_DATA_KEY

        def connection(wrapped: Callable[[Sink[Any]], Sink[Any]] | None) -> SharedConnection:
            return SharedConnection(
                key,
                url,
                open_socket=open_socket,
                policy=self.policy,
                timer_scheduler=self._timers,
                emit_event=self._events.on_next,
                track=self._track_socket,
                wrap=wrapped,
                silence_timeout=self._silence_timeout,
                # User data resubscribes on every connection: replaced the plain way.
                rollover_after=None if user_data else self._rollover_after,
                attempts=self._attempts,
            )

        def make() -> SharedConnection | RedundantConnection:
            if self._redundancy == 1 or user_data:
                return connection(wrap)
            return RedundantConnection(
                key,
                lambda: connection(None),
                copies=self._redundancy,
                stagger=self.policy.retry_delay,
                timer_scheduler=self._timers,
                wrap=wrap,
            )

        shared_as = key if hub_key is None else hub_key
        return self._hub.observable(shared_as, make, name=shared_as)

    def _repairing(self, name: str, backfill: bool) -> Callable[[Sink[Any]], Sink[Any]] | None:
        """For a sequenced stream (aggTrade, trade, kline), the wrapper that keeps it whole
        (:mod:`rxbinance._reactive.repair`); for diff depth, the one that reports its holes;
        None for every other stream."""
        symbol, _, kind = name.partition("@")
        usdm = self._usdm()
        rest = self._context.rest
        sequence: Callable[[], IdSequence | CandleSequence | DepthSequence]
        strategy: Backfill | None
        if kind == "aggTrade":
            sequence = lambda: IdSequence("a")  # noqa: E731
            strategy = AggTradeBackfill(rest, symbol.upper(), usdm=usdm)
        elif kind == "trade":
            sequence = lambda: IdSequence("t")  # noqa: E731
            strategy = TradeBackfill(rest, symbol.upper())
        elif kind.startswith("kline_") and "@" not in kind:  # not klines in a time zone
            interval = kind.removeprefix("kline_")
            sequence = lambda: CandleSequence(interval)  # noqa: E731
            strategy = KlineBackfill(rest, symbol.upper(), interval, usdm=usdm)
        elif kind == "depth" or kind.startswith("depth@"):  # diff depth: holes are reported
            sequence = lambda: DepthSequence(futures=usdm)  # noqa: E731
            strategy = None
        else:
            return None
        context = self._context

        def wrap(sink: Sink[Any]) -> Sink[Any]:
            return RepairingSink(
                sink,
                stream=name,
                sequence=sequence(),
                backfill=strategy if backfill and strategy is not None else None,
                budget=context.budget,
                rest_retry=context.rest_retry,
                new_thread=context.new_thread,
                emit_event=context.emit_event,
                budget_timeout=self._repair_timeout,
            )

        return wrap

    def _track_socket(self, sock: SocketLike) -> None:
        thread = getattr(sock, "thread", None)
        if isinstance(thread, threading.Thread):
            self._threads.track(thread)

    def _open_socket(
        self,
        url: str,
        *,
        key: str,
        on_message: Callable[[Any], None],
        on_event: Callable[[ConnectionEvent], None],
        on_closed: Callable[[RxBinanceError | None], None],
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
            # serverShutdown is announced, not acted on here: the replacement is opened while
            # this socket still delivers (make-before-break, see rollover_after).
            end_on_shutdown=False,
        )

    def _open_user_socket(
        self,
        url: str,
        *,
        key: str,
        on_message: Callable[[Any], None],
        on_event: Callable[[ConnectionEvent], None],
        on_closed: Callable[[RxBinanceError | None], None],
    ) -> SocketLike:
        if self.product == "usdm":
            return UsdmUserSocket(
                rest=self.rest,
                ws_url=self.ws_url,
                events=names.USDM_USER_EVENTS,
                keepalive=self._listen_key_keepalive,
                key=key,
                on_message=on_message,
                on_event=on_event,
                on_closed=on_closed,
                stall_timeout=self._stall_timeout,
                connect_timeout=self._connect_timeout,
                ssl_context=self._ssl_context,
                holder=self._listen_key_holder,
            )
        assert self._api_key is not None
        assert self._signer is not None
        session = SpotUserSession(self._api_key, self._signer, on_message, url=url, key=key)
        return StreamSocket(
            url,
            key=key,
            on_message=session.on_frame,
            on_event=on_event,
            on_closed=on_closed,
            stall_timeout=self._stall_timeout,
            connect_timeout=self._connect_timeout,
            ssl_context=self._ssl_context,
            classify=classify_ws_api,
            handshake=session.handshake,
            on_control=session.on_control,
        )

    # -- streams -----------------------------------------------------------------------------

    def _usdm(self) -> bool:
        return self.product == "usdm"

    def _spot_only(self, method: str, why: str) -> None:
        if self._usdm():
            raise InvalidInputError(
                f"{method}() is not available on market {self.market!r} (USD-M futures): {why}"
            )

    def _usdm_only(self, method: str) -> None:
        if not self._usdm():
            raise InvalidInputError(
                f"{method}() is a USD-M futures stream: not available on market "
                f"{self.market!r}; use BinanceStreams(market=...) with one of {_USDM_MARKETS}"
            )

    def _validate(self, name: str) -> str:
        """``name`` if it is a market stream of this market, else InvalidInputError saying
        precisely why (:func:`rxbinance.protocol.names.validate_stream_name`)."""
        return names.validate_stream_name(name, self.product, market=self.market)

    def _observe(self, name: str, backfill: bool = True) -> Observable[Any]:
        """The shared Observable of a validated stream name, on its route (USD-M); sequenced
        streams kept whole (repaired from REST when ``backfill``, else holes are Gaps)."""
        if self._usdm():
            url = routed_raw_url(self.ws_url, names.usdm_route(name), name)
        else:
            url = raw_url(self.ws_url, name)
        wrap = self._repairing(name, backfill)
        # With and without backfill they differ: one socket (or pool member) each.
        hub_key = name if wrap is None or backfill else f"{name}?backfill=false"
        if self._pool:
            return self._pooled(name, hub_key, wrap)
        return self._shared(name, url, self._transport, hub_key=hub_key, wrap=wrap)

    def _pooled(
        self, name: str, hub_key: str, wrap: Callable[[Sink[Any]], Sink[Any]] | None
    ) -> Observable[Any]:
        """The hub's Observable of stream ``name`` on a pooled connection of its route."""
        route = names.usdm_route(name) if self._usdm() else ""
        pool = self._pool_for(route)
        return self._hub.observable(
            hub_key, lambda: PooledStream(pool, name, wrap=wrap), name=hub_key
        )

    def _pool_for(self, route: str) -> Pool:
        with self._pools_lock:
            pool = self._pools.get(route)
            if pool is not None:
                return pool
            base = f"{self.ws_url}/{route}" if route else self.ws_url

            def make(key: str, open_socket: SocketFactory) -> SharedConnection:
                return SharedConnection(
                    key,
                    combined_url(base, []),
                    open_socket=open_socket,
                    policy=self.policy,
                    timer_scheduler=self._timers,
                    emit_event=self._events.on_next,
                    track=self._track_socket,
                    # Reconnected instead, and repaired (pool.py): one connection's overlap
                    # cannot be de-duplicated across all of its streams.
                    rollover_after=None,
                    make_before_break=False,
                    attempts=self._attempts,
                    metered=False,  # each stream is metered as it is routed
                )

            pool = self._pools[route] = Pool(
                name=f"pool-{route}" if route else "pool",
                url_for=lambda listed: combined_url(base, listed),
                capacity=self._streams_per_connection,
                open_socket=self._transport,
                make=make,
                timers=self._timers,
                emit_event=self._events.on_next,
                silence_timeout=self._silence_timeout,
            )
            return pool

    def _symbol(self, symbol: str) -> str:
        if self._usdm():
            return names.normalize_usdm_symbol(symbol)
        return names.normalize_symbol(symbol)

    def stream(self, name: str) -> Observable[Any]:
        """Any market stream by its Binance name, e.g. ``"btcusdt@kline_1M"``.

        Payloads arrive bare (a dict, or a list for ``!...@arr`` streams). The name must be
        exactly Binance's: lowercase symbol, documented suffix, and a stream of this market
        (USD-M names on ``"usdm"``, which are sent to their route).
        """
        return self._observe(self._validate(name))

    def trades(self, symbol: str, *, backfill: bool = True) -> Observable[TradePayload]:
        """Every trade of ``symbol`` (``<symbol>@trade``), real time, each once, in trade-id
        order. Spot only: USD-M futures has no such stream (use :meth:`agg_trades`).

        **Lossless.** Trade ids are consecutive: when a reconnect, a rollover or a stall
        skipped some, the trades that follow are held while the missing ones are fetched from
        ``GET /api/v3/historicalTrades`` by ``fromId`` (weight 25 per 1,000 trades, from the
        streams' REST weight budget; Binance documents no API key for it today), then
        delivered in order; repeats are dropped. What REST cannot give arrives as a
        :class:`~rxbinance.events.Gap` in its place (and on :attr:`events`). ``backfill=False``:
        no REST; every hole is a Gap (a socket of its own).
        """
        self._spot_only("trades", "Binance documents no <symbol>@trade stream; use agg_trades()")
        return self._observe(self._validate(names.trade_stream(symbol)), backfill)

    def agg_trades(self, symbol: str, *, backfill: bool = True) -> Observable[AggTradePayload]:
        """Aggregate trades of ``symbol`` (``<symbol>@aggTrade``): real time on spot, every
        100 ms on USD-M; each once, in id order.

        **Lossless**, like :meth:`trades`: holes are refilled from ``GET /api/v3/aggTrades``
        (weight 4) or ``GET /fapi/v1/aggTrades`` (USD-M, weight 20; Binance keeps 48 h there)
        by ``fromId``, 1,000 per call, or reported as a :class:`~rxbinance.events.Gap`.
        ``backfill=False``: no REST; every hole is a Gap.
        """
        return self._observe(self._validate(f"{self._symbol(symbol)}@aggTrade"), backfill)

    def depth(
        self, symbol: str, levels: int | None = None, speed: int | None = None
    ) -> Observable[Any]:
        """Order book depth of ``symbol``.

        ``levels=None``: diff depth (``depthUpdate`` events, for a local book); ``levels`` 5, 10
        or 20: partial book snapshots (on spot ``{"lastUpdateId", "bids", "asks"}``, which carry
        no symbol; on USD-M ``depthUpdate`` events). ``speed``: update period in ms; spot 1000
        (default) or 100, USD-M 250 (default), 500 or 100.
        """
        return self.stream(self._depth_name(symbol, levels, speed))

    def _depth_name(self, symbol: str, levels: int | None, speed: int | None) -> str:
        try:
            return names.depth_stream_for(self.product, symbol, levels, speed)
        except InvalidInputError as exc:  # the allowed speeds differ per market: say which
            raise InvalidInputError(f"{exc} (market {self.market!r})") from None

    def klines(
        self, symbol: str, interval: str = "1m", *, backfill: bool = True
    ) -> Observable[KlinePayload]:
        """Candles of ``symbol`` (``<symbol>@kline_<interval>``); ``"1M"`` is a month, ``"1m"`` a
        minute. ``k.x`` is true on the last update of a candle. USD-M has no ``"1s"`` (see
        :meth:`continuous_klines`).

        **No closed candle missing**: when a reconnect or a stall skipped the closing update of
        one or more candles, the updates that follow are held while the closed candles are
        fetched from ``GET /api/v3/klines`` (``/fapi/v1/klines``) by time and delivered as
        closing updates (``k.x`` true; REST has no trade ids: ``k.f`` and ``k.L`` are -1).
        Updates of a candle already closed are dropped. What REST cannot give is a
        :class:`~rxbinance.events.Gap` of open times. ``backfill=False``: holes are Gaps.
        """
        try:
            if self._usdm():
                name = names.usdm_kline_stream(symbol, interval)
            else:
                name = names.kline_stream(symbol, interval)
        except InvalidInputError as exc:  # the allowed intervals differ per market: say which
            raise InvalidInputError(f"{exc} (market {self.market!r})") from None
        return self._observe(self._validate(name), backfill)

    def symbol_ticker(self, symbol: str) -> Observable[TickerPayload]:
        """24 h rolling statistics of ``symbol`` (``<symbol>@ticker``): every second on spot,
        every 2 s on USD-M."""
        return self.stream(f"{self._symbol(symbol)}@ticker")

    def rolling_ticker(self, symbol: str, window: str = "1h") -> Observable[RollingTickerPayload]:
        """Rolling-window statistics of ``symbol`` (``<symbol>@ticker_<window>``), window 1h, 4h
        or 1d, every second. Spot only."""
        self._spot_only("rolling_ticker", "Binance has no <symbol>@ticker_<window> on USD-M")
        return self.stream(names.rolling_ticker_stream(symbol, window))

    def ticker(self) -> Observable[Any]:
        """All-market tickers: a list of the symbols whose ticker changed, every second.

        Spot: Binance retired ``!ticker@arr`` on 2026-03-26. This is its living equivalent,
        ``!ticker_1d@arr``: the same statistics over a rolling 1-day window (``e`` is
        ``"1dTicker"``; no best bid/ask fields, which ``!ticker@arr`` had). USD-M: ``!ticker@arr``
        (``24hrTicker`` events), still live on futures.
        """
        if self._usdm():
            return self.stream("!ticker@arr")
        return self.stream(names.rolling_ticker_stream(None, "1d"))

    @overload
    def mini_ticker(
        self, symbol: None = None, update_time: int = 1000
    ) -> Observable[list[MiniTickerPayload]]: ...
    @overload
    def mini_ticker(
        self, symbol: str, update_time: int = 1000
    ) -> Observable[MiniTickerPayload]: ...
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
        name = "!miniTicker@arr" if symbol is None else f"{self._symbol(symbol)}@miniTicker"
        source = self.stream(name)
        if update_time == 1000:
            return source
        return source.pipe(_throttle_by_event_time(update_time, merge_lists=symbol is None))

    def book_ticker(self, symbol: str) -> Observable[BookTickerPayload]:
        """Best bid and ask of ``symbol`` (``<symbol>@bookTicker``), real time. No ``e`` field
        on spot; USD-M adds ``e``, ``E`` and ``T``."""
        return self.stream(f"{self._symbol(symbol)}@bookTicker")

    def best_bid_ask(self, symbol: str) -> Observable[Quote]:
        """Typed best bid/ask quotes of ``symbol`` from ``<symbol>@bookTicker``, on the same
        shared socket as :meth:`book_ticker` (also :func:`rxbinance.best_bid_ask`).

        .. code-block:: python

            streams.best_bid_ask("BTCUSDT").pipe(rbo.mid()).subscribe(print)

        A quote whose ``update_id`` is not newer than the last one delivered to this
        subscriber is dropped (a replay after a reconnect), so quotes never go back in time. A
        payload that does not parse ends the subscription with ``on_error(ParseError)``; when
        the stream gives up reconnecting, with ``on_error(ConnectionFailure)`` naming the
        stream. Runs on the socket's reader thread (or the streams' scheduler). Unlike
        :func:`rxbinance.order_book` it needs no REST and no resync: each bookTicker is a
        complete quote, but it says nothing about deeper levels.
        """
        stream_name = f"{self._symbol(symbol)}@bookTicker"
        source = self.book_ticker(symbol)

        def subscribe(
            observer: abc.ObserverBase[Quote], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            last = -1

            def on_next(message: Any) -> None:
                nonlocal last
                if is_give_up(message):
                    observer.on_error(give_up_error(message, stream_name))
                    return
                try:
                    ticker = BookTicker.from_dict(message)
                except ParseError as exc:
                    observer.on_error(exc)
                    return
                if ticker.update_id <= last:
                    return
                last = ticker.update_id
                observer.on_next(Quote.from_book_ticker(ticker))

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return reactivex.create(subscribe)

    def avg_price(self, symbol: str) -> Observable[AvgPricePayload]:
        """The 5 minute average price of ``symbol`` (``<symbol>@avgPrice``), every second. Spot
        only."""
        self._spot_only("avg_price", "Binance has no <symbol>@avgPrice on USD-M")
        return self.stream(names.avg_price_stream(symbol))

    # -- USD-M futures only ------------------------------------------------------------------

    def mark_price(self, symbol: str | None = None, speed: int = 3000) -> Observable[Any]:
        """Mark price, index price and funding rate (``markPriceUpdate``) of ``symbol``
        (``<symbol>@markPrice``), or a list for every symbol (``!markPrice@arr``) when None.
        ``speed`` in ms: 3000 (Binance's default) or 1000 (``@1s``). USD-M only."""
        self._usdm_only("mark_price")
        return self.stream(names.mark_price_stream(symbol, speed))

    def force_orders(self, symbol: str | None = None) -> Observable[Message]:
        """Liquidation orders (``forceOrder``) of ``symbol`` (``<symbol>@forceOrder``), or of
        every symbol (``!forceOrder@arr``, still one event per message) when None: at most the
        latest liquidation per symbol each second. USD-M only."""
        self._usdm_only("force_orders")
        return self.stream(names.force_order_stream(symbol))

    def continuous_klines(
        self, pair: str, contract_type: str, interval: str
    ) -> Observable[Message]:
        """Candles of a continuous contract (``continuous_kline`` events,
        ``<pair>_<contractType>@continuousKline_<interval>``): ``contract_type`` is
        ``"perpetual"``, ``"current_quarter"``, ``"next_quarter"`` or ``"tradifi_perpetual"``
        (any case), ``interval`` any kline interval including ``"1s"``. USD-M only."""
        self._usdm_only("continuous_klines")
        return self.stream(names.continuous_kline_stream(pair, contract_type, interval))

    # -- several streams ---------------------------------------------------------------------

    def multiplex(self, stream_names: Iterable[str]) -> Observable[Message]:
        """Several streams on one combined socket (``/stream?streams=a/b``).

        Emits ``{"stream": name, "data": payload}``; the stream name is the only way to tell
        apart payloads without a symbol (partial depth). Names must be Binance stream names of
        this market, lowercase; user data streams are refused. Shared and ref-counted like every
        stream, keyed by the sorted set of names, so ``multiplex(["a", "b"])`` and
        ``multiplex(["b", "a"])`` share one socket. See :func:`rxbinance.operators.demultiplex`
        to split it again.

        On USD-M the names are grouped by route: names of one route share one socket; names
        spanning ``/public`` and ``/market`` get one socket per route, merged into this one
        Observable (each socket shared and healed on its own). At most 1024 streams per socket
        on spot, 200 on USD-M.
        """
        checked = names.validate_stream_names(
            stream_names, product=self.product, market=self.market
        )
        if not self._usdm():
            self._check_count(checked, MAX_STREAMS_PER_CONNECTION)
            return self._shared(
                names.combined_key(checked), combined_url(self.ws_url, checked), self._transport
            )
        by_route: dict[str, list[str]] = {}
        for name in checked:
            by_route.setdefault(names.usdm_route(name), []).append(name)
        parts = []
        for route, group in sorted(by_route.items()):
            self._check_count(group, MAX_USDM_STREAMS_PER_CONNECTION)
            parts.append(
                self._shared(
                    names.combined_key(group),
                    routed_combined_url(self.ws_url, route, group),
                    self._transport,
                )
            )
        return parts[0] if len(parts) == 1 else reactivex.merge(*parts)

    def _check_count(self, group: list[str], limit: int) -> None:
        if len(group) > limit:
            raise InvalidInputError(
                f"{len(group)} streams requested: Binance allows at most {limit} on one "
                f"connection on market {self.market!r}"
            )

    # -- user data ---------------------------------------------------------------------------

    def user(self) -> Observable[Message]:
        """The account's user data events, as Binance's dicts: hot, shared, ref-counted.

        Needs ``api_key`` and ``api_secret`` (USD-M: ``api_key`` is enough); without them it
        raises ``ValueError`` naming them.

        - **Spot** (WebSocket API at ``ws_api_url``): every connection sends
          ``userDataStream.subscribe.signature`` signed with a fresh timestamp and checks the
          reply before anything else, so each reconnect subscribes again. Events arrive
          unwrapped from ``{"subscriptionId", "event"}``: ``executionReport``,
          ``outboundAccountPosition``, ``balanceUpdate``, ``listStatus``,
          ``externalLockUpdate``, ``eventStreamTerminated`` (after which a new connection
          subscribes again at once).
        - **USD-M** (``/private`` route): every connection first creates the listenKey over
          REST (Binance returns the active key, extended, if there is one), then connects to
          ``/private/ws?listenKey=...&events=...`` asking for every documented event type
          (:data:`rxbinance.protocol.names.USDM_USER_EVENTS`). The key is extended every
          ``listen_key_keepalive`` seconds. ``listenKeyExpired`` (its ``E`` is a string, as
          Binance sends it) is delivered, then the key is renewed and the socket reconnected
          at once; so is a keepalive answered -1125. Disposing the last subscriber closes the
          key (DELETE).

        Healing is the market streams': connection failures are retried ``max_retries``
        times, then subscribers get ``{'e': 'error', 'm': 'Max reconnect retries reached'}``
        and complete. When Binance refuses the request itself (401/-2015 unknown or revoked
        key, -1022 bad signature, -1021 timestamp outside recvWindow, 429/418), retrying cannot
        help: subscribers get ``on_error`` with the :class:`~rxbinance.errors.BinanceAPIError`
        (or :class:`~rxbinance.errors.RateLimitError`), :attr:`events` a
        :class:`~rxbinance.events.Rejected`, and the stream is forgotten, so a later
        subscriber tries afresh. Connection events name the stream ``"userData"``; events may
        arrive on the reader thread ``rxbinance:userData``.
        """
        if self._usdm():
            if not self._api_key:
                raise InvalidInputError(
                    "user() needs an API key: BinanceStreams(api_key=..., api_secret=...)"
                )
            url = f"{self.ws_url}/private/ws"
        else:
            if not self._api_key or not self._api_secret:
                raise InvalidInputError(
                    "user() needs api_key and api_secret: "
                    "BinanceStreams(api_key=..., api_secret=...)"
                )
            if self._signer is None:
                # Loaded once, here: a bad PEM or a missing `cryptography` fails now, clearly.
                self._signer = load_signer(self._api_secret)
            url = self.ws_api_url
        return self._shared(USER_DATA_KEY, url, self._open_user_socket)


def _checked_url(what: str, url: str, schemes: tuple[str, ...]) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in schemes or not rest.strip("/"):
        allowed = " or ".join(f"{s}://" for s in schemes)
        raise InvalidInputError(f"invalid {what} {url!r}: must start with {allowed}")
    return url


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
