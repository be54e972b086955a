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
  multiplex socket); one socket exists per key, and starting an existing key again returns
  ``False``.
- Callbacks receive Binance's dicts on the socket's reader thread. When reconnecting fails
  ``max_retries`` times in a row they receive ``{'e': 'error', 'm': 'Max reconnect retries
  reached'}``; that socket is then gone (start it again to retry). A callback that raises is
  logged; the socket carries on.
- Sockets started before :meth:`start` wait for it; after :meth:`start`, they open at once.
  :meth:`close` stops every socket; after it, :meth:`start` is needed again.
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
  'BinanceAPIError', 'm': <message>, 'code': <Binance code>}`` once and the socket is gone.
  ``market="usdm"`` (or a client whose ``market`` is a USD-M one) gives futures user data over
  a listenKey, kept alive for you.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from reactivex import Observable, abc

from rxbinance import enums
from rxbinance._reactive.user_data import USER_DATA_KEY
from rxbinance.errors import InvalidInputError
from rxbinance.protocol import names
from rxbinance.protocol.endpoints import MARKETS
from rxbinance.streams import BinanceStreams

__all__ = ["BinanceSocketManager"]

log = logging.getLogger("rxbinance.websockets")

Callback = Callable[[Any], Any]


class BinanceSocketManager:
    """The python-binance socket manager, over shared, self-healing rxbinance streams."""

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
        }
        self._lock = threading.RLock()
        self._streams: BinanceStreams | None = None
        self._pending: dict[str, tuple[Callable[[BinanceStreams], Observable[Any]], Callback]] = {}
        self._subscriptions: dict[str, abc.DisposableBase] = {}
        self._stopped = threading.Event()

    @property
    def streams(self) -> BinanceStreams:
        """The :class:`BinanceStreams` behind this manager (created on first use)."""
        with self._lock:
            if self._streams is None:
                self._streams = BinanceStreams(**self._options)
            return self._streams

    def __repr__(self) -> str:
        state = "started" if self.is_started else "stopped"
        return f"<BinanceSocketManager {state} sockets={sorted(self._pending)}>"

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def is_started(self) -> bool:
        return self._streams is not None and not self._stopped.is_set()

    def start(self) -> None:
        """Open every socket started so far; sockets started later open at once."""
        with self._lock:
            self._stopped.clear()
            streams = self.streams
            for conn_key, (make, callback) in self._pending.items():
                if conn_key not in self._subscriptions:
                    self._subscribe(streams, conn_key, make, callback)

    def stop_socket(self, conn_key: str) -> None:
        """Close the socket of ``conn_key``; unknown keys are ignored."""
        with self._lock:
            self._pending.pop(conn_key, None)
            subscription = self._subscriptions.pop(conn_key, None)
        if subscription is not None:
            subscription.dispose()

    def close(self) -> None:
        """Stop every socket and join its thread; :meth:`start` is needed again afterwards."""
        with self._lock:
            subscriptions = list(self._subscriptions.values())
            self._subscriptions.clear()
            self._pending.clear()
            streams, self._streams = self._streams, None
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
        # Validated as the manager's market does it (spot or USD-M names).
        checked = names.validate_stream_names(streams, self.streams._validate)
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

    def _start(
        self, conn_key: str, make: Callable[[BinanceStreams], Observable[Any]], callback: Callback
    ) -> str | bool:
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        with self._lock:
            if conn_key in self._pending:
                return False
            self._pending[conn_key] = (make, callback)
            if self.is_started:
                self._subscribe(self.streams, conn_key, make, callback)
        return conn_key

    def _subscribe(
        self,
        streams: BinanceStreams,
        conn_key: str,
        make: Callable[[BinanceStreams], Observable[Any]],
        callback: Callback,
    ) -> None:
        def forget() -> None:
            # The socket gave up (the callback just got the error dict): let start_* retry it.
            with self._lock:
                self._pending.pop(conn_key, None)
                self._subscriptions.pop(conn_key, None)

        def failed(error: Exception) -> None:
            # Binance refused (bad key or signature): one error dict, python-binance style.
            forget()
            message: dict[str, Any] = {"e": "error", "type": type(error).__name__, "m": str(error)}
            code = getattr(error, "code", None)
            if code is not None:
                message["code"] = code
            try:
                callback(message)
            except Exception:
                log.exception("the callback of %s raised", conn_key)

        self._subscriptions[conn_key] = make(streams).subscribe(
            on_next=callback, on_error=failed, on_completed=forget
        )


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
