"""BinanceSocketManager: python-binance's callback API, built on :class:`BinanceStreams`.

.. code-block:: python

    from rxbinance.websockets import BinanceSocketManager
    from rxbinance.enums import *

    def process_message(msg):
        print(msg["p"])

    bm = BinanceSocketManager(client)            # client may be None for public streams
    conn_key = bm.start_trade_socket("BNBBTC", process_message)
    bm.start()
    ...
    bm.stop_socket(conn_key)
    bm.close()

What carries over from python-binance, and what differs (and why):

- ``conn_key`` is the stream path (``bnbbtc@trade``, ``bnbbtc@depth5``, ``streams=a/b`` for a
  multiplex socket); one socket exists per key, and starting a key that is running (or waiting
  for :meth:`~BinanceSocketManager.start`) returns ``False``.
- When reconnecting fails ``max_retries`` times in a row the callback receives ``{'e': 'error',
  'm': 'Max reconnect retries reached'}``; that socket is then gone, and its key is free before
  the callback is called: starting it again, from the callback itself too, returns the key and
  opens a new socket (python-binance's usual recovery).
- Sockets started before :meth:`~BinanceSocketManager.start` wait for it (whatever kind they
  are, multiplex included); after it, they open at once. :meth:`~BinanceSocketManager.close`
  stops every socket; after it, :meth:`~BinanceSocketManager.start` is needed again.
- Threads are daemons: a script that reaches its end (or calls :meth:`close`) exits promptly,
  with no ``reactor.stop()`` dance. A script that only wants to listen calls :meth:`join`.
- ``start_ticker_socket`` uses ``!ticker_1d@arr``: Binance retired ``!ticker@arr`` on
  2026-03-26. ``start_miniticker_socket(update_time=...)`` above 1000 ms is honoured client side
  (Binance only sends every second).
- ``start_user_socket(callback)`` needs a client carrying the API key and secret: an
  :class:`rxbinance.rest.Client`, python-binance's ``Client`` (``API_KEY``/``API_SECRET``), or
  any object with ``api_key``/``api_secret``. Spot user data comes over the WebSocket API (the
  spot listenKey was retired on 2026-02-20); the conn_key is ``"userData"``. When Binance
  refuses the key or signature, the callback gets ``{'e': 'error', 'type':
  'BinanceAPIError', 'm': <message>, 'code': <Binance code>}`` once and the socket is gone
  (its key free, as after the give-up dict).
  ``market="usdm"`` (or a client whose ``market`` is a USD-M one) gives futures user data over
  a listenKey, kept alive for you.

Threads and callbacks:

- The manager starts no thread of its own. A callback runs on the thread that received the
  message: the socket's reader thread (``rxbinance:<key>``); the give-up dict comes on the reader
  thread of the last failed attempt.
- Calls to the callback of one conn_key never overlap, across restarts too: a message that
  arrives while that callback is still running (say the first message of the socket it just
  restarted) is queued, and the running thread delivers it as soon as the callback returns, in
  arrival order. Callbacks of different keys may run at the same time on different threads: a
  callback shared by several keys (python-binance's usual ``process_message``) must guard the
  state it shares.
- A callback that raises is logged (logger ``rxbinance.websockets``) and its socket carries on;
  a slow callback delays its socket (and, slow enough, Binance drops it).
- From inside a callback you may call :meth:`~BinanceSocketManager.stop_socket` (any key, its
  own included), any ``start_*`` method, :meth:`~BinanceSocketManager.start` and
  :meth:`~BinanceSocketManager.close`; the manager holds no lock while user code runs. Do not
  call :meth:`~BinanceSocketManager.join` there: it waits for a ``close()`` that callback would
  have to make.
- Once :meth:`~BinanceSocketManager.stop_socket` or :meth:`~BinanceSocketManager.close` returns,
  the callback gets nothing more from the stopped socket: what it had queued is dropped, and
  only a call already under way on another thread may still finish.
"""

from __future__ import annotations

