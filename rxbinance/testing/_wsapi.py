"""FakeBinance's WebSocket API (``/ws-api/v3``): request/response envelope and method table.

Pure request handling, no sockets: :meth:`WsApi.handle` takes one text frame from a session and
returns the response object to send. Methods live in a table (:meth:`WsApi.add_method`); the
user data methods are :class:`UserDataStreams`, which keeps its per-session state in
:attr:`WsApiSession.state` and pushes events through :attr:`WsApiSession.send`.

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

User data (binance-protocol.md 6.2, 6.3; :class:`UserDataStreams`, installed by FakeBinance):

- ``userDataStream.subscribe.signature`` (weight 2): params ``apiKey``, ``timestamp``,
  ``signature``, optional ``recvWindow``. Checked in this order: a missing or empty parameter
  -1102 (400); an API key the fake does not know -2015 "Invalid API-key, IP, or permissions
  for action." (status 401); a signature that does not sign the sorted raw params (HMAC hex, or
  base64 Ed25519/RSA) -1022 "Signature for this request is not valid." (400); a timestamp
  1000 ms or more ahead of the server's wall clock, or older than ``recvWindow`` (default 5000
  ms) -1021 (400); an account already subscribed on this connection -2035 "User Data Stream
  subscription already active." (400). Success: ``{"subscriptionId": n}``, n = 0, 1, 2... per
  connection (-2042 after 65535).
- ``userDataStream.unsubscribe`` (weight 1): optional ``subscriptionId``; none closes every
  subscription of the connection. Result ``{}``, then ``eventStreamTerminated`` for each closed
  subscription (after the reply). An id that is not active: -2036 "User Data Stream
  subscription not active.".
- ``session.subscriptions`` (weight 1): ``[{"subscriptionId": n}, ...]``, the active ones.
- Events: ``{"subscriptionId": n, "event": {...}}``, pushed by
  :meth:`UserDataStreams.deliver` (``FakeBinance.publish_user_event``).
- Revoked keys (``FakeBinance.revoke_api_key``): the subscriptions of that key end and the
  connection gets ``{"id":null,"status":401,"error":{"code":-2015,...}}``, as Binance sends
  when a logged-on key becomes invalid.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._limits import WeightMeter, too_much_weight_msg

__all__ = ["UserDataStreams", "WsApi", "WsApiError", "WsApiMethod", "WsApiSession"]


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
        after_reply: Objects the server sends right after the current reply (a method that
            must push something after answering appends here).
    """

    connection_id: int
    microseconds: bool = False
    return_rate_limits: bool = True
    connected_since_ms: int = 0
    send: Callable[[Any], None] = lambda _obj: None
    state: dict[str, Any] = field(default_factory=dict)
    after_reply: list[Any] = field(default_factory=list)


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


# ------------------------------------------------------------------------------ user data


class _KeyVerifier(Protocol):
    """What :class:`UserDataStreams` needs of the API keys (``_rest.ApiKeys``)."""

    def __contains__(self, api_key: object) -> bool: ...
    def verify(self, api_key: str, payload: str, signature: str) -> bool: ...


_INVALID_KEY = (-2015, "Invalid API-key, IP, or permissions for action.")
_MAX_SUBSCRIPTION_ID = 65535


