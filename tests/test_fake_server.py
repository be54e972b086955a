"""FakeBinance's market-stream endpoint over real sockets, driven with plain websocket-client.

Paths and wrapping, control messages, timeUnit, retired and invalid streams, scripted
publishing, market fan-out for every stream kind (and an order book rebuilt from REST + diffs
that matches the market's true book), observability, and a clean stop.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
import websocket

from rxbinance.testing import ConnectionRecord, FakeBinance

TIMEOUT = 10.0  # generous: the machine may be loaded


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    # Paused market (moves on step()), no incoming rate limit: tests send many control frames.
    with FakeBinance(tick_interval=None, max_incoming_per_second=None) as server:
        yield server


@pytest.fixture
def connect(fake: FakeBinance) -> Iterator[Any]:
    """connect(path) -> websocket.WebSocket on fake.ws_url + path, closed after the test."""
    sockets: list[websocket.WebSocket] = []

    def _connect(path: str, **kwargs: Any) -> websocket.WebSocket:
        ws = websocket.create_connection(fake.ws_url + path, timeout=TIMEOUT, **kwargs)
        sockets.append(ws)
        return ws

    yield _connect
    for ws in sockets:
        ws.close(timeout=0.1)
        ws.shutdown()  # close() is a no-op once websocket-client answered a server close


def recv_json(ws: websocket.WebSocket) -> Any:
    return json.loads(ws.recv())


def request(ws: websocket.WebSocket, message: dict[str, Any]) -> Any:
    """Send a control message and return the reply (the next frame that carries an id)."""
    ws.send(json.dumps(message))
    while True:
        frame = recv_json(ws)
        if isinstance(frame, dict) and "id" in frame:
            return frame


def frames_until_sentinel(fake: FakeBinance, ws: websocket.WebSocket, stream: str) -> list[Any]:
    """Everything ``ws`` receives before a sentinel published on ``stream`` (one it is
    subscribed to). Frames on one connection are ordered, so this proves what did NOT arrive
    without waiting for a timeout."""
    assert fake.publish(stream, {"sentinel": True}) >= 1
    before: list[Any] = []
    while True:
        frame = recv_json(ws)
        data = frame.get("data", frame) if isinstance(frame, dict) else frame
        if data == {"sentinel": True}:
            return before
        before.append(frame)


# ------------------------------------------------------------------------------ paths


def test_raw_single_stream_is_unwrapped(fake: FakeBinance, connect: Any) -> None:
    ws = connect("/ws/btcusdt@trade")
    (record,) = fake.wait_for_connections(1, stream="btcusdt@trade")
    assert (record.kind, record.streams, record.combined) == ("stream", ("btcusdt@trade",), False)
    assert record.path == "/ws/btcusdt@trade"
    assert fake.publish("btcusdt@trade", {"e": "trade", "p": "1"}) == 1
    assert recv_json(ws) == {"e": "trade", "p": "1"}


def test_raw_several_streams_are_unwrapped(fake: FakeBinance, connect: Any) -> None:
    ws = connect("/ws/btcusdt@trade/ethusdt@aggTrade")
    (record,) = fake.wait_for_connections(1)
    assert record.streams == ("btcusdt@trade", "ethusdt@aggTrade")
    fake.publish("ethusdt@aggTrade", {"n": 1})
    fake.publish("btcusdt@trade", {"n": 2})
    assert [recv_json(ws), recv_json(ws)] == [{"n": 1}, {"n": 2}]


def test_combined_streams_are_wrapped(fake: FakeBinance, connect: Any) -> None:
    ws = connect("/stream?streams=btcusdt@trade/ethusdt@depth")
    (record,) = fake.wait_for_connections(1)
    assert (record.streams, record.combined) == (("btcusdt@trade", "ethusdt@depth"), True)
    fake.publish("ethusdt@depth", {"n": 1})
    assert recv_json(ws) == {"stream": "ethusdt@depth", "data": {"n": 1}}


@pytest.mark.parametrize(
    "path",
    [
        "/ws/btcusdt%40trade/ethusdt%40trade",
        "/ws/btcusdt%40trade%2Fethusdt%40trade",
        "/stream?streams=btcusdt%40trade%2Fethusdt%40trade",
    ],
)
def test_url_encoded_paths(fake: FakeBinance, path: str) -> None:
    ws = websocket.create_connection(fake.ws_url + path, timeout=TIMEOUT)
    try:
        (record,) = fake.wait_for_connections(1)
        assert record.streams == ("btcusdt@trade", "ethusdt@trade")
        assert record.path == path
    finally:
        ws.close()


def test_bare_ws_subscribes_live(fake: FakeBinance, connect: Any) -> None:
    ws = connect("/ws")
    (record,) = fake.wait_for_connections(1)
    assert record.streams == ()
    assert fake.publish("btcusdt@trade", {"n": 0}) == 0
    reply = request(
        ws, {"method": "SUBSCRIBE", "params": ["btcusdt@trade", "ethusdt@trade"], "id": 1}
    )
    assert reply == {"result": None, "id": 1}
    assert fake.publish("btcusdt@trade", {"n": 1}) == 1
    assert recv_json(ws) == {"n": 1}
    assert request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 2}) == {
        "result": ["btcusdt@trade", "ethusdt@trade"],
        "id": 2,
    }
    assert request(ws, {"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": "u3"}) == {
        "result": None,
        "id": "u3",
    }
    assert fake.publish("btcusdt@trade", {"n": 2}) == 0
    assert fake.connection(record.id).streams == ("ethusdt@trade",)


def test_bare_stream_is_combined_and_replies_are_never_wrapped(
    fake: FakeBinance, connect: Any
) -> None:
    ws = connect("/stream")
    fake.wait_for_connections(1)
    assert request(ws, {"method": "SUBSCRIBE", "params": ["bnbbtc@trade"], "id": 7}) == {
        "result": None,
        "id": 7,
    }
    assert request(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 8}) == {
        "result": True,
        "id": 8,
    }
    fake.publish("bnbbtc@trade", {"n": 1})
    assert recv_json(ws) == {"stream": "bnbbtc@trade", "data": {"n": 1}}


def test_set_property_combined_flips_wrapping(fake: FakeBinance, connect: Any) -> None:
    ws = connect("/ws/btcusdt@trade")
    (record,) = fake.wait_for_connections(1)
    fake.publish("btcusdt@trade", {"n": 1})
    assert recv_json(ws) == {"n": 1}
    assert request(ws, {"method": "SET_PROPERTY", "params": ["combined", True], "id": 1}) == {
        "result": None,
        "id": 1,
    }
    assert fake.connection(record.id).combined is True
    fake.publish("btcusdt@trade", {"n": 2})
    assert recv_json(ws) == {"stream": "btcusdt@trade", "data": {"n": 2}}
    request(ws, {"method": "SET_PROPERTY", "params": ["combined", False], "id": 2})
    fake.publish("btcusdt@trade", {"n": 3})
    assert recv_json(ws) == {"n": 3}


@pytest.mark.parametrize(
    ("sent", "reply"),
    [
        (
            "{not json",
            {
                "error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 2"},
                "id": None,
            },
        ),
        (
            '{"method":"PING","id":1}',
            {
                "error": {
                    "code": 2,
                    "msg": "Invalid request: unknown variant `PING`, expected one of `SUBSCRIBE`, "
                    "`UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY` "
                    "at line 1 column 16",
                },
                "id": 1,
            },
        ),
        (
            '{"params":["btcusdt@trade"],"id":2}',
            {
                "error": {
                    "code": 2,
                    "msg": "Invalid request: missing field `method` at line 1 column 35",
                },
                "id": 2,
            },
        ),
        (
            '{"method":"SUBSCRIBE","params":["BTCUSDT@trade"],"id":3}',
            {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 3},
        ),
        (
            '{"method":"SUBSCRIBE","params":[],"id":{"x":1}}',
            {
                "error": {
                    "code": 2,
                    "msg": "Invalid request: request ID must be an unsigned integer",
                },
                "id": None,
            },
        ),
        (
            '{"method":"SET_PROPERTY","params":["combined",1],"id":4}',
            {"error": {"code": 1, "msg": "Invalid value type: expected Boolean"}, "id": 4},
        ),
        (
            '{"method":"GET_PROPERTY","params":["speed"],"id":5}',
            {"error": {"code": 0, "msg": "Unknown property"}, "id": 5},
        ),
        (
            '{"method":"SET_PROPERTY","params":[true,true],"id":6}',
            {
                "error": {"code": 2, "msg": "Invalid request: property name must be a string"},
                "id": 6,
            },
        ),
        (
            '{"method":"LIST_SUBSCRIPTIONS","params":["x"],"id":7}',
            {"error": {"code": 2, "msg": "Invalid request: too many parameters"}, "id": 7},
        ),
    ],
)
def test_control_errors_over_the_wire(
    fake: FakeBinance, connect: Any, sent: str, reply: dict[str, Any]
) -> None:
    ws = connect("/stream?streams=ethusdt@trade")
    (record,) = fake.wait_for_connections(1)
    ws.send(sent)
    assert recv_json(ws) == reply  # nested error, never wrapped even on /stream
    # Nothing changed, and the connection is still usable.
    assert fake.connection(record.id).streams == ("ethusdt@trade",)
    assert request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 99}) == {
        "result": ["ethusdt@trade"],
        "id": 99,
    }


def test_invalid_subscribe_changes_nothing(fake: FakeBinance, connect: Any) -> None:
    ws = connect("/ws")
    fake.wait_for_connections(1)
    reply = request(
        ws, {"method": "SUBSCRIBE", "params": ["btcusdt@trade", "btcusdt@nope"], "id": 1}
    )
    assert reply == {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 1}
    assert request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 2})["result"] == []


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/ws/BTCUSDT@trade", 400, -1100),
        ("/stream?streams=btcusdt@trade/btcusdt@kline_2m", 400, -1100),
        ("/ws/btcusdt@trade?timeUnit=SECOND", 400, -1100),
        ("/wss/btcusdt@trade", 404, -1000),
        ("/api/v3/ping", 404, -1000),
    ],
)
def test_bad_handshakes_are_rejected_with_a_json_body(
    fake: FakeBinance, path: str, status: int, code: int
) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as caught:
        websocket.create_connection(fake.ws_url + path, timeout=TIMEOUT)
    assert caught.value.status_code == status
    assert json.loads(caught.value.resp_body)["code"] == code
    (attempt,) = fake.wait_for_attempts(1)
    assert (attempt.path, attempt.accepted, attempt.status) == (path, False, status)
    assert json.loads(attempt.body)["code"] == code
    assert fake.connections == ()


def test_retired_streams_connect_and_deliver_nothing(fake: FakeBinance, connect: Any) -> None:
    ws = connect("/stream?streams=!ticker@arr/!bookTicker/zzzusdt@trade")
    (record,) = fake.wait_for_connections(1)
    assert record.streams == ("!ticker@arr", "!bookTicker", "zzzusdt@trade")
    events = fake.step(15)  # 1.5 s of market time: !miniTicker@arr-like streams would emit
    assert all(name not in ("!ticker@arr", "!bookTicker") for name, _ in events)
    # zzzusdt is well-formed but not simulated: accepted, never emitted by the market either.
    assert frames_until_sentinel(fake, ws, "zzzusdt@trade") == []


def test_time_unit_microsecond(fake: FakeBinance, connect: Any) -> None:
    micro = connect("/ws/btcusdt@trade/btcusdt@kline_1s?timeUnit=MICROSECOND")
    milli = connect("/ws/btcusdt@trade/btcusdt@kline_1s")
    records = fake.wait_for_connections(2, stream="btcusdt@trade")
    assert [r.microseconds for r in records] == [True, False]
    events = fake.step(12)
    assert any(name == "btcusdt@trade" for name, _ in events)
    for name, payload in events:
        a, b = recv_json(micro), recv_json(milli)
        assert b == payload
        if name == "btcusdt@trade":
            assert a == {**payload, "E": payload["E"] * 1000, "T": payload["T"] * 1000}
        else:
            k = payload["k"]
            assert a == {
                **payload,
                "E": payload["E"] * 1000,
                "k": {**k, "t": k["t"] * 1000, "T": k["T"] * 1000},
            }
    # Published payloads go out exactly as given, never converted.
    fake.publish("btcusdt@trade", {"E": 5})
    assert recv_json(micro) == {"E": 5}


# ---------------------------------------------------------------------------- publish


def test_publish_str_and_bytes_are_sent_verbatim_and_never_wrapped(
    fake: FakeBinance, connect: Any
) -> None:
    combined = connect("/stream?streams=btcusdt@trade")
    raw = connect("/ws/btcusdt@trade")
    fake.wait_for_connections(2, stream="btcusdt@trade")
    assert fake.publish("btcusdt@trade", '{"broken":') == 2
    assert combined.recv() == '{"broken":'
    assert raw.recv() == '{"broken":'
    assert fake.publish("btcusdt@trade", b"\x00\x01binary") == 2
    for ws in (combined, raw):
        opcode, data = ws.recv_data()
        assert (opcode, data) == (websocket.ABNF.OPCODE_BINARY, b"\x00\x01binary")
    assert fake.publish("btcusdt@trade", [1, 2]) == 2
    assert recv_json(combined) == {"stream": "btcusdt@trade", "data": [1, 2]}
    assert recv_json(raw) == [1, 2]


def test_publish_counts_and_validates(fake: FakeBinance, connect: Any) -> None:
    connect("/ws/btcusdt@trade")
    connect("/ws/btcusdt@trade/ethusdt@trade")
    fake.wait_for_connections(2, stream="btcusdt@trade")
    assert fake.publish("btcusdt@trade", {}) == 2
    assert fake.publish("ethusdt@trade", {}) == 1
    assert fake.publish("bnbbtc@trade", {}) == 0
    with pytest.raises(ValueError, match="invalid stream"):
        fake.publish("BTCUSDT@trade", {})
    with pytest.raises(TypeError):
        fake.publish("btcusdt@trade", 42)


def test_publish_reaches_every_connection_the_test_waited_for(fake: FakeBinance) -> None:
    # No race between a connection opening (or subscribing) and publish: 15 rounds each way.
    for i in range(15):
        ws = websocket.create_connection(fake.ws_url + "/ws/btcusdt@trade", timeout=TIMEOUT)
        try:
            fake.wait_for_connections(1, stream="btcusdt@trade")
            assert fake.publish("btcusdt@trade", {"i": i}) == 1
            assert recv_json(ws) == {"i": i}
        finally:
            ws.close()
        fake.wait_for(lambda f: not f.open_connections)
    ws = websocket.create_connection(fake.ws_url + "/ws", timeout=TIMEOUT)
    try:
        for i in range(15):
            stream = f"sym{i}usdt@trade"
            ws.send(json.dumps({"method": "SUBSCRIBE", "params": [stream], "id": i}))
            fake.wait_for_connections(1, stream=stream)
            assert fake.publish(stream, {"i": i}) == 1
            assert recv_json(ws) == {"result": None, "id": i}
            assert recv_json(ws) == {"i": i}
    finally:
        ws.close()


# ----------------------------------------------------------------------- market fan-out

ALL_KINDS = [
    "btcusdt@trade",
    "btcusdt@aggTrade",
    "btcusdt@kline_1s",
    "btcusdt@kline_1m",
    "btcusdt@kline_1h@+08:00",
    "btcusdt@miniTicker",
    "!miniTicker@arr",
    "btcusdt@ticker",
    "btcusdt@ticker_1h",
    "!ticker_4h@arr",
    "btcusdt@bookTicker",
    "btcusdt@avgPrice",
    "btcusdt@depth5",
    "btcusdt@depth10@100ms",
    "btcusdt@depth",
    "btcusdt@depth@100ms",
]

SHAPES: dict[str, set[str]] = {
    "trade": {"e", "E", "s", "t", "p", "q", "T", "m", "M"},
    "aggTrade": {"e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "M"},
    "kline": {"e", "E", "s", "k"},
    "24hrMiniTicker": {"e", "E", "s", "c", "o", "h", "l", "v", "q"},
    "24hrTicker": set("eEspPwxcQbBaAohlvqOCFLn"),
    "1hTicker": set("eEspPohlcwvqOCFLn"),
    "4hTicker": set("eEspPohlcwvqOCFLn"),
    "avgPrice": {"e", "E", "s", "i", "w", "T"},
    "depthUpdate": {"e", "E", "s", "U", "u", "b", "a"},
}
KLINE_KEYS = set("tTsifLochlvnxqVQB")


def check_shape(stream: str, data: Any) -> None:
    if stream.endswith("@arr"):
        assert isinstance(data, list)
        assert data
        for item in data:
            assert set(item) == SHAPES[item["e"]]
    elif stream.endswith("@bookTicker"):
        assert set(data) == {"u", "s", "b", "B", "a", "A"}
    elif "@depth" in stream and stream.split("@")[1] != "depth":
        assert set(data) == {"lastUpdateId", "bids", "asks"}
        levels = int(stream.split("@")[1][len("depth") :])
        assert len(data["bids"]) == len(data["asks"]) == levels
    else:
        assert set(data) == SHAPES[data["e"]]
        if data["e"] == "kline":
            assert set(data["k"]) == KLINE_KEYS
            assert data["k"]["i"] == stream.split("_")[1].split("@")[0]


def test_market_fan_out_for_every_stream_kind(fake: FakeBinance, connect: Any) -> None:
    combined = connect("/stream?streams=" + "/".join(ALL_KINDS))
    raw = connect("/ws/" + "/".join(ALL_KINDS))
    fake.wait_for_connections(2)
    events = fake.step(25)  # 2.5 s of market time: every cadence fires at least once
    assert {name for name, _ in events} == set(ALL_KINDS)
    for name, payload in events:
        # The wire carries exactly what the market emitted, in order, wrapped per connection.
        assert recv_json(combined) == {"stream": name, "data": payload}
        assert recv_json(raw) == payload
        check_shape(name, payload)
    records = {r.path[:3]: r for r in fake.open_connections}
    assert records["/st"].frames_sent == records["/ws"].frames_sent == len(events)


def test_only_subscribed_streams_are_computed(fake: FakeBinance, connect: Any) -> None:
    assert fake.step(5) == []  # nobody listens: the market emits nothing
    ws = connect("/ws/ethusdt@depth@100ms")
    fake.wait_for_connections(1)
    events = fake.step(5)
    assert events
    assert {name for name, _ in events} == {"ethusdt@depth@100ms"}
    assert [recv_json(ws) for _ in events] == [payload for _, payload in events]


def book_dict(levels: Any) -> dict[Decimal, Decimal]:
    return {Decimal(p): Decimal(q) for p, q in levels}


def test_order_book_over_the_wire_matches_the_true_book(fake: FakeBinance, connect: Any) -> None:
    ws = connect("/ws/bnbbtc@depth@100ms")
    fake.wait_for_connections(1)
    fake.step(5)  # events buffered by the client before the snapshot, as the docs require
    snapshot = requests.get(
        fake.rest_url + "/api/v3/depth", params={"symbol": "BNBBTC", "limit": 5000}, timeout=TIMEOUT
    ).json()
    fake.step(20)
    bids, asks = book_dict(snapshot["bids"]), book_dict(snapshot["asks"])
    local_id = snapshot["lastUpdateId"]
    previous_u = None
    applied = 0
    # 25 ticks, an event per tick with changes: read until the book reaches the market's id.
    target = fake.with_market(lambda m: m.last_update_id("BNBBTC"))
    while local_id < target:
        event = recv_json(ws)
        if previous_u is not None:
            assert event["U"] == previous_u + 1  # continuity over the wire
        previous_u = event["u"]
        if event["u"] <= local_id:
            continue
        assert event["U"] <= local_id + 1  # no gap
        for side, changes in ((bids, event["b"]), (asks, event["a"])):
            for price, qty in changes:
                if Decimal(qty) == 0:
                    side.pop(Decimal(price), None)
                else:
                    side[Decimal(price)] = Decimal(qty)
        local_id = event["u"]
        applied += 1
    assert applied > 0
    truth = fake.true_book("BNBBTC")
    assert truth.last_update_id == local_id
    assert bids == dict(truth.bids)
    assert asks == dict(truth.asks)


def test_fan_out_while_running() -> None:
    with FakeBinance(tick_interval=0.005) as running:
        ws = websocket.create_connection(running.ws_url + "/ws/btcusdt@aggTrade", timeout=TIMEOUT)
        try:
            first = recv_json(ws)
            ids = [first["a"]]
            while len(ids) < 20:
                ids.append(recv_json(ws)["a"])
            assert ids == list(range(ids[0], ids[0] + 20))  # no loss, no reordering
            assert running.step(3) is not None  # step() also works while running
        finally:
            ws.close()


# ------------------------------------------------------------------------ observability


def test_records_of_a_connection_lifecycle(fake: FakeBinance) -> None:
    ws = websocket.create_connection(fake.ws_url + "/ws", timeout=TIMEOUT)
    (record,) = fake.wait_for_connections(1)
    assert record.is_open
    request(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1})
    ws.send("{oops")
    recv_json(ws)
    fake.publish("btcusdt@trade", {"x": 1})
    recv_json(ws)
    ws.close(status=1000)
    fake.wait_for(lambda f: not f.connection(record.id).is_open)
    closed = fake.connection(record.id)
    assert closed.close_code == 1000
    assert closed.close_cause == "client"
    assert closed.closed_at is not None
    assert closed.closed_at >= closed.opened_at
    assert closed.control_messages == (
        {"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1},
        "{oops",
    )
    assert closed.frames_sent == 3  # two replies and one published frame
    assert closed.streams == ("btcusdt@trade",)
    (attempt,) = fake.attempts
    assert (attempt.accepted, attempt.status, attempt.connection_id) == (True, 101, record.id)
    assert fake.open_connections == ()
    assert isinstance(fake.connections[0], ConnectionRecord)


def test_wait_for_times_out_with_a_description(fake: FakeBinance, connect: Any) -> None:
    connect("/ws/btcusdt@trade")
    fake.wait_for_connections(1)
    with pytest.raises(TimeoutError, match=r"(?s)2 open stream connection\(s\).*btcusdt@trade"):
        fake.wait_for_connections(2, timeout=0.2)

    def never(f: FakeBinance) -> bool:
        return False

    with pytest.raises(TimeoutError, match="never"):
        fake.wait_for(never, timeout=0.05)


def test_market_access(fake: FakeBinance, connect: Any) -> None:
    connect("/ws/ethusdt@trade")
    fake.wait_for_connections(1)
    for _ in range(100):
        if fake.trades("ETHUSDT"):
            break
        fake.step()
    trades = fake.trades("ETHUSDT")
    assert trades
    assert trades[-1]["e"] == "trade"
    assert fake.with_market(lambda m: m.symbols) == ("BTCUSDT", "ETHUSDT", "BNBBTC")
    with fake.lock:
        uid = fake.market.last_update_id("ETHUSDT")
    assert fake.true_book("ETHUSDT").last_update_id == uid
    with fake.lock, pytest.raises(RuntimeError, match="deadlock"):
        fake.step()


# --------------------------------------------------------------------------- lifecycle


def fake_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("FakeBinance")]


def test_clean_stop_leaves_no_thread() -> None:
    assert fake_threads() == []
    server = FakeBinance(tick_interval=0.01, close_timeout=0.5)
    with pytest.raises(RuntimeError, match="start"):
        _ = server.ws_url
    server.start()
    server.start()  # idempotent
    names = {t.name for t in fake_threads()}
    assert {"FakeBinance-loop", "FakeBinance-rest"} <= names
    assert all(t.daemon for t in fake_threads())
    # Open connections of every kind, including a keep-alive HTTP session and a client that
    # never reads: stop() must still close everything and join.
    ws = websocket.create_connection(server.ws_url + "/ws/btcusdt@trade", timeout=TIMEOUT)
    api = websocket.create_connection(server.ws_api_url, timeout=TIMEOUT)
    session = requests.Session()
    assert session.get(server.rest_url + "/api/v3/ping", timeout=TIMEOUT).json() == {}
    server.wait_for_connections(2, kind=None)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < TIMEOUT
    assert fake_threads() == []
    assert [r.close_cause for r in server.connections] == ["stop", "stop"]
    assert all(r.close_code == 1001 for r in server.connections)
    server.stop()  # idempotent
    with pytest.raises(RuntimeError, match="stopped"):
        server.start()
    session.close()
    ws.close()
    api.close()


# ------------------------------------------------------------------------- public surface


def test_exported_names() -> None:
    import rxbinance.testing

    assert rxbinance.testing.__all__ == [
        "BookState",
        "ChaosReport",
        "CloseCause",
        "ConnectionAttempt",
        "ConnectionKind",
        "ConnectionRecord",
        "FakeBinance",
        "Market",
        "MarketError",
        "RestRequest",
        "ScriptedSocket",
        "ScriptedTransport",
        "SequenceTally",
        "run_chaos",
    ]
    for name in rxbinance.testing.__all__:
        assert getattr(rxbinance.testing, name) is not None


def test_package_docstring_example_runs() -> None:
    import textwrap

    import rxbinance.testing

    doc = rxbinance.testing.__doc__
    assert doc is not None
    block = doc.split("own code)::\n", 1)[1].split("\nOther faults:", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(textwrap.dedent(block), "rxbinance.testing example", "exec"), namespace)
    with FakeBinance(tick_interval=None) as server:
        namespace["test_my_code"](server)
