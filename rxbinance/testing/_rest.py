"""FakeBinance's REST server: the handful of ``/api/v3`` endpoints a streams library needs.

:class:`RestApp` turns (method, request target) into (status, headers, body) and knows nothing
about sockets; :class:`RestServer` is a ``ThreadingHTTPServer`` that feeds it, one daemon thread
per client connection (named ``FakeBinance-rest-conn``), and can close every client connection
on shutdown so that no thread outlives :meth:`FakeBinance.stop`.

Endpoints and weights (binance-protocol.md section 7), charged per wall-clock minute and
reported in ``X-MBX-USED-WEIGHT-1M`` on every response:

=============================  ======  =======================================================
``GET /api/v3/ping``           1       ``{}``
``GET /api/v3/time``           1       ``{"serverTime": <market time ms>}``
``GET /api/v3/exchangeInfo``   20      ``symbol=`` or ``symbols=["A","B"]`` (not both: -1128);
                                       ``symbolStatus=`` filters (not with symbol/symbols)
``GET /api/v3/depth``          5/25/   by ``limit``: 1-100: 5, 101-500: 25, 501-1000: 50,
                               50/250  over 1000: 250 (``limit`` > 5000 is served as 5000)
``GET /api/v3/aggTrades``      4       ``symbol``, ``fromId``, ``startTime``, ``endTime``, ``limit``
``GET /api/v3/klines``         2       ``symbol``, ``interval``, ``startTime``, ``endTime``,
                                       ``limit``, ``timeZone`` (only ``0`` is supported)
``GET /api/v3/uiKlines``       2       same as klines
``GET /api/v3/avgPrice``       2       ``symbol``
``* /api/v3/userDataStream``   0       HTTP 410 with an nginx HTML page (retired 2026-02-20;
``* /api/v1/userDataStream``           ``/api/v1`` retired 2026-03-25)
=============================  ======  =======================================================

Errors are ``{"code":..,"msg":..}`` with HTTP 400: -1102 a mandatory parameter missing or
empty, -1100 a malformed parameter (non-integer number, lowercase symbol, bad ``symbols``
JSON), -1104 unknown parameters sent, -1128 symbol together with symbols, and whatever the
market raises (-1121 invalid symbol, -1120 invalid interval...). Unknown paths: 404
``{"code":-1000,"msg":"Unknown path: ..."}``; a wrong HTTP method on a known path: 405
``{"code":-1000,...}``. Weight goes over the limit: 429 ``-1003`` with ``Retry-After`` = seconds
to the next minute, and nothing is charged. ``rest_fault`` answers the next requests with 429
(Binance's -1003 text) or 418 (the ban text, "IP banned until <epoch ms>") and ``Retry-After``,
before any weight is charged. Not modelled: the ``X-MBX-TIME-UNIT`` header, timeZone offsets,
signed endpoints.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from ._control import dumps
from ._limits import WeightMeter, too_much_weight_msg
from ._records import RestRequest

if TYPE_CHECKING:
    from ._market import Market

__all__ = ["RestApp", "RestFaults", "RestResponse", "RestServer", "depth_weight"]

T = TypeVar("T")

#: ``fn -> fn(market)`` under the FakeBinance lock.
MarketCall = Callable[[Callable[["Market"], Any]], Any]

_SYMBOL = re.compile(r"[A-Z0-9_.-]{1,20}")
_INTEGER = re.compile(r"-?[0-9]{1,20}")

_GONE_HTML = (
    "<html>\r\n<head><title>410 Gone</title></head>\r\n<body>\r\n"
    "<center><h1>410 Gone</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def depth_weight(limit: int) -> int:
    """Weight of ``GET /api/v3/depth`` for a ``limit`` (since 2023-10-19)."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


