"""The market-stream endpoint's wire protocol, as pure functions (no sockets, no asyncio).

Three jobs, all of them plain data in, plain data out, so the server module only moves bytes:

- :func:`parse_request_path`: turn a handshake request target (``/ws/btcusdt@trade``,
  ``/stream?streams=a/b&timeUnit=MICROSECOND``, ``/ws-api/v3``...) into an
  :class:`Endpoint`, or a :class:`Rejection` (HTTP status + Binance-style JSON body).
- :func:`handle_control`: answer one live control message (SUBSCRIBE, UNSUBSCRIBE,
  LIST_SUBSCRIPTIONS, SET_PROPERTY, GET_PROPERTY) exactly as binance-protocol.md section 3
  describes, and say which subscription changes to apply.
- :func:`encode_event` / :func:`to_microseconds`: the frame text of a market event on a given
  connection (wrapped in ``{"stream","data"}`` when combined, time fields in µs when asked).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

__all__ = [
    "Classify",
    "ControlOutcome",
    "Endpoint",
    "Rejection",
    "dumps",
    "encode_event",
    "handle_control",
    "parse_request_path",
    "to_microseconds",
]

#: ``Market.classify_stream``: "ok", "retired" or "invalid" for a stream name.
Classify = Callable[[str], Literal["ok", "retired", "invalid"]]

_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")

# Binance accepts a signed 64-bit int, a string of at most 36 characters, or null as `id`.
# The docs say "alphanumeric"; we also accept '-' and '_' so that UUID4 strings (exactly 36
# characters, the obvious thing a client generates) work.
_ID_STRING = re.compile(r"[A-Za-z0-9_-]{1,36}")
_INT64 = (-(2**63), 2**63 - 1)

# Only the four spellings the reference documents (2024-12-17 changelog).
_TIME_UNITS = {
    "MICROSECOND": True,
    "microsecond": True,
    "MILLISECOND": False,
    "millisecond": False,
}


def dumps(value: Any) -> str:
    """Compact JSON like Binance sends it (no spaces), UTF-8 kept as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------- request paths


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A handshake target the server accepts.

    Attributes:
        kind: ``"stream"`` for ``/ws...`` and ``/stream...``, ``"ws-api"`` for ``/ws-api/v3``.
        combined: Initial ``combined`` property (True for ``/stream``).
        streams: Streams named in the URL, de-duplicated, in URL order.
        microseconds: ``timeUnit=MICROSECOND`` was given.
        return_rate_limits: WS API only: False when ``returnRateLimits=false`` was given.
    """

    kind: Literal["stream", "ws-api"]
    combined: bool = False
    streams: tuple[str, ...] = ()
    microseconds: bool = False
    return_rate_limits: bool = True


@dataclass(frozen=True, slots=True)
class Rejection:
    """A handshake the server refuses: HTTP ``status`` with a JSON ``{"code","msg"}`` body."""

    status: int
    code: int
    msg: str

    @property
    def body(self) -> str:
        """The response body: ``{"code":..,"msg":..}``."""
        return dumps({"code": self.code, "msg": self.msg})


def parse_request_path(
    target: str, *, classify: Classify, max_streams: int
) -> Endpoint | Rejection:
    """Route a WebSocket handshake request target.

    Accepted forms (the whole target may be percent-encoded, e.g. ``%40`` for ``@``):

    - ``/ws`` (raw, no streams until SUBSCRIBE), ``/ws/<s1>[/<s2>...]`` (raw streams);
    - ``/stream`` (combined, no streams) and ``/stream?streams=<s1>/<s2>`` (combined);
    - ``/ws-api/v3`` (WebSocket API; ``returnRateLimits=false`` honoured);
    - on any of them ``timeUnit=MICROSECOND|microsecond|MILLISECOND|millisecond``.

    Empty segments (``a//b``, a trailing ``/``) are ignored; repeated names count once. A
    ``+`` in the query is a literal plus (``@kline_1h@+08:00``), not a space.

    Rejections:

    - unknown path: 404 ``{"code":-1000,"msg":"Unknown path: <path>"}`` (Binance answers
      unknown paths with 404; the body is our choice);
    - a stream name the market classifies as invalid: 400 ``{"code":-1100,"msg":"Illegal
      characters found in parameter 'streams'; invalid stream name '<name>'."}`` (-1100 is
      Binance's code for malformed parameters);
    - more than ``max_streams`` streams: 400 ``{"code":-1101,"msg":"Too many parameters;
      expected '<max>' and received '<n>'."}`` (Binance's -1101 wording);
    - any other ``timeUnit`` value: 400 ``{"code":-1100,"msg":"Invalid timeUnit."}``.

    Retired streams (``!ticker@arr``, ``!bookTicker``) are accepted: they connect and never
    deliver, like on Binance.
    """
    parts = urlsplit(target)
    path = unquote(parts.path)
    # Not parse_qsl: it would turn the "+" of "@kline_1h@+08:00" into a space (form encoding).
    query: dict[str, str] = {}
    for item in parts.query.split("&"):
        key, _, value = item.partition("=")
        if key:
            query[unquote(key)] = unquote(value)

    micro = False
    if "timeUnit" in query:
        unit = query["timeUnit"]
        if unit not in _TIME_UNITS:
            return Rejection(400, -1100, "Invalid timeUnit.")
        micro = _TIME_UNITS[unit]

    if path.rstrip("/") == "/ws-api/v3":
        return Endpoint(
            "ws-api",
            microseconds=micro,
            return_rate_limits=query.get("returnRateLimits", "true").lower() != "false",
        )
    if path in ("/ws", "/ws/") or path.startswith("/ws/"):
        combined = False
        raw = path[len("/ws") :]
    elif path in ("/stream", "/stream/"):
        combined = True
        raw = query.get("streams", "")
    else:
        return Rejection(404, -1000, f"Unknown path: {path}")

    names: list[str] = []
    for name in raw.split("/"):
        if name and name not in names:
            names.append(name)
    for name in names:
        if classify(name) == "invalid":
            return Rejection(
                400,
                -1100,
                f"Illegal characters found in parameter 'streams'; invalid stream name '{name}'.",
            )
    if len(names) > max_streams:
        return Rejection(
            400,
            -1101,
            f"Too many parameters; expected '{max_streams}' and received '{len(names)}'.",
        )
    return Endpoint("stream", combined=combined, streams=tuple(names), microseconds=micro)


# ------------------------------------------------------------------------ control messages


@dataclass(frozen=True, slots=True)
class ControlOutcome:
    """What to do about one control message.

    Attributes:
        reply: The JSON reply to send (never wrapped, even on combined connections).
        parsed: The message as parsed JSON, or the raw text when it was not JSON.
        subscribe: Streams to add, in order (only names not already subscribed).
        unsubscribe: Streams to remove (only names currently subscribed).
        combined: New value of the ``combined`` property, or None for no change.
    """

    reply: dict[str, Any]
    parsed: Any
    subscribe: tuple[str, ...] = ()
    unsubscribe: tuple[str, ...] = ()
    combined: bool | None = None

    @property
    def method(self) -> str | None:
        """The control method the message named (one of the five), also when the reply is an
        error; None when it named none (not JSON, not an object, no or an unknown ``method``).
        What ``ConnectionRecord.control_log`` records."""
        parsed = self.parsed
        if isinstance(parsed, dict):
            method = parsed.get("method")
            if isinstance(method, str) and method in _METHODS:
                return method
        return None


def _error(code: int, msg: str, request_id: Any, parsed: Any) -> ControlOutcome:
    return ControlOutcome({"error": {"code": code, "msg": msg}, "id": request_id}, parsed)


def _line_col(text: str, index: int) -> tuple[int, int]:
    # serde_json positions are 1-based line and column of the last character consumed.
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1)
    return line, col


def _valid_id(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):  # bool is an int in Python, never on the wire
        return False
    if isinstance(value, int):
        return _INT64[0] <= value <= _INT64[1]
    return isinstance(value, str) and _ID_STRING.fullmatch(value) is not None


def handle_control(
    text: str | bytes,
    *,
    streams: Sequence[str],
    combined: bool,
    classify: Classify,
    max_streams: int,
) -> ControlOutcome:
    """Answer one client control message on a market-stream connection.

    ``streams`` and ``combined`` are the connection's current state; nothing is mutated, the
    outcome says what to change. Replies follow binance-protocol.md section 3:
    ``{"result":null,"id":..}`` (LIST_SUBSCRIPTIONS: the list; GET_PROPERTY: the bool), errors
    nested as ``{"error":{"code":..,"msg":..},"id":..}`` with the request's id echoed, or null
    when the id itself is missing or invalid. Checks, in this order:

    1. not JSON (or bytes that are not UTF-8): code 3 ``Invalid JSON: expected value at line L
       column C``; not a JSON object: code 3 as well (Binance's parser expects a struct);
    2. ``id`` present but not a signed 64-bit int / string of ≤36 ``[A-Za-z0-9_-]`` / null:
       code 2 ``Invalid request: request ID must be an unsigned integer`` (historic wording);
    3. ``method`` missing: code 2 ``Invalid request: missing field `method` at line L column
       C``; not one of the five methods: code 2 ``Invalid request: unknown variant `X`,
       expected one of `SUBSCRIBE`, ... at line L column C`` (id echoed, null if absent);
    4. ``id`` missing: the request-ID error of step 2;
    5. per method: SUBSCRIBE/UNSUBSCRIBE need ``params`` as a list of stream names (missing
       or not a list: code 2 ``Invalid request: missing or invalid field `params```); any name
       the market classifies invalid (or a non-string): code 2 ``Invalid request: invalid
       stream`` and nothing changes; SUBSCRIBE that would leave more than ``max_streams``
       streams: code 2 ``Invalid request: too many streams (max <n> per connection)`` and
       nothing changes. Re-subscribing or unsubscribing an absent stream is not an error.

       One invalid name among many valid ones refuses the whole request: one error reply
       with the request's id, none of its names (valid or not) subscribed or unsubscribed.
       binance-protocol.md is silent on partial acceptance (a reply carries one ``id`` and
       one ``error``, so there is no way to say which names were taken); refusing the whole
       request is the reading that cannot leave a client believing a stream it never got.
       The wording of the too-many-streams error is ours: the reference documents the limit
       (1024 spot, 200 USD-M; pass the connection's own as ``max_streams``) but not the
       reply; its shape (nested, code 2, id echoed) is the one every request error has.
       LIST_SUBSCRIPTIONS takes no params (code 2 ``too many parameters`` otherwise).
       SET_PROPERTY ``["combined", <bool>]`` / GET_PROPERTY ``["combined"]``: extra params:
       code 2 ``Invalid request: too many parameters``; name missing or not a string: code 2
       ``Invalid request: property name must be a string``; another name: code 0 ``Unknown
       property``; value missing or not a bool: code 1 ``Invalid value type: expected
       Boolean``.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return _error(3, "Invalid JSON: expected value at line 1 column 1", None, text)
    try:
        message = json.loads(text)
    except json.JSONDecodeError as exc:
        return _error(
            3, f"Invalid JSON: expected value at line {exc.lineno} column {exc.colno}", None, text
        )
    if not isinstance(message, dict):
        return _error(3, "Invalid JSON: expected value at line 1 column 1", None, message)

    # Like Binance's serde parser: a present-but-wrong id fails while parsing, a missing field
    # only at the end of the object, where `method` is reported before `id`.
    bad_id = "Invalid request: request ID must be an unsigned integer"
    if "id" in message and not _valid_id(message["id"]):
        return _error(2, bad_id, None, message)
    request_id = message.get("id")

    if "method" not in message:
        line, col = _line_col(text, len(text.rstrip()))
        return _error(
            2,
            f"Invalid request: missing field `method` at line {line} column {col}",
            request_id,
            message,
        )
    method = message["method"]
    if method not in _METHODS:
        # Point at the end of the method value like serde does; best effort for odd layouts.
        found = re.search(r'"method"\s*:\s*("(?:[^"\\]|\\.)*"|[^,}\s]+)', text)
        line, col = _line_col(text, found.end() if found else len(text.rstrip()))
        expected = ", ".join(f"`{m}`" for m in _METHODS)
        shown = method if isinstance(method, str) else dumps(method)
        return _error(
            2,
            f"Invalid request: unknown variant `{shown}`, expected one of {expected} "
            f"at line {line} column {col}",
            request_id,
            message,
        )

    if "id" not in message:
        return _error(2, bad_id, None, message)

    params = message.get("params")
    ok = {"result": None, "id": request_id}

    if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
        if not isinstance(params, list):
            return _error(
                2, "Invalid request: missing or invalid field `params`", request_id, message
            )
        names: list[str] = []
        for name in params:
            if not isinstance(name, str) or classify(name) == "invalid":
                return _error(2, "Invalid request: invalid stream", request_id, message)
            if name not in names:
                names.append(name)
        if method == "UNSUBSCRIBE":
            return ControlOutcome(ok, message, unsubscribe=tuple(n for n in names if n in streams))
        new = tuple(n for n in names if n not in streams)
        if len(streams) + len(new) > max_streams:
            return _error(
                2,
                f"Invalid request: too many streams (max {max_streams} per connection)",
                request_id,
                message,
            )
        return ControlOutcome(ok, message, subscribe=new)

    if method == "LIST_SUBSCRIPTIONS":
        if params not in (None, []):
            return _error(2, "Invalid request: too many parameters", request_id, message)
        return ControlOutcome({"result": list(streams), "id": request_id}, message)

    # SET_PROPERTY / GET_PROPERTY
    args = params if isinstance(params, list) else []
    if len(args) > (2 if method == "SET_PROPERTY" else 1):
        return _error(2, "Invalid request: too many parameters", request_id, message)
    if not args or not isinstance(args[0], str):
        return _error(2, "Invalid request: property name must be a string", request_id, message)
    if args[0] != "combined":
        return _error(0, "Unknown property", request_id, message)
    if method == "GET_PROPERTY":
        return ControlOutcome({"result": combined, "id": request_id}, message)
    if len(args) < 2 or not isinstance(args[1], bool):
        return _error(1, "Invalid value type: expected Boolean", request_id, message)
    return ControlOutcome(ok, message, combined=args[1])


# ---------------------------------------------------------------------------- event frames

# Integer time fields (epoch ms) that timeUnit=MICROSECOND turns into µs. Trade ids such as
# `t` on trades are NOT times, so `t` is only converted inside a kline's `k` (open time).
_TOP_LEVEL_TIMES = ("E", "T", "O", "C")
_KLINE_TIMES = ("t", "T")


def _micro_one(payload: dict[str, Any]) -> dict[str, Any]:
    out = dict(payload)
    for key in _TOP_LEVEL_TIMES:
        value = out.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            out[key] = value * 1000
    kline = out.get("k")
    if isinstance(kline, dict):
        k = dict(kline)
        for key in _KLINE_TIMES:
            value = k.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                k[key] = value * 1000
        out["k"] = k
    return out


def to_microseconds(payload: Any) -> Any:
    """A copy of a market payload with its time fields in microseconds.

    Converted (integer fields only, multiplied by 1000): top-level ``E`` (event time), ``T``
    (trade / last-trade time), ``O`` and ``C`` (ticker window open/close times), and inside a
    kline's ``k``: ``t`` and ``T`` (candle open/close times). Arrays (``!...@arr``) are
    converted element by element. Everything else (ids such as a trade's ``t``, update ids,
    prices) is left alone. The input is not modified.
    """
    if isinstance(payload, list):
        return [_micro_one(p) if isinstance(p, dict) else p for p in payload]
    if isinstance(payload, dict):
        return _micro_one(payload)
    return payload


def encode_event(stream: str, payload: Any, *, combined: bool, microseconds: bool) -> str:
    """The text frame carrying ``payload`` of ``stream`` on a connection with these settings."""
    if microseconds:
        payload = to_microseconds(payload)
    data = dumps(payload)
    if combined:
        return f'{{"stream":{dumps(stream)},"data":{data}}}'
    return data
