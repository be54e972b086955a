"""FakeBinance's WebSocket API (``/ws-api/v3``): request/response envelope and method table.

Pure request handling, no sockets: :meth:`WsApi.handle` takes one text frame from a session and
returns the response object to send. Methods live in a table, so a later module can add the
user-data methods (``userDataStream.subscribe.signature`` with HMAC checks, subscription ids,
event wrapping) with :meth:`WsApi.add_method`, keeping its per-session state in
:attr:`WsApiSession.state` and pushing events through :attr:`WsApiSession.send`.

Envelope (binance-protocol.md section 6.2)::

    -> {"id":"abc","method":"time","params":{}}
    <- {"id":"abc","status":200,"result":{"serverTime":1656400526260},
        "rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,
                       "limit":6000,"count":70}]}

``rateLimits`` is left out when the URL had ``returnRateLimits=false`` or the request's params
have ``"returnRateLimits": false``. Errors (status 400 unless noted, ``rateLimits`` as above):

- not JSON, or not a JSON object: ``{"code":-1135,"msg":"Invalid JSON request."}``, id null;
- ``method`` missing or not a string: ``-1102 Mandatory parameter 'method' was not sent...``;
- ``params`` present but not an object: ``-1135 Invalid 'params' in JSON request; expected an
  object.`` (the text Binance answers);
- ``id`` not an int / string / null: ``-1100``;
- unknown method: ``-1000 Unknown method '<name>'.`` (Binance's exact answer is not documented);
- request weight over the limit: status 429, ``-1003`` with
  ``"data":{"serverTime":..,"retryAfter":<epoch ms>}`` inside ``error``.

Methods built in: ``ping`` (weight 1, result ``{}``) and ``time`` (weight 1,
``{"serverTime": <market time>}``, µs with ``timeUnit=MICROSECOND``). Opening a WS API
connection costs 2 weight (charged by the server).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._limits import WeightMeter, too_much_weight_msg

__all__ = ["WsApi", "WsApiError", "WsApiMethod", "WsApiSession"]


class WsApiError(Exception):
    """Raised by a method handler to answer with an error.

    ``status`` is the HTTP-like status of the response, ``code``/``msg`` Binance's error, and
    ``data`` optional extra fields placed in ``error.data``.
    """

    def __init__(
        self, status: int, code: int, msg: str, data: dict[str, Any] | None = None
    ) -> None:
        super().__init__(status, code, msg)
        self.status = status
        self.code = code
        self.msg = msg
        self.data = data


@dataclass(slots=True)
class WsApiSession:
    """Per-connection state of a WS API session.

    Attributes:
        connection_id: The :class:`ConnectionRecord` id.
        microseconds: The URL asked for ``timeUnit=MICROSECOND``.
        return_rate_limits: False when the URL had ``returnRateLimits=false``.
        connected_since_ms: Market time when the session opened.
        send: Push an unsolicited JSON object (e.g. a user-data event) to the client; set by
            the server, runs on the server loop.
        state: Free-form per-session state for method groups added later.
    """

    connection_id: int
    microseconds: bool = False
    return_rate_limits: bool = True
    connected_since_ms: int = 0
    send: Callable[[Any], None] = lambda _obj: None
    state: dict[str, Any] = field(default_factory=dict)


#: A method handler: (session, params) -> result object; raise WsApiError for errors.
Handler = Callable[[WsApiSession, dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class WsApiMethod:
    """A method of the table: its request weight and handler."""

    name: str
    weight: int
    handler: Handler


class WsApi:
    """Dispatches WS API requests; ``server_time_ms`` returns the market time."""

    def __init__(self, *, weights: WeightMeter, server_time_ms: Callable[[], int]) -> None:
        self._weights = weights
        self._server_time_ms = server_time_ms
        self._methods: dict[str, WsApiMethod] = {}
        self.add_method("ping", lambda session, params: {}, weight=1)
        self.add_method("time", self._time, weight=1)

    def add_method(self, name: str, handler: Handler, *, weight: int = 1) -> None:
        """Register (or replace) a method."""
        self._methods[name] = WsApiMethod(name, weight, handler)

    @property
    def methods(self) -> tuple[str, ...]:
        """Names of the registered methods."""
        return tuple(self._methods)

    def _time(self, session: WsApiSession, params: dict[str, Any]) -> Any:
        now = self._server_time_ms()
        return {"serverTime": now * 1000 if session.microseconds else now}

    def _rate_limits(self, used: int) -> list[dict[str, Any]]:
        return [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": self._weights.limit,
                "count": used,
            }
        ]

    def handle(self, session: WsApiSession, text: str | bytes) -> dict[str, Any]:
        """The response to one request frame (see the module docstring)."""
        request_id: Any = None
        rate_limits = session.return_rate_limits

        def error(
            status: int, code: int, msg: str, data: dict[str, Any] | None = None
        ) -> dict[str, Any]:
            err: dict[str, Any] = {"code": code, "msg": msg}
            if data is not None:
                err["data"] = data
            out: dict[str, Any] = {"id": request_id, "status": status, "error": err}
            if rate_limits:
                out["rateLimits"] = self._rate_limits(self._weights.used())
            return out

        try:
            request = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error(400, -1135, "Invalid JSON request.")
        if not isinstance(request, dict):
            return error(400, -1135, "Invalid JSON request.")
        raw_id = request.get("id")
        if raw_id is None or (isinstance(raw_id, (int, str)) and not isinstance(raw_id, bool)):
            request_id = raw_id
        else:
            return error(400, -1100, "Illegal characters found in parameter 'id'.")
        params = request.get("params", {})
        if not isinstance(params, dict):
            return error(400, -1135, "Invalid 'params' in JSON request; expected an object.")
        if params.get("returnRateLimits") is False:
            rate_limits = False
        method_name = request.get("method")
        if not isinstance(method_name, str) or not method_name:
            return error(
                400,
                -1102,
                "Mandatory parameter 'method' was not sent, was empty/null, or malformed.",
            )
        method = self._methods.get(method_name)
        if method is None:
            return error(400, -1000, f"Unknown method '{method_name}'.")

        charge = self._weights.charge(method.weight)
        if not charge.allowed:
            now = self._server_time_ms()
            return error(
                429,
                -1003,
                too_much_weight_msg(self._weights.limit),
                {"serverTime": now, "retryAfter": now + charge.retry_after * 1000},
            )
        try:
            result = method.handler(session, params)
        except WsApiError as exc:
            return error(exc.status, exc.code, exc.msg, exc.data)
        out: dict[str, Any] = {"id": request_id, "status": 200, "result": result}
        if rate_limits:
            out["rateLimits"] = self._rate_limits(charge.used)
        return out