@dataclass(frozen=True, slots=True)
class RestResponse:
    """What the HTTP layer sends: status, extra headers, body bytes, content type."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json;charset=UTF-8"


class _ApiError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(code, msg)
        self.code = code
        self.msg = msg
        self.status = status


class RestFaults:
    """Scripted HTTP errors for the next requests (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status = 0
        self._retry_after = 0
        self._remaining: int | None = 0

    def set(self, status: int, retry_after: int, times: int | None) -> None:
        """Answer the next ``times`` requests (None: all until cleared) with ``status``."""
        if status not in (429, 418):
            raise ValueError(f"rest_fault status must be 429 or 418, not {status}")
        with self._lock:
            self._status, self._retry_after, self._remaining = status, retry_after, times

    def clear(self) -> None:
        """Stop injecting errors."""
        with self._lock:
            self._remaining = 0

    def take(self) -> tuple[int, int] | None:
        """(status, retry_after) if this request must fail, consuming one use."""
        with self._lock:
            if self._remaining is not None:
                if self._remaining <= 0:
                    return None
                self._remaining -= 1
            return self._status, self._retry_after


def _json(status: int, value: Any, headers: tuple[tuple[str, str], ...] = ()) -> RestResponse:
    return RestResponse(status, dumps(value).encode(), headers)


class _Params:
    """Query parameters with Binance-style validation and read tracking (for -1104)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._values = dict(pairs)
        self._read: set[str] = set()

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def raw(self, name: str) -> str | None:
        self._read.add(name)
        value = self._values.get(name)
        return value if value != "" else None

    def required(self, name: str) -> str:
        value = self.raw(name)
        if value is None:
            raise _ApiError(
                -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
            )
        return value

    def integer(self, name: str) -> int | None:
        value = self.raw(name)
        if value is None:
            return None
        if not _INTEGER.fullmatch(value):
            raise _ApiError(
                -1100,
                f"Illegal characters found in parameter '{name}'; "
                "legal range is '^[0-9]{1,20}$'.",
            )
        return int(value)

    def symbol(self, name: str = "symbol") -> str:
        value = self.required(name)
        if not _SYMBOL.fullmatch(value):
            raise _ApiError(
                -1100,
                f"Illegal characters found in parameter '{name}'; "
                "legal range is '^[A-Z0-9-_.]{1,20}$'.",
            )
        return value

    def check_all_read(self) -> None:
        # Binance rejects parameters an endpoint does not read.
        unread = set(self._values) - self._read
        if unread:
            raise _ApiError(
                -1104,
                f"Not all sent parameters were read; read '{len(self._values) - len(unread)}' "
                f"parameter(s) but was sent '{len(self._values)}'.",
            )


class RestApp:
    """The REST endpoints as a function of (method, target); see the module docstring."""

    def __init__(
        self,
        *,
        call_market: MarketCall,
        weights: WeightMeter,
        faults: RestFaults,
        record: Callable[[RestRequest], None],
    ) -> None:
        self._call_market = call_market
        self._weights = weights
        self._faults = faults
        self._record = record
        self._routes: Mapping[str, tuple[Callable[[_Params], int], Callable[[_Params], Any]]] = {
            "/api/v3/ping": (lambda p: 1, self._ping),
            "/api/v3/time": (lambda p: 1, self._time),
            "/api/v3/exchangeInfo": (lambda p: 20, self._exchange_info),
            "/api/v3/depth": (self._depth_weight, self._depth),
            "/api/v3/aggTrades": (lambda p: 4, self._agg_trades),
            "/api/v3/klines": (lambda p: 2, self._klines),
            "/api/v3/uiKlines": (lambda p: 2, self._klines),
            "/api/v3/avgPrice": (lambda p: 2, self._avg_price),
        }

    # -- plumbing

    def handle(self, method: str, target: str) -> RestResponse:
        """Answer one request and record it in ``fake.rest_requests``."""
        parts = urlsplit(target)
        weight = 0
        try:
            response, weight = self._dispatch(method, parts.path, parts.query)
        except Exception as exc:  # a bug here must not kill the HTTP thread silently
            response = _json(500, {"code": -1000, "msg": f"FakeBinance internal error: {exc!r}"})
        self._record(
            RestRequest(method, parts.path, parts.query, response.status, weight, time.time())
        )
        return response

    def _dispatch(self, method: str, path: str, query: str) -> tuple[RestResponse, int]:
        if path in ("/api/v3/userDataStream", "/api/v1/userDataStream"):
            return RestResponse(410, _GONE_HTML.encode(), content_type="text/html"), 0
        route = self._routes.get(path)
        if route is None:
            return _json(404, {"code": -1000, "msg": f"Unknown path: {path}"}), 0
        if method != "GET":
            return _json(405, {"code": -1000, "msg": f"Method {method} not allowed on {path}."}), 0

        fault = self._faults.take()
        if fault is not None:
            return self._fault_response(*fault), 0

        params = _Params(parse_qsl(query, keep_blank_values=True))
        weight_of, handler = route
        try:
            weight = weight_of(params)
        except _ApiError:
            weight = 1  # a malformed weight-defining param; the handler reports it below
        charge = self._weights.charge(weight)
        used = (("X-MBX-USED-WEIGHT-1M", str(charge.used)),)
        if not charge.allowed:
            body = {"code": -1003, "msg": too_much_weight_msg(self._weights.limit)}
            return _json(429, body, (*used, ("Retry-After", str(charge.retry_after)))), 0
        try:
            result = handler(params)
            params.check_all_read()
        except _ApiError as exc:
            return _json(exc.status, {"code": exc.code, "msg": exc.msg}, used), weight
        except Exception as exc:
            code = getattr(exc, "code", None)
            msg = getattr(exc, "msg", None)
            if isinstance(code, int) and isinstance(msg, str):  # MarketError
                return _json(400, {"code": code, "msg": msg}, used), weight
            raise
        return _json(200, result, used), weight

    def _fault_response(self, status: int, retry_after: int) -> RestResponse:
        headers = (
            ("X-MBX-USED-WEIGHT-1M", str(self._weights.used())),
            ("Retry-After", str(retry_after)),
        )
        if status == 429:
            return _json(
                429, {"code": -1003, "msg": too_much_weight_msg(self._weights.limit)}, headers
            )
        until = int(time.time() * 1000) + retry_after * 1000
        msg = (
            f"Way too much request weight used; IP banned until {until}. "
            "Please use WebSocket Streams for live updates to avoid bans."
        )
        return _json(418, {"code": -1003, "msg": msg}, headers)

    # -- endpoints

    def _ping(self, params: _Params) -> Any:
        return {}

    def _time(self, params: _Params) -> Any:
        return {"serverTime": self._call_market(lambda m: m.time_ms)}

    def _exchange_info(self, params: _Params) -> Any:
        symbol = params.symbol() if "symbol" in params else None
        symbols_raw = params.raw("symbols")
        status = params.raw("symbolStatus")
        params.raw("permissions")
        params.raw("showPermissionSets")
        if symbol is not None and symbols_raw is not None:
            raise _ApiError(-1128, "Combination of optional parameters invalid.")
        if status is not None and (symbol is not None or symbols_raw is not None):
            raise _ApiError(-1128, "Combination of optional parameters invalid.")
        wanted: list[str] | None = None
        if symbol is not None:
            wanted = [symbol]
        elif symbols_raw is not None:
            try:
                parsed = json.loads(symbols_raw)
            except json.JSONDecodeError:
                parsed = None
            if not (
                isinstance(parsed, list)
                and parsed
                and all(isinstance(s, str) and _SYMBOL.fullmatch(s) for s in parsed)
            ):
                raise _ApiError(
                    -1100,
                    "Illegal characters found in parameter 'symbols'; legal range is "
                    '\'^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$\'.',
                )
            wanted = parsed
        info: dict[str, Any] = dict(self._call_market(lambda m: m.rest_exchange_info(wanted)))
        # Advertise the weight limit this server really enforces.
        info["rateLimits"] = [
            {**limit, "limit": self._weights.limit}
            if limit.get("rateLimitType") == "REQUEST_WEIGHT"
            else limit
            for limit in info.get("rateLimits", [])
        ]
        if status is not None:
            info["symbols"] = [s for s in info.get("symbols", []) if s.get("status") == status]
        return info

    def _depth_limit(self, params: _Params) -> int:
        limit = params.integer("limit")
        return 100 if limit is None else limit

    def _depth_weight(self, params: _Params) -> int:
        return depth_weight(min(self._depth_limit(params), 5000))

    def _depth(self, params: _Params) -> Any:
        symbol = params.symbol()
        limit = min(self._depth_limit(params), 5000)
        params.raw("symbolStatus")  # accepted, not modelled: every simulated symbol trades
        return self._call_market(lambda m: m.rest_depth(symbol, limit))

    def _agg_trades(self, params: _Params) -> Any:
        symbol = params.symbol()
        from_id = params.integer("fromId")
        start = params.integer("startTime")
        end = params.integer("endTime")
        limit = params.integer("limit")
        return self._call_market(
            lambda m: m.rest_agg_trades(
                symbol, from_id, start, end, 500 if limit is None else limit
            )
        )

    def _klines(self, params: _Params) -> Any:
        symbol = params.symbol()
        interval = params.required("interval")
        start = params.integer("startTime")
        end = params.integer("endTime")
        limit = params.integer("limit")
        zone = params.raw("timeZone")
        if zone not in (None, "0", "00:00", "+00:00", "0:00"):
            raise _ApiError(-1100, "FakeBinance does not model timeZone offsets; use 0.")
        return self._call_market(
            lambda m: m.rest_klines(symbol, interval, start, end, 500 if limit is None else limit)
        )

    def _avg_price(self, params: _Params) -> Any:
        symbol = params.symbol()
        return self._call_market(lambda m: m.rest_avg_price(symbol))


class _Handler(BaseHTTPRequestHandler):
    server: RestServer
    protocol_version = "HTTP/1.1"  # keep-alive, like a real API front end

    def version_string(self) -> str:
        return "FakeBinance"

    def _serve(self) -> None:
        # Drain a request body (POST/PUT/DELETE forms) so keep-alive framing stays right.
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        response = self.server.app.handle(self.command, self.path)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read fake.rest_requests instead of stderr noise


class RestServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with named daemon threads and a hard close of client sockets."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], app: RestApp) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self._clients_lock = threading.Lock()
        self._clients: dict[socket.socket, threading.Thread] = {}

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_client,
            args=(request, client_address),
            name="FakeBinance-rest-conn",
            daemon=True,
        )
        with self._clients_lock:
            self._clients[request] = thread
        thread.start()

    def _serve_client(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._clients_lock:
                self._clients.pop(request, None)

    def close_clients(self, timeout: float) -> None:
        """Shut down every client socket (wakes keep-alive readers) and join their threads."""
        with self._clients_lock:
            clients = list(self._clients.items())
        for sock, _thread in clients:
            with contextlib.suppress(OSError):  # already closed by the client
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for _sock, thread in clients:
            thread.join(max(0.0, deadline - time.monotonic()))