import collections
import enum
import threading
from collections.abc import Callable, Iterable
from typing import Any

from reactivex import Observable, abc

from rxbinance import enums
from rxbinance._reactive.delivery import SubscriberErrors
from rxbinance._reactive.reconnect import GIVE_UP_MESSAGE
from rxbinance._reactive.user_data import USER_DATA_KEY
from rxbinance.errors import InvalidInputError
from rxbinance.protocol import names
from rxbinance.protocol.endpoints import MARKETS
from rxbinance.streams import BinanceStreams

__all__ = ["BinanceSocketManager"]


Callback = Callable[[Any], Any]
Make = Callable[[BinanceStreams], Observable[Any]]


class _State(enum.Enum):
    """Where one started socket is in its life (guarded by the manager's lock)::

    WAITING --start()--> SUBSCRIBING --subscribed--> OPEN
       |                     |                        |
       +---------------------+------------------------+--> STOPPED  (stop_socket, close)
                             +------------------------+--> ENDED    (give-up, refusal)
    """

    WAITING = "waiting for start()"
    SUBSCRIBING = "subscribing"
    OPEN = "open"
    ENDED = "ended"  # gave up or refused: what it already queued, the error dict last, goes out
    STOPPED = "stopped"  # stopped by the user: nothing more goes out


class _Mailbox:
    """The delivery queue of one conn_key: whoever finds it idle drains it, so calls into the
    callback never overlap and no thread ever waits for another (a blocking lock here would
    deadlock a callback that calls close(), which joins the reader threads)."""

    __slots__ = ("draining", "key", "queue")

    def __init__(self, key: str) -> None:
        self.key = key
        self.queue: collections.deque[tuple[_Socket, Any]] = collections.deque()
        self.draining = False


class _Socket:
    """One ``start_*`` call: the identity the manager's bookkeeping is keyed by.

    A conn_key maps to at most one live ``_Socket`` at a time; every terminal event names the
    ``_Socket`` it belongs to, so the end of an old socket never touches a newer one started
    under the same key.
    """

    __slots__ = ("callback", "errors", "key", "mailbox", "make", "state", "subscription")

    def __init__(self, key: str, make: Make, callback: Callback, mailbox: _Mailbox) -> None:
        self.key = key
        self.make = make
        self.callback = callback
        self.mailbox = mailbox
        self.state = _State.WAITING
        self.subscription: abc.DisposableBase | None = None
        # A callback failing on every message (process_message reading msg["e"] on partial
        # depth) logs one traceback, then a count: not a traceback per message.
        self.errors = SubscriberErrors(f"socket {key}")