def _mandatory(params: dict[str, Any], name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise WsApiError(
            400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )
    return value


def _signature_payload(params: dict[str, Any]) -> str:
    # binance-protocol.md 6.2: params minus signature, sorted by name, raw values. JSON
    # booleans are written as JSON spells them.
    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return "&".join(f"{k}={text(params[k])}" for k in sorted(params) if k != "signature")


class UserDataStreams:
    """The WS API's user data methods (see the module docstring), on a :class:`WsApi`.

    Per-session state lives in ``session.state["user_data"]``: ``{"next": next id, "active":
    {subscription id: api key}}``. Methods run on the server loop under FakeBinance's lock;
    :meth:`deliver` and :meth:`revoke` must be called there too.

    ``clock_skew``: seconds added to the wall clock the timestamp is checked against (a test
    sets it to make the client's clock look wrong and get -1021).
    """

    def __init__(self, api: WsApi, keys: _KeyVerifier) -> None:
        self._keys = keys
        self.clock_skew = 0.0
        api.add_method("userDataStream.subscribe.signature", self._subscribe, weight=2)
        api.add_method("userDataStream.unsubscribe", self._unsubscribe, weight=1)
        api.add_method("session.subscriptions", self._subscriptions, weight=1)

    @staticmethod
    def _state(session: WsApiSession) -> dict[str, Any]:
        state: dict[str, Any] = session.state.setdefault("user_data", {"next": 0, "active": {}})
        return state

    def _subscribe(self, session: WsApiSession, params: dict[str, Any]) -> Any:
        api_key = _mandatory(params, "apiKey")
        timestamp = _mandatory(params, "timestamp")
        signature = _mandatory(params, "signature")
        if not isinstance(api_key, str) or api_key not in self._keys:
            raise WsApiError(401, *_INVALID_KEY)
        if not isinstance(signature, str) or not self._keys.verify(
            api_key, _signature_payload(params), signature
        ):
            raise WsApiError(400, -1022, "Signature for this request is not valid.")
        if isinstance(timestamp, bool) or not isinstance(timestamp, int):
            raise WsApiError(400, -1100, "Illegal characters found in parameter 'timestamp'.")
        recv_window = params.get("recvWindow", 5000)
        if isinstance(recv_window, bool) or not isinstance(recv_window, (int, float)):
            raise WsApiError(400, -1100, "Illegal characters found in parameter 'recvWindow'.")
        if recv_window > 60000:
            raise WsApiError(400, -1131, "recvWindow must be less than 60000")
        stamp_ms = timestamp / 1000 if timestamp >= 10**15 else float(timestamp)  # µs → ms
        now_ms = (time.time() + self.clock_skew) * 1000
        if stamp_ms >= now_ms + 1000:
            raise WsApiError(
                400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        if now_ms - stamp_ms > recv_window:
            raise WsApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        state = self._state(session)
        if api_key in state["active"].values():
            raise WsApiError(400, -2035, "User Data Stream subscription already active.")
        if state["next"] > _MAX_SUBSCRIPTION_ID:
            raise WsApiError(400, -2042, "Maximum subscription ID reached for this connection.")
        subscription_id = state["next"]
        state["next"] += 1
        state["active"][subscription_id] = api_key
        return {"subscriptionId": subscription_id}

    def _unsubscribe(self, session: WsApiSession, params: dict[str, Any]) -> Any:
        active: dict[int, str] = self._state(session)["active"]
        wanted = params.get("subscriptionId")
        if wanted is None:
            ended = sorted(active)
        elif isinstance(wanted, int) and not isinstance(wanted, bool) and wanted in active:
            ended = [wanted]
        else:
            raise WsApiError(400, -2036, "User Data Stream subscription not active.")
        for subscription_id in ended:
            del active[subscription_id]
            session.after_reply.append(
                {
                    "subscriptionId": subscription_id,
                    "event": {"e": "eventStreamTerminated", "E": int(time.time() * 1000)},
                }
            )
        return {}

    def _subscriptions(self, session: WsApiSession, params: dict[str, Any]) -> Any:
        return [{"subscriptionId": i} for i in sorted(self._state(session)["active"])]

    def subscriptions(self, session: WsApiSession) -> dict[int, str]:
        """The active subscriptions of ``session``: ``{subscription id: api key}``."""
        return dict(self._state(session)["active"])

    def deliver(self, session: WsApiSession, api_key: str, event: Any) -> int:
        """Send ``event`` to every subscription of ``api_key`` on ``session``, wrapped as
        ``{"subscriptionId": n, "event": event}``; return how many got it."""
        count = 0
        for subscription_id, owner in sorted(self._state(session)["active"].items()):
            if owner == api_key:
                session.send({"subscriptionId": subscription_id, "event": event})
                count += 1
        return count

    def revoke(self, session: WsApiSession, api_key: str) -> int:
        """End the subscriptions of ``api_key`` on ``session`` and tell the client with an
        unsolicited 401 -2015 (id null); return how many subscriptions ended."""
        active: dict[int, str] = self._state(session)["active"]
        ended = [i for i, owner in active.items() if owner == api_key]
        for subscription_id in ended:
            del active[subscription_id]
        if ended:
            code, msg = _INVALID_KEY
            session.send({"id": None, "status": 401, "error": {"code": code, "msg": msg}})
        return len(ended)
