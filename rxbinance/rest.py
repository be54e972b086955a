"""A small, careful Binance REST client on requests: market data, USD-M listen keys, signing.

::

    from rxbinance.rest import Client

    with Client() as client:                          # spot, https://api.binance.com
        client.depth("BTCUSDT", limit=5)["bids"][0]   # ['60000.00000000', '0.25638000']
        client.used_weight                            # 5: X-MBX-USED-WEIGHT-1M of that call

    with Client(api_key, api_secret, market="usdm") as futures:
        key = futures.create_listen_key()             # keep alive every 30 min, close at exit

What it does for you, and what it will not do:

- **Markets.** ``market`` picks the base URL (:data:`rxbinance.protocol.endpoints.MARKETS`) and
  the path prefix: ``/api/v3`` on spot, spot-testnet and spot-demo, ``/fapi/v1`` on usdm and
  usdm-testnet. ``base_url`` overrides the origin only (scheme, host, port).
- **Validation first.** Symbols, intervals and limits are checked before any request
  (:class:`~rxbinance.errors.InvalidInputError`, a ValueError naming the value). Symbols are
  accepted in any case and sent uppercase, as Binance's REST API wants.
- **Errors are exceptions** (:mod:`rxbinance.errors`): Binance's ``{"code","msg"}`` becomes
  :class:`~rxbinance.errors.BinanceAPIError` (also for non-JSON bodies such as an nginx 410
  page); 429 and 418 become :class:`~rxbinance.errors.RateLimitError` with ``retry_after`` and
  ``banned``; no answer becomes :class:`~rxbinance.errors.RequestError` or
  :class:`~rxbinance.errors.RequestTimeout` (requests' exception chained). Nothing hangs longer
  than ``timeout``.
- **No hammering.** After a 429/418 that carried ``Retry-After`` (or a 418 whose message says
  until when the IP is banned), every call until that deadline raises RateLimitError at once,
  without sending anything: continuing after a 429 is what gets an IP banned.
- **Signing** exactly per binance-protocol.md 7.2 (:mod:`rxbinance.protocol.signing`): the
  percent-encoded query string as sent is signed, with HMAC secrets or Ed25519/RSA PEM keys
  (those need ``pip install cryptography``).
- **Secrets stay secret.** The API secret is never in ``repr(client)``, a log line, an
  exception or a logged URL (URLs are logged without their ``signature``); the API key shows
  masked. (requests/urllib3's own DEBUG logging prints request URLs, signature included but
  never the secret; leave ``urllib3`` below DEBUG in production.)
- **Threads.** One client may be shared by threads: requests' Session and pool serve
  concurrent calls, and the client's own state (used weight, rate-limit deadline) is locked.

Spot listen keys (``/api/v3/userDataStream``) were retired by Binance on 2026-02-20: spot user
data comes from the WebSocket API, which :meth:`rxbinance.BinanceStreams.user` uses.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import requests
import urllib3

from rxbinance.errors import (
    BinanceAPIError,
    InvalidInputError,
    ProtocolError,
    RateLimitError,
    RequestError,
    RequestTimeout,
)
from rxbinance.protocol.endpoints import endpoints_for
from rxbinance.protocol.limits import FUTURES_DEPTH_LIMITS
from rxbinance.protocol.names import KLINE_INTERVALS, normalize_symbol
from rxbinance.protocol.signing import Signer, encode_params, load_signer, signed_query

__all__ = ["Client"]

log = logging.getLogger("rxbinance.rest")

#: USD-M klines have no 1s interval.
FUTURES_KLINE_INTERVALS: tuple[str, ...] = tuple(i for i in KLINE_INTERVALS if i != "1s")

_SPOT_LISTEN_KEY_RETIRED = (
    "spot listenKeys were retired by Binance on 2026-02-20 (POST/PUT/DELETE "
    "/api/v3/userDataStream now answer HTTP 410 Gone); spot user data comes from the WebSocket "
    "API: use BinanceStreams(api_key=..., api_secret=...).user(). Listen keys remain for USD-M "
    "futures: Client(..., market='usdm')"
)

_BANNED_UNTIL = re.compile(r"banned until (\d{10,16})")
_SIGNATURE = re.compile(r"signature=[^&\s'\"]*")
_HTML_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _never_connected(exc: requests.RequestException) -> bool:
    """True when no connection was made (refused, host unknown): nothing was sent."""
    # requests wraps urllib3's MaxRetryError, whose ``reason`` is the connection's failure.
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectTimeout) or isinstance(
        reason, urllib3.exceptions.NewConnectionError
    )


def _redact(text: str) -> str:
    """``text`` (e.g. requests' error message, which quotes the URL) without signatures."""
    return _SIGNATURE.sub("signature=<redacted>", text)


def _mask(api_key: str | None) -> str | None:
    if api_key is None:
        return None
    return api_key[:4] + "…" if len(api_key) > 4 else "…"


def _check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    # bool is an int in Python, but True is not a limit.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"invalid {name} {value!r}: expected an integer")
    if value < low or (high is not None and value > high):
        bounds = f"{low} to {high}" if high is not None else f"at least {low}"
        raise InvalidInputError(f"invalid {name} {value!r}: allowed are {bounds}")
    return value


def _check_symbol(symbol: object) -> str:
    normalize_symbol(symbol)  # raises InvalidInputError naming the value
    assert isinstance(symbol, str)
    return symbol.upper()


class Client:
    """Binance REST for one market, on one :class:`requests.Session`.

    Args:
        api_key: Sent as ``X-MBX-APIKEY`` on listen-key, SIGNED and USD-M
            :meth:`historical_trades` calls only.
        api_secret: The HMAC secret, or an Ed25519/RSA private key in PEM (PKCS#8) form, or a
            :class:`~rxbinance.protocol.signing.Signer`. Loaded at once: a PEM key without the
            ``cryptography`` package raises ImportError naming ``pip install cryptography``.
        base_url: The origin, e.g. ``"https://api1.binance.com"`` or a FakeBinance's
            ``rest_url``; default: the market's REST URL. The ``/api/v3`` or ``/fapi/v1``
            prefix is added by the client.
        timeout: Seconds to wait for connecting and then for each read, per request; None
            waits forever (not recommended).
        session: A requests Session to use (for proxies, adapters, retries of your own); the
            client then does not close it. Default: a new Session the client owns.
        market: ``"spot"``, ``"spot-testnet"``, ``"spot-demo"``, ``"usdm"`` or
            ``"usdm-testnet"``.
        recv_window: ``recvWindow`` of SIGNED calls in milliseconds (up to 60000, 3 decimals
            allowed); None leaves Binance's default of 5000.

    Calls raise :class:`~rxbinance.errors.InvalidInputError` for bad arguments (nothing is
    sent), :class:`~rxbinance.errors.BinanceAPIError` when Binance answers with an error,
    :class:`~rxbinance.errors.RateLimitError` for 429/418 and during their ``Retry-After``,
    :class:`~rxbinance.errors.RequestError` / :class:`~rxbinance.errors.RequestTimeout` when no
    answer arrives, and :class:`~rxbinance.errors.ProtocolError` for a success whose body is not
    JSON. Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        api_key: str | None = None,
        api_secret: str | bytes | Signer | None = None,
        base_url: str | None = None,
        timeout: float | None = 10,
        session: requests.Session | None = None,
        *,
        market: str = "spot",
        recv_window: float | None = None,
    ) -> None:
        endpoints = endpoints_for(market)  # InvalidInputError naming the known markets
        if api_key is not None and (not isinstance(api_key, str) or not api_key):
            raise InvalidInputError("api_key must be a non-empty string or None")
        if timeout is not None and not timeout > 0:
            raise InvalidInputError(f"invalid timeout {timeout!r}: expected seconds > 0 or None")
        if recv_window is not None and (
            isinstance(recv_window, bool) or not 0 < recv_window <= 60000
        ):
            raise InvalidInputError(
                f"invalid recv_window {recv_window!r}: milliseconds, above 0 and at most 60000"
            )
        self.market = market
        self.base_url = (base_url or endpoints.rest_url).rstrip("/")
        self.timeout = timeout
        self.recv_window = recv_window
        self.api_key = api_key
        self._api_secret = api_secret
        self._signer = load_signer(api_secret) if api_secret is not None else None
        self._futures = market.startswith("usdm")
        self._prefix = "/fapi/v1" if self._futures else "/api/v3"
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        if self._owns_session:
            # A client dropped without close() still releases its sockets (no ResourceWarning).
            self._finalizer = weakref.finalize(self, self._session.close)
        self._lock = threading.Lock()
        self._used_weight: int | None = None
        self._blocked_until = 0.0  # time.monotonic() deadline of the last 429/418
        self._block: RateLimitError | None = None

    # ------------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the Session if the client created it (idempotent)."""
        if self._owns_session:
            self._finalizer()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        key_type = self._signer.key_type if self._signer is not None else None
        return (
            f"<rxbinance.rest.Client market={self.market!r} base_url={self.base_url!r} "
            f"api_key={_mask(self.api_key)!r} signing={key_type!r}>"
        )

    @property
    def api_secret(self) -> str | bytes | Signer | None:
        """The secret or key this client signs with (for code that builds its own signatures,
        such as :meth:`BinanceStreams.user`). Never shown by ``repr``."""
        return self._api_secret

    @property
    def used_weight(self) -> int | None:
        """``X-MBX-USED-WEIGHT-1M`` of the most recent response that carried it (the IP's
        request weight in the current minute); None before any."""
        with self._lock:
            return self._used_weight

    @property
    def rate_limited_for(self) -> float:
        """Seconds until calls are sent again after a 429/418; 0.0 when not blocked."""
        with self._lock:
            return max(0.0, self._blocked_until - time.monotonic())

    # ------------------------------------------------------------------- market data

    def ping(self) -> None:
        """``GET /ping``: returns when Binance answered (weight 1)."""
        self.request("GET", f"{self._prefix}/ping")

    def server_time(self) -> int:
        """``GET /time``: Binance's clock, epoch milliseconds (weight 1)."""
        body = self.request("GET", f"{self._prefix}/time")
        return int(body["serverTime"])

    def exchange_info(
        self, symbol: str | None = None, symbols: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """``GET /exchangeInfo``: trading rules, for every symbol or only ``symbol`` /
        ``symbols`` (not both).

        Spot filters on the server (weight 20). USD-M's endpoint takes no parameters (weight
        1): the client fetches everything and keeps the requested symbols, raising
        InvalidInputError for one that is not listed.
        """
        if symbol is not None and symbols is not None:
            raise InvalidInputError("pass symbol or symbols, not both")
        wanted: list[str] | None = None
        if symbol is not None:
            wanted = [_check_symbol(symbol)]
        elif symbols is not None:
            if isinstance(symbols, str) or not isinstance(symbols, Sequence) or not symbols:
                raise InvalidInputError(
                    f"invalid symbols {symbols!r}: expected a non-empty list such as ['BTCUSDT']"
                )
            wanted = [_check_symbol(s) for s in symbols]
        if not self._futures:
            params: dict[str, object] = {}
            if symbol is not None and wanted is not None:
                params["symbol"] = wanted[0]
            elif wanted is not None:
                # A JSON array without spaces, percent-encoded by the query encoder.
                params["symbols"] = "[" + ",".join(f'"{s}"' for s in wanted) + "]"
            info: dict[str, Any] = self.request("GET", "/api/v3/exchangeInfo", params)
            return info
        info = self.request("GET", "/fapi/v1/exchangeInfo")
        if wanted is not None:
            listed = {s.get("symbol"): s for s in info.get("symbols", [])}
            missing = [s for s in wanted if s not in listed]
            if missing:
                raise InvalidInputError(
                    f"symbol(s) {', '.join(map(repr, missing))} not listed on {self.market}"
                )
            info = {**info, "symbols": [listed[s] for s in wanted]}
        return info

    def depth(self, symbol: str, limit: int = 100) -> dict[str, Any]:
        """``GET /depth``: an order book snapshot ``{"lastUpdateId", "bids", "asks"}`` (USD-M
        adds ``E`` and ``T``), ``limit`` levels a side.

        Spot: ``limit`` 1 to 5000 (weight 5 up to 100, 25 to 500, 50 to 1000, 250 above).
        USD-M: one of 5, 10, 20, 50, 100, 500, 1000 (weight 2, 5, 10 or 20).
        """
        params = {"symbol": _check_symbol(symbol), "limit": self._depth_limit(limit)}
        book: dict[str, Any] = self.request("GET", f"{self._prefix}/depth", params)
        return book

    def _depth_limit(self, limit: object) -> int:
        if self._futures:
            if isinstance(limit, bool) or limit not in FUTURES_DEPTH_LIMITS:
                allowed = ", ".join(map(str, FUTURES_DEPTH_LIMITS))
                raise InvalidInputError(
                    f"invalid depth limit {limit!r} on {self.market}: allowed are {allowed}"
                )
            assert isinstance(limit, int)
            return limit
        return _check_int("depth limit", limit, 1, 5000)

    def agg_trades(
        self,
        symbol: str,
        from_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """``GET /aggTrades``: aggregate trades, oldest first. No API key on either market.

        ``from_id`` (inclusive) pages by aggregate trade id, on spot and USD-M alike;
        ``start_time``/``end_time`` (epoch ms, inclusive) select by time (not together with
        ``from_id``: InvalidInputError); none of them gives the most recent. ``limit`` 1 to
        1000 (Binance's default 500). Weight 4 on spot (``GET /api/v3/aggTrades``), 20 on
        USD-M (``GET /fapi/v1/aggTrades``, where only the last 48 hours are kept and start/end
        may be at most one hour apart). Binance answers a ``from_id`` older than it keeps from
        its oldest kept id on: a first ``"a"`` above ``from_id`` means those ids are lost.
        """
        if from_id is not None and (start_time is not None or end_time is not None):
            raise InvalidInputError(
                f"pass from_id ({from_id!r}) or start_time/end_time, not both: Binance refuses "
                "the combination"
            )
        params = {
            "symbol": _check_symbol(symbol),
            "fromId": None if from_id is None else _check_int("from_id", from_id, 0),
            **self._time_range(start_time, end_time),
            "limit": None if limit is None else _check_int("limit", limit, 1, 1000),
        }
        rows: list[dict[str, Any]] = self.request("GET", f"{self._prefix}/aggTrades", params)
        return rows

    def historical_trades(
        self, symbol: str, from_id: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """``GET /historicalTrades`` ("old trade lookup"): trades by trade id, oldest first:
        the ``limit`` trades from ``from_id`` (inclusive) on, or the most recent without it.

        Items: ``{"id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch"}``
        (USD-M: no ``isBestMatch``), the ``trade`` stream's ``t`` being ``id``. Binance answers
        a ``from_id`` older than it keeps from its oldest kept trade on: a first ``"id"``
        above ``from_id`` means those trades are lost.

        - Spot: ``GET /api/v3/historicalTrades``, weight 25, no API key (Binance dropped the
          requirement); ``limit`` 1 to 1000 (default 500).
        - USD-M: ``GET /fapi/v1/historicalTrades``, weight 20, needs an API key (MARKET_DATA:
          ``X-MBX-APIKEY`` sent, no signature); without one InvalidInputError naming the
          market, before anything is sent. ``limit`` 1 to 500 (default 100).
        """
        if self._futures and self.api_key is None:
            raise InvalidInputError(
                f"historical_trades on {self.market} needs an API key: Binance's "
                "/fapi/v1/historicalTrades is MARKET_DATA (X-MBX-APIKEY); pass "
                "Client(api_key=..., market=...), or page aggregate trades by id with "
                "agg_trades(symbol, from_id=...), which needs none"
            )
        params = {
            "symbol": _check_symbol(symbol),
            "fromId": None if from_id is None else _check_int("from_id", from_id, 0),
            "limit": (
                None
                if limit is None
                else _check_int("limit", limit, 1, 500 if self._futures else 1000)
            ),
        }
        rows: list[dict[str, Any]] = self.request(
            "GET", f"{self._prefix}/historicalTrades", params, with_api_key=self._futures
        )
        return rows

    def trades(self, symbol: str, limit: int | None = None) -> list[dict[str, Any]]:
        """``GET /trades``: the most recent trades, oldest first, shaped as
        :meth:`historical_trades`. No API key. ``limit`` 1 to 1000 (Binance's default 500).
        Weight 25 on spot (``GET /api/v3/trades``), 5 on USD-M (``GET /fapi/v1/trades``).
        """
        params = {
            "symbol": _check_symbol(symbol),
            "limit": None if limit is None else _check_int("limit", limit, 1, 1000),
        }
        rows: list[dict[str, Any]] = self.request("GET", f"{self._prefix}/trades", params)
        return rows

    def klines(
        self,
        symbol: str,
        interval: str,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int | None = None,
    ) -> list[list[Any]]:
        """``GET /klines``: candles as Binance's 12-element rows, oldest first (the open one
        included).

        ``interval`` is one of :data:`rxbinance.protocol.names.KLINE_INTERVALS` (USD-M: no
        ``1s``). ``start_time``/``end_time`` epoch ms; ``limit`` 1 to 1000 on spot (weight 2),
        1 to 1500 on USD-M (weight 1 to 10 by limit); Binance's default is 500.
        """
        allowed = FUTURES_KLINE_INTERVALS if self._futures else KLINE_INTERVALS
        if not isinstance(interval, str) or interval not in allowed:
            raise InvalidInputError(
                f"invalid kline interval {interval!r} on {self.market}: allowed are "
                + ", ".join(allowed)
            )
        top = 1500 if self._futures else 1000
        params = {
            "symbol": _check_symbol(symbol),
            "interval": interval,
            **self._time_range(start_time, end_time),
            "limit": None if limit is None else _check_int("limit", limit, 1, top),
        }
        rows: list[list[Any]] = self.request("GET", f"{self._prefix}/klines", params)
        return rows

    @staticmethod
    def _time_range(start_time: int | None, end_time: int | None) -> dict[str, int | None]:
        start = None if start_time is None else _check_int("start_time", start_time, 0)
        end = None if end_time is None else _check_int("end_time", end_time, 0)
        if start is not None and end is not None and start > end:
            raise InvalidInputError(f"start_time {start} is after end_time {end}")
        return {"startTime": start, "endTime": end}

    # ------------------------------------------------------------- USD-M listen keys

    def _listen_key_path(self) -> str:
        if not self._futures:
            raise InvalidInputError(_SPOT_LISTEN_KEY_RETIRED)
        if self.api_key is None:
            raise InvalidInputError("listen keys need an API key: Client(api_key=..., ...)")
        return "/fapi/v1/listenKey"

    def create_listen_key(self) -> str:
        """``POST /fapi/v1/listenKey``: the listen key of the USD-M user data stream.

        Valid 60 minutes; if the account already has an active key, Binance returns that one
        and extends it. Keep it alive with :meth:`keepalive_listen_key` (every 30 minutes is
        safe). Spot: InvalidInputError (spot listen keys were retired on 2026-02-20).
        """
        body = self.request("POST", self._listen_key_path(), with_api_key=True)
        return str(body["listenKey"])

    def keepalive_listen_key(self, listen_key: str) -> None:
        """``PUT /fapi/v1/listenKey``: extend the key's validity to 60 minutes from now.

        A key that expired or was closed gives BinanceAPIError -1125 "This listenKey does not
        exist.": create a new one.
        """
        path = self._listen_key_path()
        self.request(
            "PUT", path, {"listenKey": self._check_listen_key(listen_key)}, with_api_key=True
        )

    def close_listen_key(self, listen_key: str) -> None:
        """``DELETE /fapi/v1/listenKey``: close the key and its user data stream."""
        path = self._listen_key_path()
        self.request(
            "DELETE", path, {"listenKey": self._check_listen_key(listen_key)}, with_api_key=True
        )

    @staticmethod
    def _check_listen_key(listen_key: object) -> str:
        if not isinstance(listen_key, str) or not listen_key.isalnum():
            raise InvalidInputError(
                f"invalid listen key {listen_key!r}: expected letters and digits"
            )
        return listen_key

    # --------------------------------------------------------------------- requests

    def signed_request(
        self, method: str, path: str, params: Mapping[str, object] | None = None
    ) -> Any:
        """A SIGNED (TRADE / USER_DATA) call: ``params`` plus ``recvWindow`` and ``timestamp``
        (the local clock, ms), signed as binance-protocol.md 7.2 says, with ``X-MBX-APIKEY``.

        ``path`` is the full path, e.g. ``"/api/v3/account"``. Needs ``api_key`` and
        ``api_secret`` (InvalidInputError otherwise). Returns the decoded JSON body.
        """
        return self.request(method, path, params, signed=True)

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, object] | None = None,
        *,
        signed: bool = False,
        with_api_key: bool = False,
    ) -> Any:
        """Send one request and return its decoded JSON body: the escape hatch for endpoints
        this client has no method for.

        ``params`` go in the query string in their order, percent-encoded, None values left
        out (True/False as ``true``/``false``). ``signed`` signs them (see
        :meth:`signed_request`); ``with_api_key`` sends ``X-MBX-APIKEY`` (USER_STREAM
        endpoints). Errors as described on the class.
        """
        if (signed or with_api_key) and self.api_key is None:
            raise InvalidInputError(
                f"{method} {path} needs an API key: Client(api_key=..., api_secret=...)"
            )
        items: list[tuple[str, object]] = [
            (name, value) for name, value in (params or {}).items() if value is not None
        ]
        url = self.base_url + path
        if signed:
            if self._signer is None:
                raise InvalidInputError(
                    f"{method} {path} is SIGNED and needs an API secret: "
                    "Client(api_key=..., api_secret=...)"
                )
            if self.recv_window is not None:
                # "5000", not "5000.0"; at most 3 decimals (microseconds) are allowed.
                window = float(self.recv_window)
                items.append(
                    ("recvWindow", int(window) if window.is_integer() else round(window, 3))
                )
            items.append(("timestamp", int(time.time() * 1000)))
            payload, query = signed_query(items, self._signer)
            # The logged URL carries what was signed, never the signature.
            shown = f"{url}?{payload}&signature=<redacted>"
        else:
            query = encode_params(items)
            shown = f"{url}?{query}" if query else url
        full_url = f"{url}?{query}" if query else url
        headers = {"X-MBX-APIKEY": self.api_key} if (signed or with_api_key) else {}

        self._refuse_if_blocked(method, shown)
        try:
            response = self._session.request(
                method, full_url, headers=headers, timeout=self.timeout
            )
        except requests.Timeout as exc:  # before ConnectionError: ConnectTimeout is both
            log.debug("%s %s -> timeout after %s s", method, shown, self.timeout)
            raise RequestTimeout(
                f"{method} {shown}: no answer within {self.timeout} s ({type(exc).__name__})",
                method=method,
                url=shown,
                sent=not isinstance(exc, requests.ConnectTimeout),
            ) from exc
        except requests.RequestException as exc:
            log.debug("%s %s -> %s", method, shown, type(exc).__name__)
            raise RequestError(
                f"{method} {shown}: {type(exc).__name__}: {_redact(str(exc))}",
                method=method,
                url=shown,
                sent=not _never_connected(exc),
            ) from exc
        with response:
            return self._handle(method, shown, response)

    def _refuse_if_blocked(self, method: str, shown: str) -> None:
        with self._lock:
            remaining = self._blocked_until - time.monotonic()
            block = self._block
        if remaining > 0 and block is not None:
            banned = " (IP banned)" if block.banned else ""
            raise RateLimitError(
                block.status,
                block.code,
                f"not sent: Binance answered HTTP {block.status}{banned} and asked to wait "
                f"{remaining:.3f} s more; it said: {block.msg}",
                retry_after=remaining,
                banned=block.banned,
                method=method,
                url=shown,
            )

    def _handle(self, method: str, shown: str, response: requests.Response) -> Any:
        status = response.status_code
        weight_header = response.headers.get("X-MBX-USED-WEIGHT-1M")
        weight: int | None = None
        if weight_header is not None and weight_header.strip().isdigit():
            weight = int(weight_header)
            with self._lock:
                self._used_weight = weight
        log.debug("%s %s -> %s (used weight %s)", method, shown, status, weight)
        if status >= 400:
            raise self._error(method, shown, response)
        try:
            return response.json()
        except ValueError as exc:
            raise ProtocolError(
                f"{method} {shown}: HTTP {status} with a body that is not JSON: "
                f"{response.text[:200]!r}"
            ) from exc

    def _error(self, method: str, shown: str, response: requests.Response) -> BinanceAPIError:
        status = response.status_code
        code: int | None = None
        msg: str
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("code"), int):
            code, msg = body["code"], str(body.get("msg", ""))
        else:
            # nginx/WAF pages: say what came back without dumping the page.
            kind = response.headers.get("Content-Type", "unknown content type").split(";")[0]
            title = _HTML_TITLE.search(response.text)
            summary = title.group(1).strip() if title else response.text.strip()[:200]
            msg = f"{response.reason or 'error'} ({kind} body: {summary!r})"
            if status == 410:
                msg += "; Binance retired this endpoint"
        if status not in (418, 429):
            return BinanceAPIError(status, code, msg, method=method, url=shown)
        retry_after = self._retry_after(response, msg)
        error = RateLimitError(
            status,
            code,
            msg,
            retry_after=retry_after,
            banned=status == 418,
            method=method,
            url=shown,
        )
        if retry_after is not None:
            with self._lock:
                deadline = time.monotonic() + retry_after
                if deadline > self._blocked_until:
                    self._blocked_until, self._block = deadline, error
        log.warning(
            "%s %s -> HTTP %s (%s): refusing to send for %s s",
            method,
            shown,
            status,
            msg,
            retry_after,
        )
        return error

    @staticmethod
    def _retry_after(response: requests.Response, msg: str) -> float | None:
        header = response.headers.get("Retry-After")
        if header is not None:
            try:
                return max(0.0, float(header))
            except ValueError:
                pass  # an HTTP date: Binance sends seconds; fall through to the message
        banned = _BANNED_UNTIL.search(msg)
        if banned:
            until = int(banned.group(1))
            until_s = until / 1e6 if until >= 10**15 else until / 1e3  # µs or ms
            return max(0.0, until_s - time.time())
        return None