class BinanceSocketManager:
    """The python-binance socket manager, over shared, self-healing rxbinance streams.

    Keyword arguments are :class:`BinanceStreams`' (where, who, healing, ``pool``: many
    sockets' streams on a few pooled connections); ``market`` defaults to the client's when it
    has one. See the module docstring for the threading rules.
    """

    WEBSOCKET_DEPTH_5 = enums.WEBSOCKET_DEPTH_5
    WEBSOCKET_DEPTH_10 = enums.WEBSOCKET_DEPTH_10
    WEBSOCKET_DEPTH_20 = enums.WEBSOCKET_DEPTH_20

    def __init__(
        self,
        client: Any = None,
        *,
        ws_url: str | None = None,
        rest_url: str | None = None,
        ws_api_url: str | None = None,
        max_retries: int = 5,
        retry_delay: float = 1.0,
        max_retry_delay: float = 30.0,
        stall_timeout: float = 60.0,
        market: str | None = None,
        listen_key_keepalive: float = 1800.0,
        pool: bool = False,
    ) -> None:
        self._client = client
        if market is None:
            # An rxbinance Client knows its market; python-binance's has no such attribute.
            client_market = getattr(client, "market", None)
            market = client_market if client_market in MARKETS else "spot"
        self._options: dict[str, Any] = {
            "market": market,
            "api_key": _client_attribute(client, "api_key", "API_KEY"),
            "api_secret": _client_attribute(client, "api_secret", "API_SECRET"),
            "listen_key_keepalive": listen_key_keepalive,
            "ws_url": ws_url,
            "rest_url": rest_url,
            "ws_api_url": ws_api_url,
            "max_retries": max_retries,
            "retry_delay": retry_delay,
            "max_retry_delay": max_retry_delay,
            "stall_timeout": stall_timeout,
            "pool": pool,
        }
        # Guards everything below. Held only for bookkeeping: never while user code runs, never
        # while subscribing or disposing (either may call back into us synchronously).
        self._lock = threading.Lock()
        self._streams: BinanceStreams | None = None
        self._started = False  # set by start(), cleared by close(); never inferred
        self._sockets: dict[str, _Socket] = {}  # conn_key -> its live socket
        self._busy: dict[str, _Mailbox] = {}  # conn_key -> its mailbox, while being drained
        self._stopped = threading.Event()

    @property
    def streams(self) -> BinanceStreams:
        """The :class:`BinanceStreams` behind this manager (created on first use)."""
        with self._lock:
            return self._streams_locked()

    def _streams_locked(self) -> BinanceStreams:
        if self._streams is None:
            self._streams = BinanceStreams(**self._options)
        return self._streams

    def __repr__(self) -> str:
        state = "started" if self.is_started else "stopped"
        with self._lock:
            keys = sorted(self._sockets)
        return f"<BinanceSocketManager {state} sockets={keys}>"

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def is_started(self) -> bool:
        """True between :meth:`start` and :meth:`close`."""
        return self._started

    def start(self) -> None:
        """Open every socket started so far; sockets started later open at once."""
        with self._lock:
            self._started = True
            self._stopped.clear()
            streams = self._streams_locked()
            waiting = [s for s in self._sockets.values() if s.state is _State.WAITING]
            for sock in waiting:
                sock.state = _State.SUBSCRIBING
        for sock in waiting:
            self._subscribe(streams, sock)

    def stop_socket(self, conn_key: str) -> None:
        """Close the socket of ``conn_key``; unknown keys are ignored. Its callback gets nothing
        more (only a call already under way on another thread may still finish)."""
        with self._lock:
            sock = self._sockets.pop(conn_key, None)
            if sock is None:
                return
            sock.state = _State.STOPPED
            subscription = sock.subscription
        if subscription is not None:
            subscription.dispose()

    def close(self) -> None:
        """Stop every socket and join its thread; :meth:`start` is needed again afterwards."""
        with self._lock:
            socks = list(self._sockets.values())
            self._sockets.clear()
            for sock in socks:
                sock.state = _State.STOPPED
            subscriptions = [s.subscription for s in socks if s.subscription is not None]
            streams, self._streams = self._streams, None
            self._started = False
        for subscription in subscriptions:
            subscription.dispose()
        if streams is not None:
            streams.close()
        self._stopped.set()

    def join(self, timeout: float | None = None) -> bool:
        """Block until :meth:`close` is called (or ``timeout`` passes); True if closed."""
        return self._stopped.wait(timeout)

    def __enter__(self) -> BinanceSocketManager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- sockets -----------------------------------------------------------------------------

    def start_trade_socket(self, symbol: str, callback: Callback) -> str | bool:
        """Trades of ``symbol``; conn_key ``<symbol>@trade``."""
        return self._start(names.trade_stream(symbol), lambda s: s.trades(symbol), callback)

    def start_aggtrade_socket(self, symbol: str, callback: Callback) -> str | bool:
        """Aggregate trades of ``symbol``; conn_key ``<symbol>@aggTrade``."""
        return self._start(names.agg_trade_stream(symbol), lambda s: s.agg_trades(symbol), callback)

    def start_depth_socket(
        self, symbol: str, callback: Callback, depth: str | int | None = None
    ) -> str | bool:
        """Diff depth (``depth=None``) or a partial book of ``WEBSOCKET_DEPTH_5/10/20`` levels."""
        levels = _depth_levels(depth)
        key = names.depth_stream(symbol, levels)
        return self._start(key, lambda s: s.depth(symbol, levels), callback)

    def start_kline_socket(
        self, symbol: str, callback: Callback, interval: str = enums.KLINE_INTERVAL_1MINUTE
    ) -> str | bool:
        """Candles of ``symbol`` at ``interval`` (any ``KLINE_INTERVAL_*``)."""
        key = names.kline_stream(symbol, interval)
        return self._start(key, lambda s: s.klines(symbol, interval), callback)

    def start_symbol_ticker_socket(self, symbol: str, callback: Callback) -> str | bool:
        """24 h ticker of ``symbol``; conn_key ``<symbol>@ticker``."""
        key = names.symbol_ticker_stream(symbol)
        return self._start(key, lambda s: s.symbol_ticker(symbol), callback)

    def start_ticker_socket(self, callback: Callback) -> str | bool:
        """All-market tickers: ``!ticker_1d@arr`` (``!ticker@arr`` is retired on spot)."""
        key = names.rolling_ticker_stream(None, "1d")
        return self._start(key, lambda s: s.ticker(), callback)

    def start_miniticker_socket(self, callback: Callback, update_time: int = 1000) -> str | bool:
        """All-market mini tickers, at most one list per ``update_time`` ms."""
        key = names.mini_ticker_stream(None)
        if update_time != 1000:
            key = f"{key}@{update_time}ms"
        return self._start(key, lambda s: s.mini_ticker(None, update_time=update_time), callback)

    def start_multiplex_socket(self, streams: Iterable[str], callback: Callback) -> str | bool:
        """One combined socket for ``streams``; messages are ``{"stream", "data"}``."""
        # Validated as the manager's market does (spot or USD-M), before anything is
        # registered: a ValueError names the bad name and what is allowed. The key is the
        # sorted set of names, as multiplex() keys its socket.
        checked = names.validate_stream_names(
            streams, product=self.streams.product, market=self.streams.market
        )
        key = "streams=" + names.combined_key(checked)
        return self._start(key, lambda s: s.multiplex(checked), callback)

    def start_user_socket(self, callback: Callback) -> str | bool:
        """The account's user data events (see :meth:`BinanceStreams.user`); conn_key
        ``"userData"``. Raises ``ValueError`` when the manager's client carries no API key and
        secret."""
        options = self._options
        if not options["api_key"] or (
            not options["api_secret"] and not str(options["market"]).startswith("usdm")
        ):
            raise InvalidInputError(
                "start_user_socket needs a client with an API key and secret: "
                "BinanceSocketManager(Client(api_key, api_secret)) (attributes api_key/api_secret"
                " or python-binance's API_KEY/API_SECRET)"
            )
        return self._start(USER_DATA_KEY, lambda s: s.user(), callback)

    # -- plumbing ----------------------------------------------------------------------------

    def _start(self, conn_key: str, make: Make, callback: Callback) -> str | bool:
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        # Build the Observable once now, so input the market refuses raises here, before
        # anything is registered (building opens nothing).
        make(self.streams)
        with self._lock:
            if conn_key in self._sockets:
                return False
            # A mailbox still being drained (the callback of this key's previous socket is
            # running, maybe restarting this very key) is shared, so the two never overlap.
            mailbox = self._busy.get(conn_key) or _Mailbox(conn_key)
            sock = _Socket(conn_key, make, callback, mailbox)
            self._sockets[conn_key] = sock
            if not self._started:
                return conn_key
            sock.state = _State.SUBSCRIBING
            streams = self._streams_locked()
        self._subscribe(streams, sock)
        return conn_key

    def _subscribe(self, streams: BinanceStreams, sock: _Socket) -> None:
        """Subscribe ``sock`` outside the lock: the subscription may call back at once."""

        def on_next(message: Any) -> None:
            if message == GIVE_UP_MESSAGE:
                # The give-up: free the key before the callback sees it, so that restarting
                # the socket from the callback works.
                self._end(sock, message)
            else:
                self._deliver(sock, message)

        def on_error(error: Exception) -> None:
            # Binance refused (bad key or signature): one error dict, python-binance style.
            message: dict[str, Any] = {"e": "error", "type": type(error).__name__, "m": str(error)}
            code = getattr(error, "code", None)
            if code is not None:
                message["code"] = code
            self._end(sock, message)

        def on_completed() -> None:
            self._end(sock, None)

        try:
            subscription = sock.make(streams).subscribe(
                on_next=on_next, on_error=on_error, on_completed=on_completed
            )
        except BaseException:
            self._end(sock, None)
            raise
        with self._lock:
            if sock.state is _State.SUBSCRIBING:
                sock.subscription = subscription
                sock.state = _State.OPEN
                return
        # Stopped, or ended, while subscribing: let go of it now.
        subscription.dispose()

    def _end(self, sock: _Socket, message: Any) -> None:
        """``sock`` terminated (give-up, refusal or completion): forget it, if it is still the
        socket of its key, and deliver ``message`` (if any) as its last."""
        with self._lock:
            if sock.state in (_State.ENDED, _State.STOPPED):
                return
            sock.state = _State.ENDED
            if self._sockets.get(sock.key) is sock:
                del self._sockets[sock.key]
            subscription = sock.subscription
            drain = message is not None and self._enqueue(sock, message)
        if subscription is not None:
            # A multiplex over several routes (USD-M) is a merge: one part giving up ends the
            # socket, so the other parts close too.
            subscription.dispose()
        if drain:
            self._drain(sock.mailbox)

    def _deliver(self, sock: _Socket, message: Any) -> None:
        with self._lock:
            if sock.state in (_State.ENDED, _State.STOPPED):
                return  # an ended socket's last message was queued by _end
            drain = self._enqueue(sock, message)
        if drain:
            self._drain(sock.mailbox)

    def _enqueue(self, sock: _Socket, message: Any) -> bool:
        """Queue ``message`` (under the lock); True if the caller must drain the mailbox."""
        mailbox = sock.mailbox
        mailbox.queue.append((sock, message))
        if mailbox.draining:
            return False  # the thread draining it delivers this one right after
        mailbox.draining = True
        self._busy[mailbox.key] = mailbox
        return True

    def _drain(self, mailbox: _Mailbox) -> None:
        """Call the callback with each queued message, in order, until the queue is empty."""
        try:
            while True:
                with self._lock:
                    if not mailbox.queue:
                        self._idle(mailbox)
                        return
                    sock, message = mailbox.queue.popleft()
                    if sock.state is _State.STOPPED:
                        continue
                try:
                    sock.callback(message)
                except Exception:
                    sock.errors.report()
        except BaseException:
            # KeyboardInterrupt or SystemExit from the callback: release the mailbox so the
            # next message drains it (what is queued waits for that).
            with self._lock:
                self._idle(mailbox)
            raise

    def _idle(self, mailbox: _Mailbox) -> None:
        mailbox.draining = False
        if self._busy.get(mailbox.key) is mailbox:
            del self._busy[mailbox.key]


def _depth_levels(depth: str | int | None) -> int | None:
    """python-binance passes depth as the strings '5', '10', '20'; ints work too."""
    if depth is None:
        return None
    allowed = {str(level): level for level in names.DEPTH_LEVELS}
    if isinstance(depth, bool) or str(depth) not in allowed:
        raise InvalidInputError(
            f"invalid depth {depth!r}: allowed are None (diff depth) or "
            "WEBSOCKET_DEPTH_5, WEBSOCKET_DEPTH_10, WEBSOCKET_DEPTH_20 ('5', '10', '20')"
        )
    return allowed[str(depth)]


def _client_attribute(client: Any, name: str, legacy: str) -> Any:
    """``client.<name>``, else python-binance's spelling ``client.<legacy>``, else None."""
    value = getattr(client, name, None)
    if value is None:
        value = getattr(client, legacy, None)
    return value
