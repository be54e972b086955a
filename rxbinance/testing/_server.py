"""FakeBinance: a real local Binance (streams, WS API, REST) on 127.0.0.1 for tests and demos.

Architecture, one job per module:

- ``_market``: the pure synthetic market (prices, book, trades, payloads, REST bodies);
- ``_control``: the stream endpoint's wire protocol (URL routing, control messages, framing);
- ``_wsapi``: the WebSocket API request/response envelope, method table and user data methods;
- ``_rest``: the HTTP endpoints; ``_limits``: request weight per minute;
- ``_records``: the frozen snapshots tests read;
- this module: sockets, threads, connection rules and faults.

Threads. One asyncio loop in the daemon thread ``FakeBinance-loop`` owns every WebSocket
connection (``websockets.asyncio.server``); the REST server is a ``ThreadingHTTPServer`` whose
accept loop runs in the daemon thread ``FakeBinance-rest`` with one daemon thread per client
connection (``FakeBinance-rest-conn``). Public methods may be called from any thread; those that
touch connections run on the loop and wait for it. All mutable state (the market included) is
guarded by one re-entrant lock, :attr:`FakeBinance.lock`, and a Condition on it is notified on
every change a test may wait for.

Writes. Frames are written straight into the connection's transport (no ``await``), so a tick
or a ``publish`` never waits for a slow client, and a frame is "handed to the socket" as soon as
the call that produced it returns. A client that stops reading is dropped abruptly (close code
1006, cause ``"slow_consumer"``) once more than ``max_send_buffer`` bytes (default 8 MiB) wait in
the transport's buffer (on top of what the kernel's socket buffer already holds), the way Binance
drops readers that cannot keep up.

USD-M routes. The stream port also serves USD-M futures' routed paths (binance-protocol.md 8.1):
``/public/ws/...`` and ``/public/stream?streams=...`` deliver only book data (bookTicker,
depth), ``/market/...`` everything else, and ``/private/ws?listenKey=<key>[&events=E1/E2]`` (or
``/private/stream?...``, wrapped as ``{"stream": <key>, "data": ...}``) the user data of an
active listen key. Stream names there follow USD-M's grammar
(:func:`rxbinance.protocol.names.validate_usdm_stream_name`). A stream on the wrong route
connects (and SUBSCRIBE succeeds) but delivers nothing, as on Binance. USD-M connections have
USD-M's own limits (10 incoming messages per second, 200 streams; ``usdm_max_...``), while the
per-IP connection-attempt budget is shared by every stream route. A ``/private`` handshake
with an unknown or ended listen key is refused: 400 ``{"code":-1125,"msg":"This listenKey does
not exist."}``. When a listen key expires (:meth:`FakeBinance.expire_listen_key`), its
connections get ``{"e":"listenKeyExpired","E":"<ms as a string>","listenKey":...}`` and nothing
after.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import enum
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast
from urllib.parse import unquote, urlsplit

from websockets.asyncio.messages import Assembler
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State

from rxbinance.errors import InvalidInputError
from rxbinance.protocol.endpoints import endpoints_for
from rxbinance.protocol.names import usdm_route, validate_usdm_stream_name
from rxbinance.streams import BinanceStreams

from ._control import (
    Endpoint,
    Rejection,
    dumps,
    encode_event,
    handle_control,
    parse_request_path,
)
from ._limits import WeightMeter
from ._market import BookState, Market
from ._records import (
    CloseCause,
    ConnectionAttempt,
    ConnectionKind,
    ConnectionRecord,
    ControlLogEntry,
    RestRequest,
)
from ._rest import ApiKey, ApiKeys, ListenKeyRecord, ListenKeys, RestApp, RestFaults, RestServer
from ._wsapi import UserDataStreams, WsApi, WsApiSession

__all__ = ["FakeBinance"]

T = TypeVar("T")

_DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBBTC")

# wait_for re-evaluates its predicate at least this often (seconds): a predicate reading the
# client's state is never woken by the server's notifications. Short enough that a wait ends
# a few ms after the condition holds; long enough that a waiting test costs no CPU to speak of.
_POLL_INTERVAL = 0.01

# Frames that count towards Binance's "5 incoming messages per second": data frames and
# ping/pong control frames (close frames do not; continuation frames belong to a message
# whose first frame was already counted).
_COUNTED = frozenset({Opcode.TEXT, Opcode.BINARY, Opcode.PING, Opcode.PONG})

# Binance's per-connection limits (binance-protocol.md 2 and 8.2): streams per connection and
# incoming frames per second, spot and USD-M; connection attempts per IP (spot: 300 per 5 min).
_SPOT_MAX_STREAMS = 1024
_USDM_MAX_STREAMS = 200
_SPOT_MAX_INCOMING = 5
_MAX_CONNECTION_ATTEMPTS = (300, 300.0)


class _Derived(enum.Enum):
    """Default of ``usdm_max_incoming_per_second``: twice ``max_incoming_per_second``."""

    TWICE_SPOT = "twice max_incoming_per_second"


_REFUSED = Rejection(
    503,
    -1008,
    "Server is currently overloaded with other requests. Please try again in a few minutes.",
)
# What refuse_connections(status=...) answers, as Binance words each refusal.
_REFUSALS = {
    503: _REFUSED,
    451: Rejection(
        451,
        0,
        "Service unavailable from a restricted location according to 'b. Eligibility' in "
        "https://www.binance.com/en/terms. Please contact customer service if you believe you "
        "received this message in error.",
    ),
    429: Rejection(
        429, -1003, "Too many requests; current limit is 300 connections per 5 minutes."
    ),
    403: Rejection(403, 0, "Forbidden"),
    404: Rejection(404, 0, "Not Found"),
    500: Rejection(500, -1000, "An unknown error occurred while processing the request."),
}


class _FakeConnection(ServerConnection):
    """A websockets server connection that FakeBinance can police and stall.

    It counts incoming frames for the rate limit, matches pongs against the server's pings
    (unsolicited pongs are counted but do not keep the connection alive), and can stop reading
    its socket on demand (:meth:`set_stalled`) without fighting websockets' own flow control.
    """

    fake: FakeBinance  # set on the per-server subclass made by FakeBinance._connection_class

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.endpoint: Endpoint | None = None
        self.route: str | None = None  # USD-M route: "public", "market", "private"
        self.listen_key: str | None = None  # /private only
        self.user_events: tuple[str, ...] = ()  # /private only: the events= filter
        self.session: _Session | None = None
        self.attempt_recorded = False
        self.close_cause: CloseCause | None = None
        # Rate limiting: arrival times (loop clock) of counted frames within the last second.
        self.arrivals: collections.deque[float] = collections.deque()
        # Outstanding server pings, oldest first: payload -> loop time sent.
        self.pending_pongs: collections.OrderedDict[bytes, float] = collections.OrderedDict()
        self._flow_paused = False
        self._stalled = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # Replace the message assembler so that its flow control (pause reading when too many
        # messages wait) and our stall (pause reading on purpose) do not undo each other.
        self.recv_messages = Assembler(
            self.max_queue_high,
            self.max_queue_low,
            pause=self._flow_pause,
            resume=self._flow_resume,
        )
        self.fake._all_connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.fake._all_connections.discard(self)

    def _flow_pause(self) -> None:
        self._flow_paused = True
        self._apply_reading()

    def _flow_resume(self) -> None:
        self._flow_paused = False
        self._apply_reading()

    def set_stalled(self, stalled: bool) -> None:
        """Stop (or resume) reading the socket: no control messages, no automatic pongs."""
        self._stalled = stalled
        self._apply_reading()

    def _apply_reading(self) -> None:
        transport = self.transport
        if transport.is_closing():
            return
        if self._flow_paused or self._stalled:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame):
            if event.opcode is Opcode.PONG:
                self._on_pong(bytes(event.data))
            if event.opcode in _COUNTED:
                self.fake._on_incoming_frame(self)
            if event.opcode is Opcode.CLOSE and self.protocol.close_sent is not None:
                # Closing handshake complete. RFC 6455 has the server close TCP first; without
                # this, websockets only half-closes and waits for the client to hang up, which
                # websocket-client does not do until the application calls close().
                self.transport.close()
        super().process_event(event)

    def _on_pong(self, data: bytes) -> None:
        # A pong answers the ping with the same payload and, like in websockets, every older
        # ping too. Anything else is an unsolicited pong: counted, but it proves nothing.
        if data in self.pending_pongs:
            while self.pending_pongs:
                payload, _sent = self.pending_pongs.popitem(last=False)
                if payload == data:
                    break
        self.fake._on_pong(self)


@dataclass(eq=False)
class _Session:
    """Mutable bookkeeping of one open (or closed) WebSocket connection."""

    id: int
    conn: _FakeConnection
    kind: ConnectionKind
    path: str
    streams: list[str]
    combined: bool
    microseconds: bool
    opened_at: float
    wsapi: WsApiSession | None = None
    closed_at: float | None = None
    close_code: int | None = None
    close_reason: str | None = None
    close_cause: CloseCause | None = None
    frames_sent: int = 0
    pings_sent: int = 0
    pongs_received: int = 0
    control_messages: list[Any] = field(default_factory=list)
    control_log: list[ControlLogEntry] = field(default_factory=list)

    def record(self) -> ConnectionRecord:
        return ConnectionRecord(
            id=self.id,
            kind=self.kind,
            path=self.path,
            streams=tuple(self.streams),
            combined=self.combined,
            microseconds=self.microseconds,
            opened_at=self.opened_at,
            closed_at=self.closed_at,
            close_code=self.close_code,
            close_reason=self.close_reason,
            close_cause=self.close_cause,
            frames_sent=self.frames_sent,
            pings_sent=self.pings_sent,
            pongs_received=self.pongs_received,
            control_messages=tuple(self.control_messages),
            control_log=tuple(self.control_log),
        )


class FakeBinance:
    """A local Binance server: spot market streams, USD-M routed streams, the WebSocket API
    (user data included), and REST, with faults.

    See the package docstring (:mod:`rxbinance.testing`) for a tour and an example. All
    durations are real seconds; market time advances 100 ms per tick.

    rxbinance against it: :meth:`streams` returns a BinanceStreams pointed at every endpoint
    of the fake (``fake.streams(market="usdm")`` for USD-M; keyword arguments go to
    BinanceStreams). Observing: :attr:`attempts`, :attr:`connections`,
    :attr:`open_connections` and :attr:`rest_requests` are frozen snapshots;
    :meth:`wait_for` returns as soon as a predicate (on them, or on your own state) holds.

    User data: configure keys (``api_keys=`` or :meth:`add_api_key`), then push events with
    :meth:`publish_user_event` (to spot WS API subscriptions and USD-M ``/private``
    connections alike) after :meth:`wait_for_user_streams`; :meth:`expire_listen_key` announces
    ``listenKeyExpired``, :meth:`revoke_api_key` ends spot subscriptions with a 401, and
    ``fake.user_data.clock_skew`` makes timestamps fail with -1021.

    Args:
        symbols: Symbols the synthetic market simulates (uppercase).
        seed: Seed of the market's random walk: same seed, same market.
        tick_interval: Real seconds between market ticks; 0.1 is about real time, tests use
            e.g. 0.005 to run 20x faster. None pauses the market: it then only moves on
            :meth:`step`.
        ping_interval: Seconds between the server's ping frames on every connection (Binance:
            20). None sends no pings.
        pong_timeout: A connection is closed (1008 "Pong timeout", cause ``"pong_timeout"``)
            when a ping stays unanswered this long (Binance: 60). A pong answers a ping when
            it echoes its payload; unsolicited pongs do not count. None never drops.
        max_connection_age: Seconds after which the server closes a connection with 1001
            (Going Away, empty reason, cause ``"max_age"``), like Binance's 24 h limit. None
            keeps connections forever.
        max_incoming_per_second: More incoming frames than this (text, binary, ping and pong
            frames) within any one-second window on a spot market-stream connection (``/ws``,
            ``/stream``) closes it with 1008 "Too many requests" (cause ``"rate_limit"``).
            Binance: 5. None disables the check. The WS API is limited by request weight
            instead. Like on Binance, the pongs answering the server's own pings count too, so
            ``ping_interval * max_incoming_per_second`` must be above 1 (ValueError
            otherwise): for fast pings pass None or a higher limit.
        max_streams: Streams one spot connection may hold (Binance: 1024): more in the URL
            is rejected at the handshake (HTTP 400, -1101); a SUBSCRIBE that would exceed it
            gets the nested error reply ``{"error":{"code":2,"msg":"Invalid request: too many
            streams (max <n> per connection)"},"id":<id>}`` and subscribes nothing. (The
            server reads request lines of at most 8 KiB, HTTP 414 beyond: 1024 names only fit
            through SUBSCRIBE.)
        usdm_max_incoming_per_second: The same rule on the USD-M routes (``/public``,
            ``/market``, ``/private``). Binance: 10. The default is twice
            ``max_incoming_per_second`` (10 for the default 5, as on Binance; None when that
            is None), so raising or disabling the spot limit for fast pings does the same for
            USD-M; pass an int or None to set it on its own (same ping rule).
        usdm_max_streams: Streams one USD-M connection may hold (Binance: 200), enforced like
            ``max_streams``.
        max_connection_attempts: ``(count, window_seconds)``: at most ``count`` WebSocket
            handshakes per client IP within any sliding ``window_seconds`` (Binance spot: 300
            per 5 minutes, the default). Counted: every market-stream handshake on every route
            (spot and USD-M share one budget: binance-protocol.md gives 300 per 5 minutes
            for spot and documents no USD-M figure, so one budget is the strict reading),
            accepted or refused for any reason, refused by this limit included (hammering
            keeps an IP locked out); WS API handshakes are not counted. Over it: HTTP 429
            ``{"code":-1003,"msg":"Too many requests; current limit is <count> connections
            per <window>."}`` at the handshake. Binance may also ban an IP that keeps
            violating its limits (HTTP 418 on REST); the fake does not model the ban. Small
            values make it testable, e.g. ``(5, 0.5)``; None disables it. The times are in
            :attr:`connection_attempts`.
        rest_weight_limit: Request weight per wall-clock minute shared by REST and the WS API;
            over it: HTTP 429 (-1003) with ``Retry-After``.
        host: Interface to listen on; ports are picked free.
        close_timeout: Seconds the server waits for a client to finish a closing handshake
            (and for stop()) before cutting the TCP connection.
        max_send_buffer: Bytes allowed to queue in a connection's transport before the client
            is considered too slow and dropped (1006).
        market: Serve this market object instead of building
            ``Market(symbols=symbols, seed=seed)`` (then ``symbols`` and ``seed`` are
            ignored). The escape hatch for a custom start time, tick size or book depth.
        api_keys: API keys the fake accepts, mapped to their HMAC secrets (more, including
            Ed25519/RSA public keys, with :meth:`add_api_key`). USER_STREAM and SIGNED REST
            endpoints check them (see ``rxbinance.testing._rest``).
        rest_history_ms: REST serves only the trades and aggTrades of the last this many ms
            of market time, as an exchange that no longer has older data (None: everything
            the market keeps); sets ``Market.rest_history_ms``, also of a given ``market``.
            Cut one symbol's REST history with ``fake.with_market(lambda m:
            m.forget_history(symbol, ...))``.
    """

    def __init__(
        self,
        *,
        symbols: Sequence[str] = _DEFAULT_SYMBOLS,
        seed: int = 0,
        tick_interval: float | None = 0.1,
        ping_interval: float | None = 20.0,
        pong_timeout: float | None = 60.0,
        max_connection_age: float | None = 86400.0,
        max_incoming_per_second: int | None = _SPOT_MAX_INCOMING,
        max_streams: int = _SPOT_MAX_STREAMS,
        usdm_max_incoming_per_second: int | _Derived | None = _Derived.TWICE_SPOT,
        usdm_max_streams: int = _USDM_MAX_STREAMS,
        max_connection_attempts: tuple[int, float] | None = _MAX_CONNECTION_ATTEMPTS,
        rest_weight_limit: int = 6000,
        host: str = "127.0.0.1",
        close_timeout: float = 2.0,
        max_send_buffer: int = 8 * 2**20,
        market: Market | None = None,
        api_keys: Mapping[str, str] | None = None,
        rest_history_ms: int | None = None,
    ) -> None:
        if usdm_max_incoming_per_second is _Derived.TWICE_SPOT:
            usdm_max_incoming_per_second = (
                None if max_incoming_per_second is None else 2 * max_incoming_per_second
            )
        for name, limit in (
            ("max_incoming_per_second", max_incoming_per_second),
            ("usdm_max_incoming_per_second", usdm_max_incoming_per_second),
        ):
            if limit is not None:
                _check_count(name, limit)
            if ping_interval is not None and limit is not None and ping_interval * limit <= 1:
                # Fail loudly here rather than drop every well-behaved client for its pongs.
                raise ValueError(
                    f"ping_interval={ping_interval} with {name}={limit}: the client's pongs "
                    f"alone would exceed the rate limit; pass {name}=None (or a higher limit)"
                )
        _check_count("max_streams", max_streams)
        _check_count("usdm_max_streams", usdm_max_streams)
        if max_connection_attempts is not None:
            max_connection_attempts = _check_attempt_limit(max_connection_attempts)
        if market is None:
            market = Market(symbols=tuple(symbols), seed=seed)
        if rest_history_ms is not None:
            market.rest_history_ms = rest_history_ms
        self._market = market
        self._tick_interval = tick_interval
        self._ping_interval = ping_interval
        self._pong_timeout = pong_timeout
        self._max_age = max_connection_age
        self._max_incoming = max_incoming_per_second
        self._max_streams = max_streams
        self._usdm_max_incoming = usdm_max_incoming_per_second
        self._usdm_max_streams = usdm_max_streams
        self._max_attempts = max_connection_attempts
        self._host = host
        self._close_timeout = close_timeout
        self._max_send_buffer = max_send_buffer

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._weights = WeightMeter(rest_weight_limit)
        self._rest_faults = RestFaults()
        self._api_keys = ApiKeys(api_keys)
        self._listen_keys = ListenKeys(self._cond)  # notifies wait_for on every change
        self._wsapi = WsApi(weights=self._weights, server_time_ms=self._market_time_ms)
        self._user_data = UserDataStreams(self._wsapi, self._api_keys)
        self._listen_keys.add_listener(self._listen_key_changed)

        # Observability (guarded by the lock).
        self._attempts: list[ConnectionAttempt] = []
        # Handshakes counted against max_connection_attempts: wall-clock times of all of them
        # (for tests), and per client IP the monotonic times still inside the window.
        self._counted_attempts: list[float] = []
        self._recent_attempts: dict[str, collections.deque[float]] = {}
        self._sessions: dict[int, _Session] = {}
        self._rest_requests: list[RestRequest] = []
        # Routing: stream name -> sessions subscribed to it, in subscription order.
        self._routes: dict[str, dict[int, _Session]] = {}
        self._classified: dict[str, Literal["ok", "retired", "invalid"]] = {}
        self._classified_usdm: dict[str, Literal["ok", "retired", "invalid"]] = {}
        self._refused_names: frozenset[str] = frozenset()  # see refuse_streams()
        self._next_id = 0
        self._refuse: int | None = 0  # attempts still to refuse; None = all
        self._refusal = _REFUSED
        self._stalled = False
        self._stall_generation = 0  # bumped by every stall(), so keepalive notices short ones

        # Loop-thread state.
        self._all_connections: set[_FakeConnection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._ws_server: Server | None = None
        self._stop_event: asyncio.Event | None = None
        self._unstalled: asyncio.Event | None = None
        self._unstall_handle: asyncio.TimerHandle | None = None
        self._rest: RestServer | None = None
        self._rest_thread: threading.Thread | None = None
        self._ws_port = 0
        self._state: Literal["new", "running", "stopped"] = "new"

    # ------------------------------------------------------------------------- lifecycle

    def __enter__(self) -> FakeBinance:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        if self._state == "running":
            return f"<FakeBinance {self.ws_url} {self.rest_url}>"
        return f"<FakeBinance {self._state}>"

    def start(self) -> None:
        """Start both servers and return once they accept connections.

        Idempotent while running; a stopped FakeBinance cannot be restarted (make a new one).
        """
        if self._state == "running":
            return
        if self._state == "stopped":
            raise RuntimeError("this FakeBinance was stopped; create a new one")
        ready = concurrent.futures.Future[None]()
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._loop_thread = threading.Thread(
            target=self._run_loop, args=(loop, ready), name="FakeBinance-loop", daemon=True
        )
        self._loop_thread.start()
        try:
            ready.result()
        except BaseException:
            self._loop_thread.join()
            self._state = "stopped"
            raise

        app = RestApp(
            call_market=self.with_market,
            weights=self._weights,
            faults=self._rest_faults,
            record=self._record_rest,
            api_keys=self._api_keys,
            listen_keys=self._listen_keys,
        )
        self._state = "running"
        try:
            self._rest = RestServer((self._host, 0), app)
        except BaseException:
            self.stop()  # do not leave the loop thread behind
            raise
        self._rest_thread = threading.Thread(
            target=self._rest.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="FakeBinance-rest",
            daemon=True,
        )
        self._rest_thread.start()

    def stop(self) -> None:
        """Close every connection (1001, cause ``"stop"``), stop both servers, join threads.

        Idempotent. Returns within about ``close_timeout`` seconds even if clients do not
        answer the closing handshake.
        """
        if self._state != "running":
            self._state = "stopped"
            return
        self._state = "stopped"
        if self._rest is not None:
            self._rest.shutdown()
            self._rest.server_close()
            self._rest.close_clients(timeout=self._close_timeout + 5)
        if self._rest_thread is not None:
            self._rest_thread.join()
        loop, stop_event = self._loop, self._stop_event
        if loop is not None and stop_event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop_event.set)
        if self._loop_thread is not None:
            self._loop_thread.join()

    def _run_loop(
        self, loop: asyncio.AbstractEventLoop, ready: concurrent.futures.Future[None]
    ) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main(ready))
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
        finally:
            # Nothing may survive the loop: cancel stragglers, then close it.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self, ready: concurrent.futures.Future[None]) -> None:
        self._stop_event = asyncio.Event()
        self._unstalled = asyncio.Event()
        self._unstalled.set()
        self._ws_server = await serve(
            self._handler,
            self._host,
            0,
            process_request=self._process_request,
            process_response=self._process_response,
            create_connection=self._connection_class(),
            compression=None,  # Binance does not negotiate permessage-deflate
            ping_interval=None,  # our own keepalive: payload matching, stall-aware
            ping_timeout=None,
            close_timeout=self._close_timeout,
            server_header="FakeBinance",
        )
        self._ws_port = self._ws_server.sockets[0].getsockname()[1]
        tick_task = None
        if self._tick_interval is not None:
            tick_task = asyncio.create_task(self._tick_loop(self._tick_interval))
        ready.set_result(None)
        await self._stop_event.wait()

        if tick_task is not None:
            tick_task.cancel()
        server = self._ws_server
        server.close(close_connections=False)  # stop listening; we close connections below
        for conn in list(self._all_connections):
            if conn.protocol.state is State.OPEN:
                self._close_connection(conn, 1001, "", "stop")
            elif conn.protocol.state is State.CONNECTING:
                conn.transport.abort()
        try:
            await asyncio.wait_for(server.wait_closed(), self._close_timeout + 1.0)
        except TimeoutError:
            for conn in list(self._all_connections):
                conn.transport.abort()
            await server.wait_closed()

    def _connection_class(self) -> type[_FakeConnection]:
        class _Bound(_FakeConnection):
            fake = self

        return _Bound

    # ---------------------------------------------------------------------------- addresses

    def _require_running(self) -> None:
        if self._state != "running":
            raise RuntimeError(
                f"FakeBinance is {self._state}; call start() or use it as a context manager"
            )

    @property
    def ws_url(self) -> str:
        """Base URL of the market streams, e.g. ``ws://127.0.0.1:40123``.

        Streams live under it: ``ws_url + "/ws/btcusdt@trade"``,
        ``ws_url + "/stream?streams=btcusdt@trade/ethusdt@depth"``.
        """
        self._require_running()
        return f"ws://{self._host}:{self._ws_port}"

    @property
    def ws_api_url(self) -> str:
        """URL of the WebSocket API: ``ws_url + "/ws-api/v3"``."""
        return self.ws_url + "/ws-api/v3"

    @property
    def rest_url(self) -> str:
        """Base URL of the REST API, e.g. ``http://127.0.0.1:40124`` (paths ``/api/v3/...``)."""
        self._require_running()
        assert self._rest is not None
        return f"http://{self._host}:{self._rest.server_address[1]}"

    def streams(self, **kwargs: Any) -> BinanceStreams:
        """A new :class:`~rxbinance.BinanceStreams` pointed at every endpoint of this fake.

        ::

            with FakeBinance() as fake, fake.streams() as streams:
                rxbinance.order_book(streams, "BTCUSDT").subscribe(print)  # REST: the fake's

        Its ``ws_url`` is :attr:`ws_url`, its ``rest_url`` :attr:`rest_url` (so pipelines
        that fetch snapshots or history, ``order_book`` and ``klines_with_history``, get them
        from this fake's market) and its ``ws_api_url`` :attr:`ws_api_url` (spot user data).
        The market decides the rest: with ``market="usdm"`` (or ``"usdm-testnet"``) streams
        take the USD-M routes this fake serves on the same port (``/public``, ``/market``,
        ``/private``) and REST uses ``/fapi/v1``; ``ws_api_url`` is then
        ``ws_url + "/ws-fapi/v1"``, which this fake refuses (404: it simulates no USD-M
        WebSocket API, and BinanceStreams needs none), so nothing ever leaves 127.0.0.1.

        Every keyword argument is passed to BinanceStreams and overrides these URLs, e.g.
        ``fake.streams(retry_delay=0.05, max_retry_delay=0.2)`` for fast reconnects in fault
        tests, or ``fake.streams(api_key=key, api_secret=secret)`` for ``streams.user()`` with a
        key added by ``api_keys=`` or :meth:`add_api_key`. The other settings keep
        BinanceStreams' own defaults. The caller owns the result: close it (or use it as a
        context manager) before this fake stops. Raises RuntimeError unless the fake is
        running, and ValueError for a market BinanceStreams does not know.
        """
        product = endpoints_for(kwargs.get("market", "spot")).product
        ws_url = self.ws_url
        settings: dict[str, Any] = {
            "ws_url": ws_url,
            "rest_url": self.rest_url,
            "ws_api_url": self.ws_api_url if product == "spot" else ws_url + "/ws-fapi/v1",
        }
        settings.update(kwargs)
        return BinanceStreams(**settings)

    # ------------------------------------------------------------------------------- market

    @property
    def lock(self) -> threading.RLock:
        """The lock guarding the market and all server state (re-entrant).

        Hold it to call :attr:`market` directly. Do not call FakeBinance methods that run on
        the server loop (step, publish, faults...) while holding it: the loop needs it too.
        """
        return self._lock

    @property
    def market(self) -> Market:
        """The synthetic market. Not thread-safe: use it via :meth:`with_market` or while
        holding :attr:`lock`, since the server loop and REST threads use it concurrently."""
        return self._market

    def with_market(self, fn: Callable[[Market], T]) -> T:
        """Call ``fn(market)`` under the lock and return its result."""
        with self._lock:
            return fn(self._market)

    def true_book(self, symbol: str, update_id: int | None = None) -> BookState:
        """The market's exact order book of ``symbol`` (after ``update_id``; default: now)."""
        return self.with_market(lambda m: m.true_book(symbol, update_id))

    def trades(self, symbol: str) -> list[dict[str, Any]]:
        """Every trade of ``symbol`` so far, oldest first, in the ``trade`` stream shape."""
        return self.with_market(lambda m: m.trade_history(symbol))

    def inject_gap(self, symbol: str, size: int = 1) -> None:
        """Make the next diff-depth event of each speed of ``symbol`` skip ``size`` updates
        (``U`` jumps) while the book still changes, so a client that ignores the gap is wrong."""
        self.with_market(lambda m: m.inject_gap(symbol, size))

    def _market_time_ms(self) -> int:
        with self._lock:
            return int(self._market.time_ms)

    def _classify_usdm(self, name: str) -> Literal["ok", "retired", "invalid"]:
        # USD-M names on the routed paths; the market simulates spot only, so USD-M-only
        # streams (markPrice, forceOrder...) deliver what publish() sends and nothing else.
        if name in self._refused_names:
            return "invalid"
        with self._lock:
            kind = self._classified_usdm.get(name)
            if kind is None:
                try:
                    validate_usdm_stream_name(name)
                    kind = "ok"
                except InvalidInputError:
                    kind = "invalid"
                self._classified_usdm[name] = kind
            return kind

    @staticmethod
    def _serves(conn: _FakeConnection, name: str) -> bool:
        """Whether a connection on ``conn.route`` gets the data of stream ``name``: un-routed
        (spot) connections get every stream; ``/public`` only book data, ``/market`` the
        rest, ``/private`` no market stream at all."""
        if conn.route is None:
            return True
        if conn.route == "private":
            return False
        return usdm_route(name) == conn.route

    def _classify(self, name: str) -> Literal["ok", "retired", "invalid"]:
        # A pure function of the name: cache it, the tick asks for every active stream.
        if name in self._refused_names:
            return "invalid"
        with self._lock:
            kind = self._classified.get(name)
            if kind is None:
                kind = self._classified[name] = self._market.classify_stream(name)
            return kind

    def step(self, n: int = 1) -> list[tuple[str, Any]]:
        """Run ``n`` market ticks on the server loop, now, and wait for them.

        Works paused (``tick_interval=None``) or running. Returns the (stream, payload) events
        the market emitted for the streams someone is subscribed to; every frame carrying them
        was written to its socket before this returns (none while stalled).
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        return self._on_loop(lambda: [event for _ in range(n) for event in self._tick()])

    async def _tick_loop(self, interval: float) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + interval
        while True:
            delay = due - loop.time()
            await asyncio.sleep(max(0.0, delay))
            self._tick()
            due += interval
            if loop.time() - due > 1.0:
                due = loop.time() + interval  # far behind (loaded machine): skip, don't burst

    def _tick(self) -> list[tuple[str, Any]]:
        with self._lock:
            active = [
                name for name, subs in self._routes.items() if subs and self._classify(name) == "ok"
            ]
            events: list[tuple[str, Any]] = self._market.step(active)
            if self._stalled:
                return events
            now = self._market.time_ms
            for name, payload in events:
                subscribers = self._routes.get(name)
                if not subscribers:
                    continue
                frames: dict[tuple[bool, bool, bool], str] = {}
                for session in list(subscribers.values()):
                    # A routed connection is USD-M: the same market, in futures' shapes.
                    futures = session.conn.route is not None
                    key = (session.combined, session.microseconds, futures)
                    frame = frames.get(key)
                    if frame is None:
                        body = _as_futures(name, payload, now) if futures else payload
                        frame = frames[key] = encode_event(
                            name, body, combined=key[0], microseconds=key[1]
                        )
                    self._write(session, frame)
            return events

    # ----------------------------------------------------------------------- loop helpers

    def _on_loop(self, fn: Callable[[], T], timeout: float = 30.0) -> T:
        """Run ``fn`` on the server loop thread and return its result."""
        self._require_running()
        loop = self._loop
        assert loop is not None
        if threading.current_thread() is self._loop_thread:
            return fn()
        if getattr(self._lock, "_is_owned", lambda: False)():
            raise RuntimeError(
                "called while holding fake.lock: the server loop needs it (deadlock)"
            )
        result = concurrent.futures.Future[T]()

        def run() -> None:
            try:
                result.set_result(fn())
            except BaseException as exc:
                result.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return result.result(timeout)

    def _write(self, session: _Session, data: str | bytes) -> bool:
        """Write one text (str) or binary (bytes) frame now; False if the connection is not open.

        Loop thread only, lock held. Never waits: see "Writes" in the module docstring.
        """
        conn = session.conn
        if conn.protocol.state is not State.OPEN:
            return False
        if isinstance(data, str):
            conn.protocol.send_text(data.encode())
        else:
            conn.protocol.send_binary(data)
        conn.send_data()
        session.frames_sent += 1
        transport = cast(asyncio.WriteTransport, conn.transport)
        if transport.get_write_buffer_size() > self._max_send_buffer:
            conn.close_cause = conn.close_cause or "slow_consumer"
            transport.abort()
        self._cond.notify_all()
        return True

    def _send_json(self, session: _Session, obj: Any) -> None:
        with self._cond:
            self._write(session, dumps(obj))

    def _close_connection(
        self, conn: _FakeConnection, code: int, reason: str, cause: CloseCause
    ) -> None:
        """Start a server-side closing handshake; cut TCP after ``close_timeout``. Loop thread."""
        if conn.close_cause is None:
            conn.close_cause = cause
        if conn.protocol.state is not State.OPEN:
            return
        conn.protocol.send_close(code, reason)
        conn.send_data()
        assert self._loop is not None
        self._loop.call_later(self._close_timeout, self._abort_if_open, conn)

    @staticmethod
    def _abort_if_open(conn: _FakeConnection) -> None:
        if not conn.connection_lost_waiter.done():
            conn.transport.abort()

    def _open_sessions(self, kind: ConnectionKind | None = None) -> list[_Session]:
        return [
            s
            for s in self._sessions.values()
            if s.closed_at is None and (kind is None or s.kind == kind)
        ]

    # ------------------------------------------------------------------------- handshake

    def _reject(self, conn: ServerConnection, path: str, rejection: Rejection) -> Response:
        response = conn.respond(rejection.status, rejection.body)
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "application/json;charset=UTF-8"
        with self._cond:
            self._attempts.append(
                ConnectionAttempt(path, time.time(), False, rejection.status, rejection.body)
            )
            self._cond.notify_all()
        cast(_FakeConnection, conn).attempt_recorded = True
        return response

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        with self._lock:
            over = self._count_attempt(conn, request.path)
            if over is not None:
                return self._reject(conn, request.path, over)
            if self._refuse is None or self._refuse > 0:
                if self._refuse is not None:
                    self._refuse -= 1
                return self._reject(conn, request.path, self._refusal)
            fake_conn = cast(_FakeConnection, conn)
            route, target = _split_route(request.path)
            if route == "private":
                endpoint = self._private_endpoint(fake_conn, target)
            elif route is not None:
                endpoint = parse_request_path(
                    target, classify=self._classify_usdm, max_streams=self._usdm_max_streams
                )
                if isinstance(endpoint, Endpoint) and endpoint.kind != "stream":
                    endpoint = Rejection(404, -1000, f"Unknown path: {request.path}")
            else:
                endpoint = parse_request_path(
                    request.path, classify=self._classify, max_streams=self._max_streams
                )
        if isinstance(endpoint, Rejection):
            return self._reject(conn, request.path, endpoint)
        fake_conn.route = route
        fake_conn.endpoint = endpoint
        return None

    def _count_attempt(self, conn: ServerConnection, target: str) -> Rejection | None:
        """Count a market-stream handshake against ``max_connection_attempts``; the 429 to
        answer when its IP is over the limit, else None. Lock held, loop thread."""
        path = unquote(urlsplit(target).path)
        if path.startswith(("/ws-api/", "/ws-fapi/")) or path in ("/ws-api", "/ws-fapi"):
            return None  # the WebSocket API is not a market-stream connection
        self._counted_attempts.append(time.time())
        self._cond.notify_all()
        if self._max_attempts is None:
            return None
        count, window = self._max_attempts
        remote = conn.remote_address
        ip = str(remote[0]) if remote else ""
        # Monotonic: the window must not stretch or shrink when the wall clock is set.
        now = time.monotonic()
        recent = self._recent_attempts.setdefault(ip, collections.deque())
        recent.append(now)  # refused attempts count too: an IP that hammers stays out
        while recent and recent[0] <= now - window:
            recent.popleft()
        if len(recent) <= count:
            return None
        return Rejection(
            429,
            -1003,
            f"Too many requests; current limit is {count} connections per {_per(window)}.",
        )

    def _private_endpoint(self, conn: _FakeConnection, target: str) -> Endpoint | Rejection:
        """``/private/ws?listenKey=..&events=..`` (or ``/private/stream?...``): USD-M user data
        of one active listen key. Lock held."""
        parts = urlsplit(target)
        path = unquote(parts.path).rstrip("/")
        if path not in ("/ws", "/stream"):
            return Rejection(404, -1000, f"Unknown path: /private{parts.path}")
        query: dict[str, str] = {}
        for item in parts.query.split("&"):
            key, _, value = item.partition("=")
            if key and key not in query:  # several listenKeys: the first one is served
                query[unquote(key)] = unquote(value)
        listen_key = query.get("listenKey", "")
        record = self._listen_keys.get(listen_key) if listen_key else None
        if record is None or record.state != "active":
            return Rejection(400, -1125, "This listenKey does not exist.")
        conn.listen_key = listen_key
        conn.user_events = tuple(e for e in query.get("events", "").split("/") if e)
        return Endpoint("stream", combined=path == "/stream")

    def _process_response(
        self, conn: ServerConnection, request: Request, response: Response
    ) -> None:
        # websockets' own rejections (not a WebSocket request, bad headers...) are attempts too.
        fake_conn = cast(_FakeConnection, conn)
        if response.status_code != 101 and not fake_conn.attempt_recorded:
            fake_conn.attempt_recorded = True
            with self._cond:
                body = bytes(response.body).decode("utf-8", "replace")
                self._attempts.append(
                    ConnectionAttempt(request.path, time.time(), False, response.status_code, body)
                )
                self._cond.notify_all()

    # -------------------------------------------------------------------------- sessions

    async def _handler(self, server_conn: ServerConnection) -> None:
        conn = cast(_FakeConnection, server_conn)
        session = self._open_session(conn)
        loop = asyncio.get_running_loop()
        ping_task = None
        if self._ping_interval is not None:
            ping_task = asyncio.create_task(self._keepalive(conn, session, self._ping_interval))
        age_timer = None
        if self._max_age is not None:
            age_timer = loop.call_later(
                self._max_age, self._close_connection, conn, 1001, "", "max_age"
            )
        assert self._unstalled is not None
        try:
            while True:
                try:
                    message = await conn.recv()
                except ConnectionClosed:
                    break
                # A message read just before a stall waits: a stalled server answers nothing.
                await self._unstalled.wait()
                self._on_message(session, message)
        finally:
            if ping_task is not None:
                ping_task.cancel()
            if age_timer is not None:
                age_timer.cancel()
            if not conn.connection_lost_waiter.done():
                self._close_connection(conn, 1000, "", "client")
                await asyncio.shield(conn.connection_lost_waiter)
            self._close_session(session)

    def _open_session(self, conn: _FakeConnection) -> _Session:
        endpoint = conn.endpoint
        assert endpoint is not None
        assert conn.request is not None
        path = conn.request.path
        with self._cond:
            self._next_id += 1
            session = _Session(
                id=self._next_id,
                conn=conn,
                kind=endpoint.kind,
                path=path,
                streams=list(endpoint.streams),
                combined=endpoint.combined,
                microseconds=endpoint.microseconds,
                opened_at=time.time(),
            )
            if endpoint.kind == "ws-api":
                session.wsapi = WsApiSession(
                    connection_id=session.id,
                    microseconds=endpoint.microseconds,
                    return_rate_limits=endpoint.return_rate_limits,
                    connected_since_ms=self._market_time_ms(),
                    send=lambda obj: self._send_json(session, obj),
                )
                self._weights.charge(2)  # connecting to the WS API costs 2 weight
            conn.session = session
            self._sessions[session.id] = session
            for name in session.streams:
                if self._serves(conn, name):
                    self._routes.setdefault(name, {})[session.id] = session
            self._attempts.append(
                ConnectionAttempt(path, session.opened_at, True, 101, "", session.id)
            )
            conn.attempt_recorded = True
            if self._stalled:
                conn.set_stalled(True)
            self._cond.notify_all()
        return session

    def _close_session(self, session: _Session) -> None:
        protocol = session.conn.protocol
        sent, received = protocol.close_sent, protocol.close_rcvd
        if sent is not None and (received is None or protocol.close_rcvd_then_sent is False):
            code, reason = sent.code, sent.reason  # the server spoke first
        elif received is not None:
            code, reason = received.code, received.reason
        else:
            code, reason = 1006, ""  # no close frame at all
        with self._cond:
            for name in session.streams:
                subscribers = self._routes.get(name)
                if subscribers is not None:
                    subscribers.pop(session.id, None)
                    if not subscribers:
                        del self._routes[name]
            session.closed_at = time.time()
            session.close_code, session.close_reason = code, reason
            session.close_cause = session.conn.close_cause or "client"
            self._cond.notify_all()

    def _on_message(self, session: _Session, message: str | bytes) -> None:
        with self._cond:
            if session.kind == "ws-api":
                assert session.wsapi is not None
                session.control_messages.append(_parse_or_raw(message))
                reply = self._wsapi.handle(session.wsapi, message)
                self._write(session, dumps(reply))
                pushed, session.wsapi.after_reply[:] = list(session.wsapi.after_reply), []
                for obj in pushed:
                    self._write(session, dumps(obj))
                return
            conn = session.conn
            outcome = handle_control(
                message,
                streams=session.streams,
                combined=session.combined,
                classify=self._classify if conn.route is None else self._classify_usdm,
                max_streams=self._max_streams if conn.route is None else self._usdm_max_streams,
            )
            session.control_messages.append(outcome.parsed)
            if outcome.method is not None:
                parsed = outcome.parsed
                session.control_log.append(
                    ControlLogEntry(
                        time.time(), outcome.method, parsed.get("params"), parsed.get("id")
                    )
                )
            for name in outcome.subscribe:
                session.streams.append(name)
                if self._serves(conn, name):
                    self._routes.setdefault(name, {})[session.id] = session
            for name in outcome.unsubscribe:
                session.streams.remove(name)
                subscribers = self._routes.get(name)
                if subscribers is not None:
                    subscribers.pop(session.id, None)
                    if not subscribers:
                        del self._routes[name]
            if outcome.combined is not None:
                session.combined = outcome.combined
            self._write(session, dumps(outcome.reply))
            self._cond.notify_all()

    # ------------------------------------------------------------------ connection rules

    def _on_incoming_frame(self, conn: _FakeConnection) -> None:
        # Un-routed paths are spot; the routed ones (/public, /market, /private) USD-M.
        limit = self._max_incoming if conn.route is None else self._usdm_max_incoming
        endpoint = conn.endpoint
        if limit is None or endpoint is None or endpoint.kind != "stream":
            return
        assert self._loop is not None
        now = self._loop.time()
        conn.arrivals.append(now)
        while conn.arrivals and conn.arrivals[0] <= now - 1.0:
            conn.arrivals.popleft()
        if len(conn.arrivals) > limit and conn.protocol.state is State.OPEN:
            self._close_connection(conn, 1008, "Too many requests", "rate_limit")

    def _on_pong(self, conn: _FakeConnection) -> None:
        session = conn.session
        if session is not None:
            with self._cond:
                session.pongs_received += 1
                self._cond.notify_all()

    async def _keepalive(self, conn: _FakeConnection, session: _Session, interval: float) -> None:
        """Ping every ``interval``; close when the oldest unanswered ping is too old."""
        loop = asyncio.get_running_loop()
        assert self._unstalled is not None
        next_ping = loop.time() + interval
        while _is_open(conn):
            wake = next_ping
            if conn.pending_pongs and self._pong_timeout is not None:
                oldest = next(iter(conn.pending_pongs.values()))
                wake = min(wake, oldest + self._pong_timeout)
            generation = self._stall_generation
            await asyncio.sleep(max(0.0, wake - loop.time()))
            if self._stalled or generation != self._stall_generation:
                # A stalled server neither pings nor holds unanswered pings against the client
                # (it could not read the pongs, even if the stall was shorter than this sleep):
                # forgive them and restart the cycle once the stall is over.
                await self._unstalled.wait()
                conn.pending_pongs.clear()
                next_ping = loop.time() + interval
                continue
            if not _is_open(conn):
                return
            now = loop.time()
            if conn.pending_pongs and self._pong_timeout is not None:
                oldest = next(iter(conn.pending_pongs.values()))
                if now - oldest >= self._pong_timeout:
                    self._close_connection(conn, 1008, "Pong timeout", "pong_timeout")
                    return
            if now >= next_ping:
                payload = str(int(time.time() * 1000)).encode()
                while payload in conn.pending_pongs:  # sub-millisecond intervals in tests
                    payload += b"+"
                conn.pending_pongs[payload] = now
                conn.protocol.send_ping(payload)
                conn.send_data()
                next_ping = now + interval
                with self._cond:
                    session.pings_sent += 1
                    self._cond.notify_all()

    # --------------------------------------------------------------------- scripted data

    def publish(self, stream: str, payload: Any) -> int:
        """Send ``payload`` to every connection subscribed to ``stream``; return how many.

        - dict or list: sent as compact JSON text, wrapped as ``{"stream":..,"data":..}`` on
          connections whose ``combined`` property is true, never converted to µs;
        - str: sent verbatim as one text frame (malformed JSON is fine), never wrapped;
        - bytes: sent as one binary frame, never wrapped.

        ``stream`` may be any name the market does not call invalid, including streams the
        market never emits and retired ones. Publishing happens on the server loop after
        every subscription change the caller has already observed (e.g. with
        :meth:`wait_for_connections`), so those connections do get the frame. Returns 0 while
        stalled. Raises ValueError for an invalid stream name.
        """
        if self._classify(stream) == "invalid" and self._classify_usdm(stream) == "invalid":
            raise ValueError(f"invalid stream name: {stream!r}")
        if isinstance(payload, (dict, list)):
            raw: str | bytes | None = None
            data = dumps(payload)  # serialise in the caller's thread: errors surface here
        elif isinstance(payload, (str, bytes)):
            raw, data = payload, ""
        else:
            raise TypeError(
                f"payload must be dict, list, str or bytes, not {type(payload).__name__}"
            )

        def run() -> int:
            with self._lock:
                if self._stalled:
                    return 0
                count = 0
                wrapped = None
                for session in list(self._routes.get(stream, {}).values()):
                    if raw is not None:
                        frame: str | bytes = raw
                    elif session.combined:
                        wrapped = wrapped or f'{{"stream":{dumps(stream)},"data":{data}}}'
                        frame = wrapped
                    else:
                        frame = data
                    count += self._write(session, frame)
                return count

        return self._on_loop(run)

    def send_malformed(self, text: str = "{not json") -> int:
        """Send ``text`` as a text frame to every open market-stream connection; return how
        many got it (0 while stalled)."""

        def run() -> int:
            with self._lock:
                if self._stalled:
                    return 0
                return sum(self._write(s, text) for s in self._open_sessions("stream"))

        return self._on_loop(run)

    # ---------------------------------------------------------------------------- faults

    def drop_connections(
        self, code: int | None = None, reason: str = "", *, only: int | None = None
    ) -> int:
        """Close every open WebSocket connection (streams and WS API), or only the one whose
        record id is ``only``; return how many.

        ``code=None`` cuts TCP without a close frame (the client sees 1006); otherwise the
        server sends a close frame with ``code`` and ``reason`` and cuts TCP after
        ``close_timeout`` if the client does not complete the handshake. Cause ``"drop"``.
        Returns once the close frames (or aborts) have been handed to the sockets.
        """

        def run() -> int:
            with self._lock:
                sessions = [s for s in self._open_sessions() if only is None or s.id == only]
                for session in sessions:
                    conn = session.conn
                    if code is None:
                        conn.close_cause = conn.close_cause or "drop"
                        conn.transport.abort()
                    else:
                        self._close_connection(conn, code, reason, "drop")
                return len(sessions)

        return self._on_loop(run)

    def refuse_streams(self, *names: str) -> None:
        """From now on, treat ``names`` as invalid stream names, whatever their form: a
        SUBSCRIBE naming one is refused whole (code 2 ``Invalid request: invalid stream``), and
        so is a handshake with one in its URL, as Binance does with names it does not know.
        ``refuse_streams()`` with no name accepts them again. For testing a client's handling
        of a refusal its own name checks would not predict."""
        with self._cond:
            self._refused_names = frozenset(names)

    def refuse_connections(self, n: int | None = None, *, status: int = 503) -> None:
        """Refuse the next ``n`` connection attempts (None: all until :meth:`accept_connections`)
        with HTTP ``status``: 503 ``{"code":-1008,"msg":"Server is currently overloaded..."}``
        by default; 451 (a restricted location), 429, 403, 404 and 500 as Binance words them."""
        if status not in _REFUSALS:
            allowed = ", ".join(map(str, sorted(_REFUSALS)))
            raise ValueError(f"refuse_connections: status {status!r}: allowed are {allowed}")
        with self._cond:
            self._refuse = n
            self._refusal = _REFUSALS[status]

    def accept_connections(self) -> None:
        """Stop refusing connection attempts."""
        with self._cond:
            self._refuse = 0

    def stall(self, seconds: float | None = None) -> None:
        """Freeze the WebSocket side for ``seconds`` (None: until :meth:`unstall`).

        While stalled the server stops reading every connection (so it answers no control
        message and no client ping), sends no pings and no data: market events are dropped
        (the market keeps moving, so a client sees a gap afterwards) and :meth:`publish` /
        :meth:`send_malformed` deliver nothing. Connections stay open and new ones complete
        their handshake but are stalled too. Unanswered pings are forgiven afterwards.
        :meth:`drop_connections` and :meth:`server_shutdown` still work.
        """

        def run() -> None:
            assert self._loop is not None
            assert self._unstalled is not None
            with self._cond:
                self._stalled = True
                self._stall_generation += 1
                self._unstalled.clear()
                if self._unstall_handle is not None:
                    self._unstall_handle.cancel()
                    self._unstall_handle = None
                for session in self._open_sessions():
                    session.conn.set_stalled(True)
                if seconds is not None:
                    self._unstall_handle = self._loop.call_later(seconds, self._unstall_now)
                self._cond.notify_all()

        self._on_loop(run)

    def unstall(self) -> None:
        """End a stall now (no-op when not stalled)."""
        self._on_loop(self._unstall_now)

    def _unstall_now(self) -> None:
        assert self._unstalled is not None
        with self._cond:
            self._stalled = False
            if self._unstall_handle is not None:
                self._unstall_handle.cancel()
                self._unstall_handle = None
            for session in self._open_sessions():
                session.conn.set_stalled(False)
            self._unstalled.set()
            self._cond.notify_all()

    @property
    def stalled(self) -> bool:
        """True while :meth:`stall` is in effect."""
        return self._stalled

    def server_shutdown(self, close_code: int = 1001) -> int:
        """Announce a shutdown and close every connection (cause ``"server_shutdown"``).

        Raw stream connections get ``{"e":"serverShutdown","E":<market time>}``, combined ones
        ``{"stream":"!serverShutdown","data":{...}}`` and WS API ones
        ``{"event":{"e":"serverShutdown","E":..}}`` (``E`` in µs where the URL asked), then a
        close frame with ``close_code``. Sent even while stalled. Returns how many
        connections were told.
        """

        def run() -> int:
            with self._lock:
                now = self._market_time_ms()
                sessions = self._open_sessions()
                for session in sessions:
                    event = {
                        "e": "serverShutdown",
                        "E": now * 1000 if session.microseconds else now,
                    }
                    if session.kind == "ws-api":
                        frame = dumps({"event": event})
                    elif session.combined:
                        frame = dumps({"stream": "!serverShutdown", "data": event})
                    else:
                        frame = dumps(event)
                    self._write(session, frame)
                    self._close_connection(session.conn, close_code, "", "server_shutdown")
                return len(sessions)

        return self._on_loop(run)

    def rest_fault(self, status: int = 429, retry_after: int = 2, times: int | None = 1) -> None:
        """Answer the next ``times`` REST requests (None: all until :meth:`clear_rest_fault`)
        with ``status`` 429 (``-1003`` "Too much request weight used...") or 418 (``-1003``
        "Way too much request weight used; IP banned until <ms>...") and a ``Retry-After:
        <retry_after>`` header. These requests are not charged any weight."""
        self._rest_faults.set(status, retry_after, times)

    def clear_rest_fault(self) -> None:
        """Stop injecting REST errors."""
        self._rest_faults.clear()

    def rest_weight_used(self) -> int:
        """Request weight used in the current wall-clock minute (REST and WS API)."""
        return self._weights.used()

    def add_api_key(
        self,
        api_key: str,
        secret: str | bytes | None = None,
        *,
        public_key: str | bytes | None = None,
    ) -> ApiKey:
        """Accept ``api_key`` with an HMAC ``secret`` or a PEM ``public_key`` (Ed25519/RSA)."""
        return self._api_keys.add(api_key, secret, public_key=public_key)

    @property
    def api_keys(self) -> ApiKeys:
        """The API keys the fake accepts (``verify(api_key, payload, signature)``, ``remove``)."""
        return self._api_keys

    @property
    def listen_keys(self) -> tuple[ListenKeyRecord, ...]:
        """Every USD-M listen key created so far, oldest first, with state and expiry."""
        return self._listen_keys.snapshot()

    def expire_listen_key(self, listen_key: str) -> ListenKeyRecord:
        """Expire an active listen key now, as if its 60 minutes had run out (KeyError if it
        is not active): keepalives then get -1125 and a new POST creates a new key."""
        return self._listen_keys.expire(listen_key)

    # ---------------------------------------------------------------------------- user data

    @property
    def user_data(self) -> UserDataStreams:
        """The WS API's user data methods (set ``fake.user_data.clock_skew`` to make the
        server's clock differ from the client's, for -1021)."""
        return self._user_data

    def publish_user_event(self, api_key: str, event: dict[str, Any]) -> int:
        """Send a user data ``event`` of ``api_key``'s account; return how many connections
        got it.

        - spot: to every WS API subscription of ``api_key``
          (``userDataStream.subscribe.signature``), wrapped as
          ``{"subscriptionId": n, "event": event}``;
        - USD-M: to every ``/private`` connection on an active listen key of ``api_key``,
          bare (``{"stream": <listenKey>, "data": event}`` on ``/private/stream``), unless
          the connection's ``events=`` filter leaves out ``event["e"]``.

        Returns once the frames are handed to the sockets (0 while stalled).
        """
        data = dumps(event)  # serialise in the caller's thread: errors surface here

        def run() -> int:
            with self._lock:
                if self._stalled:
                    return 0
                count = 0
                for session in self._open_sessions():
                    conn = session.conn
                    if session.wsapi is not None:
                        count += self._user_data.deliver(session.wsapi, api_key, event) > 0
                    elif conn.route == "private" and conn.listen_key is not None:
                        record = self._listen_keys.get(conn.listen_key)
                        if record is None or record.state != "active":
                            continue
                        if record.api_key != api_key:
                            continue
                        if conn.user_events and event.get("e") not in conn.user_events:
                            continue
                        count += self._write_user(session, data)
                return count

        return self._on_loop(run)

    def _user_stream_ids(self, api_key: str | None) -> list[int]:
        # Lock held. Connections that would get a user event of api_key (None: any key).
        ids = []
        for session in self._open_sessions():
            conn = session.conn
            if session.wsapi is not None:
                owners = self._user_data.subscriptions(session.wsapi).values()
                if owners and (api_key is None or api_key in owners):
                    ids.append(session.id)
            elif conn.route == "private" and conn.listen_key is not None:
                record = self._listen_keys.get(conn.listen_key)
                if record is None or record.state != "active":
                    continue
                if api_key is None or record.api_key == api_key:
                    ids.append(session.id)
        return ids

    def user_streams(self, api_key: str | None = None) -> tuple[ConnectionRecord, ...]:
        """The open connections :meth:`publish_user_event` would reach for ``api_key`` (None:
        any key): WS API connections with an active subscription, and ``/private``
        connections on an active listen key."""
        with self._lock:
            return tuple(self._sessions[i].record() for i in self._user_stream_ids(api_key))

    def wait_for_user_streams(
        self, n: int = 1, api_key: str | None = None, timeout: float = 5.0
    ) -> tuple[ConnectionRecord, ...]:
        """Wait until at least ``n`` connections are subscribed to user data of ``api_key``
        (see :meth:`user_streams`); return them."""

        def enough(fake: FakeBinance) -> bool:
            return len(fake._user_stream_ids(api_key)) >= n

        enough.__name__ = f"{n} user data stream(s)" + (f" of {api_key!r}" if api_key else "")
        self.wait_for(enough, timeout)
        return self.user_streams(api_key)

    def _write_user(self, session: _Session, data: str) -> bool:
        if session.combined:
            key = session.conn.listen_key
            return self._write(session, f'{{"stream":{dumps(key)},"data":{data}}}')
        return self._write(session, data)

    def revoke_api_key(self, api_key: str) -> int:
        """Stop accepting ``api_key``, as when a key is deleted on Binance; return how many
        WS API connections were told.

        Later requests with it get -2015. Its WS API subscriptions end, each such connection
        getting ``{"id":null,"status":401,"error":{"code":-2015,"msg":"Invalid API-key, IP, or
        permissions for action."}}``.
        """
        self._api_keys.remove(api_key)

        def run() -> int:
            with self._lock:
                return sum(
                    self._user_data.revoke(s.wsapi, api_key) > 0
                    for s in self._open_sessions("ws-api")
                    if s.wsapi is not None
                )

        return self._on_loop(run)

    def _listen_key_changed(self, event: str, record: ListenKeyRecord) -> None:
        # A ListenKeys listener: runs under the lock on whichever thread changed the key, so
        # only schedule the announcement on the loop.
        if event != "expired" or self._loop is None or self._state != "running":
            return
        listen_key = record.listen_key
        ended_ms = int((record.ended_at or time.time()) * 1000)

        def announce() -> None:
            # E is a string on USD-M (binance-protocol.md 8.5, 10.6).
            data = dumps({"e": "listenKeyExpired", "E": str(ended_ms), "listenKey": listen_key})
            with self._lock:
                for session in self._open_sessions():
                    if session.conn.route == "private" and session.conn.listen_key == listen_key:
                        self._write_user(session, data)

        self._loop.call_soon_threadsafe(announce)

    @property
    def wsapi(self) -> WsApi:
        """The WS API method table (add methods with ``fake.wsapi.add_method``)."""
        return self._wsapi

    # ---------------------------------------------------------------------- observability

    def _record_rest(self, request: RestRequest) -> None:
        with self._cond:
            self._rest_requests.append(request)
            self._cond.notify_all()

    @property
    def attempts(self) -> tuple[ConnectionAttempt, ...]:
        """Every WebSocket connection attempt answered so far, in order."""
        with self._lock:
            return tuple(self._attempts)

    @property
    def connection_attempts(self) -> tuple[float, ...]:
        """Wall-clock times (``time.time()``, when the request was read) of every handshake
        counted against ``max_connection_attempts``, oldest first: market-stream handshakes
        on every route, from every client IP, accepted or refused (WS API handshakes are not
        counted). Recorded even when the limit is None, so a test can check a client's own
        pacing of its connection attempts."""
        with self._lock:
            return tuple(self._counted_attempts)

    def subscriptions(self) -> dict[int, tuple[str, ...]]:
        """The streams of every open market-stream connection right now, by connection id
        (in opening order): the server's view, as LIST_SUBSCRIPTIONS would answer it."""
        with self._lock:
            return {s.id: tuple(s.streams) for s in self._open_sessions("stream")}

    @property
    def connections(self) -> tuple[ConnectionRecord, ...]:
        """Snapshots of every WebSocket connection ever opened, in opening order."""
        with self._lock:
            return tuple(s.record() for s in self._sessions.values())

    @property
    def open_connections(self) -> tuple[ConnectionRecord, ...]:
        """Snapshots of the connections open right now, in opening order."""
        with self._lock:
            return tuple(s.record() for s in self._open_sessions())

    def connection(self, connection_id: int) -> ConnectionRecord:
        """The snapshot of one connection by id (KeyError if unknown)."""
        with self._lock:
            return self._sessions[connection_id].record()

    @property
    def rest_requests(self) -> tuple[RestRequest, ...]:
        """Every REST request answered so far, in order."""
        with self._lock:
            return tuple(self._rest_requests)

    def wait_for(self, predicate: Callable[[FakeBinance], bool], timeout: float = 5.0) -> None:
        """Block until ``predicate(fake)`` is true, and return (None) as soon as it is; raise
        TimeoutError if it is still false after ``timeout`` seconds.

        The predicate may read the server's state (``connections``, ``attempts``,
        ``rest_requests``...) and your own code's state alike (a list a subscriber fills)::

            seen = []
            streams.trades("BTCUSDT").subscribe(seen.append)
            fake.wait_for(lambda f: len(seen) >= 3)

        It is evaluated under :attr:`lock` on the calling thread: at once, each time the
        server's state changes (attempt, open, close, subscription change, frame sent, ping,
        pong, REST request), and at least every 10 ms in between, since changes on the
        client's side reach no notification of the server's. So it must be quick and must not
        call methods that run on the server loop (step, publish, faults...). The error message
        names the predicate (its ``__name__``) and describes the server's state.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    name = getattr(predicate, "__name__", repr(predicate))
                    raise TimeoutError(
                        f"FakeBinance.wait_for({name}) still false after {timeout} s; "
                        + self._describe()
                    )
                # The server's own changes notify the condition; the client's (a subscriber
                # filling a list) cannot, so look again after a short poll interval anyway.
                self._cond.wait(min(remaining, _POLL_INTERVAL))

    def wait_for_connections(
        self,
        n: int,
        stream: str | None = None,
        timeout: float = 5.0,
        *,
        kind: ConnectionKind | None = "stream",
    ) -> tuple[ConnectionRecord, ...]:
        """Wait until at least ``n`` connections of ``kind`` (None: any) are open, subscribed
        to ``stream`` if given; return those connections' snapshots."""

        def matching(fake: FakeBinance) -> tuple[ConnectionRecord, ...]:
            return tuple(
                c
                for c in fake.open_connections
                if (kind is None or c.kind == kind) and (stream is None or stream in c.streams)
            )

        def enough(fake: FakeBinance) -> bool:
            return len(matching(fake)) >= n

        enough.__name__ = f"{n} open {kind or 'any'} connection(s)" + (
            f" on {stream}" if stream else ""
        )
        self.wait_for(enough, timeout)
        return matching(self)

    def wait_for_attempts(self, n: int, timeout: float = 5.0) -> tuple[ConnectionAttempt, ...]:
        """Wait until at least ``n`` connection attempts were answered; return them all."""

        def enough(fake: FakeBinance) -> bool:
            return len(fake.attempts) >= n

        enough.__name__ = f"{n} connection attempt(s)"
        self.wait_for(enough, timeout)
        return self.attempts

    def _describe(self) -> str:
        open_ = self._open_sessions()
        lines = [
            f"{len(open_)} open connection(s)"
            + "".join(
                f"\n  #{s.id} {s.kind} {s.path} streams={s.streams} combined={s.combined} "
                f"frames_sent={s.frames_sent} pings={s.pings_sent} pongs={s.pongs_received}"
                for s in open_
            ),
            f"{len(self._sessions) - len(open_)} closed connection(s)",
            f"{len(self._attempts)} attempt(s), "
            f"{sum(1 for a in self._attempts if not a.accepted)} rejected",
            f"{len(self._rest_requests)} REST request(s)",
        ]
        if self._stalled:
            lines.append("stalled")
        return "; ".join(lines)


def _as_futures(name: str, payload: Any, now_ms: int) -> Any:
    """A spot payload of the simulated market in USD-M's shape (binance-protocol.md 8.3).

    Diff depth gains ``T`` and ``pu``: the final update id of the previous event, which for the
    market's contiguous sequence is ``U - 1``; after :meth:`FakeBinance.inject_gap` that is an
    id the client never saw, exactly how a lost futures event shows (``pu`` != the previous
    ``u`` received). Partial depth becomes that same ``depthUpdate`` shape. aggTrade gains
    ``nq`` and loses ``M``; bookTicker gains ``e``, ``E`` and ``T``; the 24 h ticker loses the
    spot-only ``x``/``b``/``B``/``a``/``A``. Anything else is the same on both markets.
    """
    if type(payload) is not dict:
        return payload
    kind = payload.get("e")
    if kind == "depthUpdate":
        return {
            "e": "depthUpdate",
            "E": payload["E"],
            "T": payload["E"],
            "s": payload["s"],
            "U": payload["U"],
            "u": payload["u"],
            "pu": payload["U"] - 1,
            "b": payload["b"],
            "a": payload["a"],
        }
    if "lastUpdateId" in payload:  # partial depth
        last = payload["lastUpdateId"]
        return {
            "e": "depthUpdate",
            "E": now_ms,
            "T": now_ms,
            "s": name.partition("@")[0].upper(),
            "U": last,
            "u": last,
            "pu": last - 1,
            "b": payload["bids"],
            "a": payload["asks"],
        }
    if kind == "aggTrade":
        futures = {k: v for k, v in payload.items() if k != "M"}
        futures["nq"] = payload["q"]  # the simulator has no RPI orders
        return futures
    if kind is None and "u" in payload and "b" in payload:  # bookTicker
        return {"e": "bookTicker", "u": payload["u"], "E": now_ms, "T": now_ms, **payload}
    if kind == "24hrTicker":
        return {k: v for k, v in payload.items() if k not in ("x", "b", "B", "a", "A")}
    return payload


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"FakeBinance: {name}={value!r}: allowed is an int >= 1")


def _check_attempt_limit(value: object) -> tuple[int, float]:
    """``max_connection_attempts`` as ``(count, window_seconds)``, or InvalidInputError."""
    if isinstance(value, tuple) and len(value) == 2:
        count, window = value
        if (
            isinstance(count, int)
            and not isinstance(count, bool)
            and count >= 1
            and isinstance(window, (int, float))
            and not isinstance(window, bool)
            and 0 < window < float("inf")
        ):
            return count, float(window)
    raise InvalidInputError(
        f"FakeBinance: max_connection_attempts={value!r}: allowed is None or "
        "(count, window_seconds) with an int count >= 1 and a finite window > 0"
    )


def _per(window: float) -> str:
    """``"5 minutes"`` for 300.0, ``"1 minute"``, ``"0.5 seconds"``: the window as Binance
    words its limits."""
    if window % 60 == 0:
        minutes = int(window // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{window:g} second{'s' if window != 1 else ''}"


def _split_route(target: str) -> tuple[str | None, str]:
    """``("public", "/ws/a@b")`` for ``/public/ws/a@b``; ``(None, target)`` when un-routed."""
    for route in ("public", "market", "private"):
        if target.startswith(f"/{route}/") or target.startswith(f"/{route}?"):
            return route, target[len(route) + 1 :]
    return None, target


def _is_open(conn: ServerConnection) -> bool:
    # A function, not an inline test, so that mypy does not narrow the state across awaits.
    return conn.protocol.state is State.OPEN


def _parse_or_raw(message: str | bytes) -> Any:
    try:
        return json.loads(message)
    except (ValueError, UnicodeDecodeError):
        return message
