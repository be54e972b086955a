"""Pure tests of FakeBinance's stream wire protocol (rxbinance.testing._control): URL routing,
control messages and event framing, table-driven, no sockets."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import pytest

from rxbinance.testing._control import (
    Endpoint,
    Rejection,
    encode_event,
    handle_control,
    parse_request_path,
    to_microseconds,
)

_NAME = re.compile(r"[a-z0-9]+@[A-Za-z0-9_@:+]+|![A-Za-z0-9_@]+")


def classify(name: str) -> Literal["ok", "retired", "invalid"]:
    """A stand-in for Market.classify_stream good enough for routing tests."""
    if name in ("!ticker@arr", "!bookTicker"):
        return "retired"
    return "ok" if _NAME.fullmatch(name) else "invalid"


def route(target: str, max_streams: int = 1024) -> Endpoint | Rejection:
    return parse_request_path(target, classify=classify, max_streams=max_streams)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/ws", Endpoint("stream")),
        ("/ws/", Endpoint("stream")),
        ("/ws/btcusdt@trade", Endpoint("stream", streams=("btcusdt@trade",))),
        (
            "/ws/btcusdt@trade/ethusdt@depth",
            Endpoint("stream", streams=("btcusdt@trade", "ethusdt@depth")),
        ),
        ("/ws/btcusdt%40trade", Endpoint("stream", streams=("btcusdt@trade",))),
        ("/ws/a@trade//a@trade/", Endpoint("stream", streams=("a@trade",))),
        ("/stream", Endpoint("stream", combined=True)),
        ("/stream?streams=", Endpoint("stream", combined=True)),
        (
            "/stream?streams=btcusdt@trade/ethusdt@aggTrade",
            Endpoint("stream", combined=True, streams=("btcusdt@trade", "ethusdt@aggTrade")),
        ),
        (
            "/stream?streams=btcusdt%40trade%2Fethusdt%40aggTrade",
            Endpoint("stream", combined=True, streams=("btcusdt@trade", "ethusdt@aggTrade")),
        ),
        (
            "/stream?streams=btcusdt@trade&timeUnit=MICROSECOND",
            Endpoint("stream", combined=True, streams=("btcusdt@trade",), microseconds=True),
        ),
        ("/ws?timeUnit=microsecond", Endpoint("stream", microseconds=True)),
        (
            "/stream?streams=a@kline_1h@+08:00/b@kline_1d@%2B08:00",
            Endpoint("stream", combined=True, streams=("a@kline_1h@+08:00", "b@kline_1d@+08:00")),
        ),
        ("/ws?timeUnit=MILLISECOND", Endpoint("stream")),
        ("/ws/!ticker@arr", Endpoint("stream", streams=("!ticker@arr",))),
        ("/ws-api/v3", Endpoint("ws-api")),
        ("/ws-api/v3?returnRateLimits=false", Endpoint("ws-api", return_rate_limits=False)),
        ("/ws-api/v3?timeUnit=MICROSECOND", Endpoint("ws-api", microseconds=True)),
    ],
)
def test_accepted_paths(target: str, expected: Endpoint) -> None:
    assert route(target) == expected


@pytest.mark.parametrize(
    ("target", "status", "code"),
    [
        ("/", 404, -1000),
        ("/api/v3/ping", 404, -1000),
        ("/wss/btcusdt@trade", 404, -1000),
        ("/ws/BTCUSDT@trade", 400, -1100),
        ("/ws/btcusdt@trade/nonsense", 400, -1100),
        ("/stream?streams=btcusdt@trade/BAD", 400, -1100),
        ("/ws?timeUnit=NANOSECOND", 400, -1100),
        ("/ws/a@trade/b@trade/c@trade", 400, -1101),
    ],
)
def test_rejected_paths(target: str, status: int, code: int) -> None:
    rejection = route(target, max_streams=2)
    assert isinstance(rejection, Rejection)
    assert (rejection.status, rejection.code) == (status, code)
    assert json.loads(rejection.body) == {"code": code, "msg": rejection.msg}


def test_invalid_name_is_named_in_the_rejection() -> None:
    rejection = route("/ws/btcusdt@trade/BAD@x")
    assert isinstance(rejection, Rejection)
    assert "'BAD@x'" in rejection.msg


def control(
    message: Any, streams: tuple[str, ...] = (), combined: bool = False, max_streams: int = 1024
) -> tuple[dict[str, Any], Any]:
    text = message if isinstance(message, (str, bytes)) else json.dumps(message)
    out = handle_control(
        text, streams=streams, combined=combined, classify=classify, max_streams=max_streams
    )
    return out.reply, out


def test_subscribe_adds_only_new_streams_in_order() -> None:
    reply, out = control(
        {"method": "SUBSCRIBE", "params": ["b@trade", "a@trade", "b@trade", "c@trade"], "id": 1},
        streams=("a@trade",),
    )
    assert reply == {"result": None, "id": 1}
    assert out.subscribe == ("b@trade", "c@trade")
    assert out.unsubscribe == ()


def test_unsubscribe_removes_only_present_streams() -> None:
    reply, out = control(
        {"method": "UNSUBSCRIBE", "params": ["a@trade", "zz@trade"], "id": "x1"},
        streams=("a@trade", "b@trade"),
    )
    assert reply == {"result": None, "id": "x1"}
    assert out.unsubscribe == ("a@trade",)


def test_list_and_properties() -> None:
    assert control({"method": "LIST_SUBSCRIPTIONS", "id": 3}, streams=("a@trade", "b@trade"))[
        0
    ] == {"result": ["a@trade", "b@trade"], "id": 3}
    assert control({"method": "GET_PROPERTY", "params": ["combined"], "id": 2}, combined=True)[
        0
    ] == {"result": True, "id": 2}
    reply, out = control({"method": "SET_PROPERTY", "params": ["combined", True], "id": 5})
    assert reply == {"result": None, "id": 5}
    assert out.combined is True


@pytest.mark.parametrize(
    ("message", "code", "msg", "reply_id"),
    [
        ("{not json", 3, "Invalid JSON: expected value at line 1 column 2", None),
        (b"\xff\xfe", 3, "Invalid JSON: expected value at line 1 column 1", None),
        ("[1,2]", 3, "Invalid JSON: expected value at line 1 column 1", None),
        (
            {"method": "SUBSCRIBE", "params": []},
            2,
            "Invalid request: request ID must be an unsigned integer",
            None,
        ),
        (
            {"method": "SUBSCRIBE", "params": [], "id": True},
            2,
            "Invalid request: request ID must be an unsigned integer",
            None,
        ),
        (
            {"method": "SUBSCRIBE", "params": [], "id": 1.5},
            2,
            "Invalid request: request ID must be an unsigned integer",
            None,
        ),
        (
            {"method": "SUBSCRIBE", "params": [], "id": "x" * 37},
            2,
            "Invalid request: request ID must be an unsigned integer",
            None,
        ),
        (
            {"method": "SUBSCRIBE", "params": [], "id": 2**63},
            2,
            "Invalid request: request ID must be an unsigned integer",
            None,
        ),
        (
            '{"params":["a@trade"],"id":7}',
            2,
            "Invalid request: missing field `method` at line 1 column 29",
            7,
        ),
        ('{"params":[]}', 2, "Invalid request: missing field `method` at line 1 column 13", None),
        (
            '{"method":"SUBSCRIBEX","id":1}',
            2,
            "Invalid request: unknown variant `SUBSCRIBEX`, expected one of `SUBSCRIBE`, "
            "`UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY` "
            "at line 1 column 22",
            1,
        ),
        (
            {"method": "SUBSCRIBE", "id": 4},
            2,
            "Invalid request: missing or invalid field `params`",
            4,
        ),
        (
            {"method": "SUBSCRIBE", "params": "a@trade", "id": 4},
            2,
            "Invalid request: missing or invalid field `params`",
            4,
        ),
        (
            {"method": "SUBSCRIBE", "params": ["a@trade", "BAD"], "id": 4},
            2,
            "Invalid request: invalid stream",
            4,
        ),
        ({"method": "SUBSCRIBE", "params": [5], "id": 4}, 2, "Invalid request: invalid stream", 4),
        (
            {"method": "UNSUBSCRIBE", "params": ["BAD"], "id": 4},
            2,
            "Invalid request: invalid stream",
            4,
        ),
        (
            {"method": "LIST_SUBSCRIPTIONS", "params": ["x"], "id": 6},
            2,
            "Invalid request: too many parameters",
            6,
        ),
        (
            {"method": "SET_PROPERTY", "params": ["combined", True, 1], "id": 6},
            2,
            "Invalid request: too many parameters",
            6,
        ),
        (
            {"method": "GET_PROPERTY", "params": ["combined", 1], "id": 6},
            2,
            "Invalid request: too many parameters",
            6,
        ),
        (
            {"method": "SET_PROPERTY", "params": [], "id": 6},
            2,
            "Invalid request: property name must be a string",
            6,
        ),
        (
            {"method": "GET_PROPERTY", "params": [1], "id": 6},
            2,
            "Invalid request: property name must be a string",
            6,
        ),
        ({"method": "SET_PROPERTY", "params": ["other", True], "id": 6}, 0, "Unknown property", 6),
        ({"method": "GET_PROPERTY", "params": ["other"], "id": 6}, 0, "Unknown property", 6),
        (
            {"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 6},
            1,
            "Invalid value type: expected Boolean",
            6,
        ),
        (
            {"method": "SET_PROPERTY", "params": ["combined"], "id": 6},
            1,
            "Invalid value type: expected Boolean",
            6,
        ),
    ],
)
def test_errors(message: Any, code: int, msg: str, reply_id: Any) -> None:
    reply, out = control(message, streams=("a@trade",))
    assert reply == {"error": {"code": code, "msg": msg}, "id": reply_id}
    assert (out.subscribe, out.unsubscribe, out.combined) == ((), (), None)


@pytest.mark.parametrize(
    "request_id", [None, 0, -5, 2**63 - 1, "abc", "e2a85d9f-07a5-4f94-8d5f-789dc3deb097"]
)
def test_valid_ids_are_echoed(request_id: Any) -> None:
    reply, _ = control({"method": "LIST_SUBSCRIPTIONS", "id": request_id})
    assert reply == {"result": [], "id": request_id}


def test_subscribe_over_max_streams_changes_nothing() -> None:
    reply, out = control(
        {"method": "SUBSCRIBE", "params": ["a@trade", "b@trade", "c@trade"], "id": 1},
        streams=("a@trade",),
        max_streams=2,
    )
    assert reply["error"]["code"] == 2
    assert "too many streams" in reply["error"]["msg"]
    assert out.subscribe == ()
    # Exactly at the limit is fine.
    reply, out = control(
        {"method": "SUBSCRIBE", "params": ["a@trade", "b@trade"], "id": 1},
        streams=("a@trade",),
        max_streams=2,
    )
    assert reply == {"result": None, "id": 1}
    assert out.subscribe == ("b@trade",)


def test_retired_streams_can_be_subscribed() -> None:
    reply, out = control({"method": "SUBSCRIBE", "params": ["!ticker@arr"], "id": 1})
    assert reply == {"result": None, "id": 1}
    assert out.subscribe == ("!ticker@arr",)


def test_parsed_message_is_kept() -> None:
    _, out = control({"method": "LIST_SUBSCRIPTIONS", "id": 1})
    assert out.parsed == {"method": "LIST_SUBSCRIPTIONS", "id": 1}
    _, out = control("{not json")
    assert out.parsed == "{not json"


KLINE = {
    "e": "kline",
    "E": 1000,
    "s": "BNBBTC",
    "k": {"t": 60000, "T": 119999, "s": "BNBBTC", "i": "1m", "f": 100, "L": 200, "x": False},
}


def test_to_microseconds_converts_time_fields_only() -> None:
    trade = {"e": "trade", "E": 5, "s": "X", "t": 12345, "p": "1", "T": 6, "m": True}
    assert to_microseconds(trade) == {**trade, "E": 5000, "T": 6000}
    assert trade["E"] == 5  # input untouched
    kline = to_microseconds(KLINE)
    assert kline["E"] == 1_000_000
    assert (kline["k"]["t"], kline["k"]["T"]) == (60_000_000, 119_999_000)
    assert (kline["k"]["f"], kline["k"]["L"]) == (100, 200)
    ticker = {"e": "1hTicker", "E": 1, "O": 2, "C": 3, "F": 4, "L": 5, "n": 6}
    assert to_microseconds(ticker) == {**ticker, "E": 1000, "O": 2000, "C": 3000}
    assert to_microseconds([ticker]) == [to_microseconds(ticker)]
    depth = {"lastUpdateId": 160, "bids": [], "asks": []}
    assert to_microseconds(depth) == depth
    book = {"u": 400900217, "s": "BNBUSDT", "b": "1", "B": "2", "a": "3", "A": "4"}
    assert to_microseconds(book) == book


def test_encode_event() -> None:
    payload = {"e": "trade", "E": 7}
    assert (
        json.loads(encode_event("x@trade", payload, combined=False, microseconds=False)) == payload
    )
    assert json.loads(encode_event("x@trade", payload, combined=True, microseconds=True)) == {
        "stream": "x@trade",
        "data": {"e": "trade", "E": 7000},
    }
