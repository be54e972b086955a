"""What FakeBinance enforces for pooled connections (issue 13, part 2), over real sockets.

Per connection, per market: incoming messages per second (spot 5, USD-M 10; close 1008),
streams per connection (spot 1024, USD-M 200) at the handshake and on SUBSCRIBE, with the
nested error replies; a bad name among good ones refuses the whole SUBSCRIBE. Per client IP:
connection attempts within a sliding window (429 at the handshake). Statistics: the control
log of each connection (time, method, params, id), ``fake.connection_attempts`` and
``fake.subscriptions()``.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any, Literal

import pytest
import websocket

from rxbinance.errors import InvalidInputError
from rxbinance.testing import FakeBinance
from rxbinance.testing._control import handle_control
from rxbinance.testing._records import ControlLogEntry
from tests.test_fake_faults import TIMEOUT, Connect, closed, make_connect, recv_close

# (market, path of a bare connection to SUBSCRIBE on, a stream name valid there)
SPOT = ("spot", "/ws", "btcusdt@trade")
USDM_MARKET = ("usdm", "/market/ws", "btcusdt@aggTrade")
USDM_PUBLIC = ("usdm", "/public/ws", "btcusdt@bookTicker")


def fake_with(**kwargs: Any) -> FakeBinance:
    """A paused fake that does not wait long for clients at stop()."""
    settings: dict[str, Any] = {"tick_interval": None, "close_timeout": 0.3}
    settings.update(kwargs)
    return FakeBinance(**settings)


def send(ws: websocket.WebSocket, method: str, request_id: Any, params: Any = None) -> None:
    message: dict[str, Any] = {"method": method, "id": request_id}
    if params is not None:
        message["params"] = params
    ws.send(json.dumps(message))


def names(n: int, suffix: str, start: int = 0) -> list[str]:
    """``n`` distinct well-formed stream names (symbols the market does not simulate: Binance
    accepts them and never delivers, which is all a limit test needs)."""
    return [f"sym{i:05d}usdt@{suffix}" for i in range(start, start + n)]


# ----------------------------------------------------------------- incoming messages / s


@pytest.mark.parametrize(("target", "limit"), [(SPOT, 5), (USDM_MARKET, 10), (USDM_PUBLIC, 10)])
def test_the_default_limit_of_each_market_is_answered_then_one_more_closes_1008(
    sockets: list[websocket.WebSocket], target: tuple[str, str, str], limit: int
) -> None:
    _market, path, stream = target
    with fake_with() as fake:
        connect = make_connect(fake, sockets)
        # `limit` messages, however fast, are within the limit: every one is answered.
        ws = connect(path)
        (record,) = fake.wait_for_connections(1)
        for i in range(limit):
            send(ws, "SUBSCRIBE", i, [stream])
        assert [json.loads(ws.recv()) for _ in range(limit)] == [
            {"result": None, "id": i} for i in range(limit)
        ]
        assert fake.connection(record.id).is_open

        # One more within the same second (a burst on loopback) closes the connection.
        ws2 = connect(path)
        fake.wait_for_connections(2)
        (record2,) = [c for c in fake.open_connections if c.id != record.id]
        for i in range(limit + 1):
            send(ws2, "LIST_SUBSCRIPTIONS", i)
        assert recv_close(ws2) == (1008, "Too many requests")
        done = closed(fake, record2.id)
        assert (done.close_code, done.close_cause) == (1008, "rate_limit")
        assert fake.connection(record.id).is_open  # the limit is per connection


def test_the_usdm_limit_can_be_set_on_its_own(sockets: list[websocket.WebSocket]) -> None:
    with fake_with(usdm_max_incoming_per_second=3) as fake:
        connect = make_connect(fake, sockets)
        spot = connect("/ws")
        usdm = connect("/market/ws")
        records = fake.wait_for_connections(2)
        for i in range(5):  # spot keeps its 5
            send(spot, "LIST_SUBSCRIPTIONS", i)
        assert [json.loads(spot.recv())["id"] for _ in range(5)] == [0, 1, 2, 3, 4]
        for i in range(4):
            send(usdm, "LIST_SUBSCRIPTIONS", i)
        assert recv_close(usdm) == (1008, "Too many requests")
        assert closed(fake, records[1].id).close_cause == "rate_limit"
        assert fake.connection(records[0].id).is_open


def test_the_usdm_limit_follows_a_disabled_spot_limit(sockets: list[websocket.WebSocket]) -> None:
    # Backwards compatible: callers that disable the spot limit (fast pings) disable USD-M's.
    with fake_with(max_incoming_per_second=None) as fake:
        ws = make_connect(fake, sockets)("/market/ws")
        (record,) = fake.wait_for_connections(1)
        for i in range(25):
            send(ws, "LIST_SUBSCRIPTIONS", i)
        assert [json.loads(ws.recv())["id"] for _ in range(25)] == list(range(25))
        assert fake.connection(record.id).is_open


def test_the_usdm_limit_defaults_to_twice_the_spot_one(
    sockets: list[websocket.WebSocket],
) -> None:
    with fake_with(max_incoming_per_second=2, ping_interval=None) as fake:
        connect = make_connect(fake, sockets)
        ws = connect("/public/ws")
        (record,) = fake.wait_for_connections(1)
        for i in range(4):  # twice the spot limit: all answered
            send(ws, "LIST_SUBSCRIPTIONS", i)
        assert [json.loads(ws.recv())["id"] for _ in range(4)] == [0, 1, 2, 3]
        assert fake.connection(record.id).is_open
        ws2 = connect("/public/ws")
        (record2,) = [c for c in fake.wait_for_connections(2) if c.id != record.id]
        for i in range(5):  # one more than that: closed
            send(ws2, "LIST_SUBSCRIPTIONS", i)
        assert recv_close(ws2) == (1008, "Too many requests")
        assert closed(fake, record2.id).close_cause == "rate_limit"


# ---------------------------------------------------------------- streams per connection


@pytest.mark.parametrize(
    ("target", "limit", "suffix"), [(SPOT, 1024, "trade"), (USDM_MARKET, 200, "aggTrade")]
)
def test_one_stream_over_the_limit_is_refused_with_the_nested_error(
    sockets: list[websocket.WebSocket], target: tuple[str, str, str], limit: int, suffix: str
) -> None:
    _market, path, _stream = target
    with fake_with() as fake:
        ws = make_connect(fake, sockets)(path)
        (record,) = fake.wait_for_connections(1)
        full = names(limit, suffix)
        send(ws, "SUBSCRIBE", 1, full)  # one batched message: the limit, exactly
        assert json.loads(ws.recv()) == {"result": None, "id": 1}
        send(ws, "SUBSCRIBE", 2, names(1, suffix, start=limit))
        assert json.loads(ws.recv()) == {
            "error": {
                "code": 2,
                "msg": f"Invalid request: too many streams (max {limit} per connection)",
            },
            "id": 2,
        }
        assert fake.connection(record.id).streams == tuple(full)
        assert fake.subscriptions() == {record.id: tuple(full)}
        # Re-subscribing what it has is not "more streams"; making room lets one in.
        send(ws, "SUBSCRIBE", 3, full[:10])
        send(ws, "UNSUBSCRIBE", 4, full[:1])
        send(ws, "SUBSCRIBE", 5, names(1, suffix, start=limit))
        assert [json.loads(ws.recv()) for _ in range(3)] == [
            {"result": None, "id": 3},
            {"result": None, "id": 4},
            {"result": None, "id": 5},
        ]
        assert len(fake.connection(record.id).streams) == limit


# Spot's 1025 names do not fit the 8 KiB request line the server reads (414 before any
# routing); tests/test_fake_faults.py checks the spot handshake with a small max_streams.
@pytest.mark.parametrize("prefix", ["/market/stream?streams=", "/market/ws/"])
def test_the_201st_usdm_stream_in_the_url_is_refused_at_the_handshake(
    sockets: list[websocket.WebSocket], prefix: str
) -> None:
    limit, suffix = 200, "aggTrade"
    with fake_with() as fake:
        connect = make_connect(fake, sockets)
        with pytest.raises(websocket.WebSocketBadStatusException) as caught:
            connect(prefix + "/".join(names(limit + 1, suffix)))
        assert caught.value.status_code == 400
        assert json.loads(caught.value.resp_body) == {
            "code": -1101,
            "msg": f"Too many parameters; expected '{limit}' and received '{limit + 1}'.",
        }
        connect(prefix + "/".join(names(limit, suffix)))
        (record,) = fake.wait_for_connections(1)
        assert len(record.streams) == limit


def test_usdm_max_streams_is_configurable(sockets: list[websocket.WebSocket]) -> None:
    with fake_with(usdm_max_streams=2, max_streams=3) as fake:
        connect = make_connect(fake, sockets)
        spot, usdm = connect("/ws"), connect("/public/ws")
        fake.wait_for_connections(2)
        send(spot, "SUBSCRIBE", 1, names(3, "bookTicker"))
        send(usdm, "SUBSCRIBE", 1, names(3, "bookTicker"))
        assert json.loads(spot.recv()) == {"result": None, "id": 1}
        assert json.loads(usdm.recv())["error"] == {
            "code": 2,
            "msg": "Invalid request: too many streams (max 2 per connection)",
        }


# ----------------------------------------------------------------------- bad stream names


@pytest.mark.parametrize(
    ("target", "bad"),
    [(SPOT, "BTCUSDT@trade"), (USDM_MARKET, "btcusdt@nosuchstream"), (USDM_PUBLIC, "@depth")],
)
def test_a_bad_name_among_good_ones_refuses_the_whole_subscribe(
    sockets: list[websocket.WebSocket], target: tuple[str, str, str], bad: str
) -> None:
    _market, path, good = target
    with fake_with() as fake:
        ws = make_connect(fake, sockets)(path)
        (record,) = fake.wait_for_connections(1)
        send(ws, "SUBSCRIBE", 7, [good, bad, "ethusdt" + good[len("btcusdt") :]])
        assert json.loads(ws.recv()) == {
            "error": {"code": 2, "msg": "Invalid request: invalid stream"},
            "id": 7,
        }
        send(ws, "LIST_SUBSCRIPTIONS", 8)
        assert json.loads(ws.recv()) == {"result": [], "id": 8}
        assert fake.publish(good, {"not": "subscribed"}) == 0
        # The same names without the bad one go through.
        send(ws, "SUBSCRIBE", 9, [good])
        assert json.loads(ws.recv()) == {"result": None, "id": 9}
        assert fake.subscriptions() == {record.id: (good,)}
        assert [entry.id for entry in fake.connection(record.id).control_log] == [7, 8, 9]


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        (
            '{"method":"SUBSCRIBE","params":"btcusdt@trade","id":1}',
            {
                "error": {"code": 2, "msg": "Invalid request: missing or invalid field `params`"},
                "id": 1,
            },
        ),
        (
            '{"method":"LIST_SUBSCRIPTIONS","params":["x"],"id":"a-1"}',
            {
                "error": {"code": 2, "msg": "Invalid request: too many parameters"},
                "id": "a-1",
            },
        ),
        (
            '{"method":"SUBSCRIBE","params":["btcusdt@trade"]}',
            {
                "error": {
                    "code": 2,
                    "msg": "Invalid request: request ID must be an unsigned integer",
                },
                "id": None,
            },
        ),
        (
            "[1,2]",
            {
                "error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"},
                "id": None,
            },
        ),
    ],
)
def test_bad_requests_get_nested_errors_on_usdm_too(
    sockets: list[websocket.WebSocket], text: str, reply: dict[str, Any]
) -> None:
    with fake_with() as fake:
        ws = make_connect(fake, sockets)("/market/stream")
        fake.wait_for_connections(1)
        ws.send(text)
        assert json.loads(ws.recv()) == reply  # never wrapped, even on /stream


# ------------------------------------------------------------------- connection attempts


def connect_from(fake: FakeBinance, path: str, ip: str) -> websocket.WebSocket:
    """A websocket-client connection whose TCP socket comes from ``ip`` (127.0.0.x: every
    address of the loopback network reaches the fake on Linux)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((ip, 0))
    sock.settimeout(TIMEOUT)
    sock.connect(("127.0.0.1", int(fake.ws_url.rsplit(":", 1)[1])))
    return websocket.create_connection(fake.ws_url + path, timeout=TIMEOUT, socket=sock)


def test_connection_attempts_over_the_limit_get_429_until_the_window_passes(
    sockets: list[websocket.WebSocket],
) -> None:
    window = 1.0
    with fake_with(max_connection_attempts=(4, window)) as fake:
        connect: Connect = make_connect(fake, sockets)
        # Four attempts, on every route, accepted or not, share one budget...
        connect("/ws/btcusdt@trade")
        connect("/market/stream?streams=btcusdt@aggTrade")
        with pytest.raises(websocket.WebSocketBadStatusException) as bad_name:
            connect("/ws/BTCUSDT@trade")
        assert bad_name.value.status_code == 400
        connect("/public/ws/btcusdt@bookTicker")
        # ...the WS API is not a market-stream connection and does not count...
        connect("/ws-api/v3")
        # ...and the fifth within the window is refused at the handshake.
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            connect("/ws/ethusdt@trade")
        refused_at = time.monotonic()
        assert refused.value.status_code == 429
        assert json.loads(refused.value.resp_body) == {
            "code": -1003,
            "msg": "Too many requests; current limit is 4 connections per 1 second.",
        }
        assert [(a.status, a.accepted) for a in fake.attempts] == [
            (101, True),
            (101, True),
            (400, False),
            (101, True),
            (101, True),
            (429, False),
        ]
        times = fake.connection_attempts
        assert len(times) == 5  # the four, and the refused fifth
        assert times == tuple(sorted(times))
        answered = [a.time for a in fake.attempts if a.path != "/ws-api/v3"]
        assert all(t <= a for t, a in zip(times, answered, strict=True))  # counted, then answered
        # The open connections are not touched by the refusal.
        assert len(fake.open_connections) == 4

        # No event to wait for: the limit is about time passing. Wait out the window from
        # the refused attempt (refused attempts count too), then the IP is welcome again.
        time.sleep(max(0.0, refused_at + window - time.monotonic()) + 0.05)
        connect("/ws/ethusdt@trade")
        assert fake.wait_for_attempts(7)[-1].status == 101
        assert len(fake.connection_attempts) == 6


def test_the_connection_attempt_limit_is_per_ip(sockets: list[websocket.WebSocket]) -> None:
    with fake_with(max_connection_attempts=(2, 60.0)) as fake:
        for _ in range(2):
            sockets.append(connect_from(fake, "/ws", "127.0.0.1"))
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            connect_from(fake, "/ws", "127.0.0.1")
        assert refused.value.status_code == 429
        # Another address has its own budget.
        for _ in range(2):
            sockets.append(connect_from(fake, "/ws", "127.0.0.2"))
        with pytest.raises(websocket.WebSocketBadStatusException):
            connect_from(fake, "/ws", "127.0.0.2")
        assert [a.status for a in fake.attempts] == [101, 101, 429, 101, 101, 429]
        assert len(fake.connection_attempts) == 6


def test_the_default_attempt_limit_is_binance_s_300_per_5_minutes(
    sockets: list[websocket.WebSocket],
) -> None:
    with fake_with() as fake:
        connect = make_connect(fake, sockets)
        for _ in range(300):
            connect("/ws").close()
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            connect("/ws")
        assert refused.value.status_code == 429
        assert json.loads(refused.value.resp_body)["msg"] == (
            "Too many requests; current limit is 300 connections per 5 minutes."
        )
    with fake_with(max_connection_attempts=None) as fake:
        connect = make_connect(fake, sockets)
        for _ in range(301):
            connect("/ws").close()
        assert len(fake.connection_attempts) == 301  # still counted, never refused
        assert all(a.accepted for a in fake.attempts)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"max_connection_attempts": (0, 1.0)}, "max_connection_attempts=(0, 1.0)"),
        ({"max_connection_attempts": (5, 0)}, "max_connection_attempts=(5, 0)"),
        ({"max_connection_attempts": 300}, "max_connection_attempts=300"),
        ({"max_connection_attempts": (5.0, 1.0)}, "max_connection_attempts=(5.0, 1.0)"),
        ({"max_streams": 0}, "max_streams=0"),
        ({"usdm_max_streams": True}, "usdm_max_streams=True"),
        ({"usdm_max_incoming_per_second": 0}, "usdm_max_incoming_per_second=0"),
    ],
)
def test_bad_limits_are_refused(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        FakeBinance(tick_interval=None, **kwargs)
    assert named in str(caught.value)
    assert "allowed" in str(caught.value)


def test_fast_pings_need_a_matching_usdm_limit() -> None:
    with pytest.raises(ValueError, match="usdm_max_incoming_per_second=5: the client's pongs"):
        FakeBinance(
            tick_interval=None,
            ping_interval=0.2,
            max_incoming_per_second=None,
            usdm_max_incoming_per_second=5,
        )
    # The derived USD-M limit follows a spot limit raised for fast pings.
    FakeBinance(tick_interval=None, ping_interval=0.1, max_incoming_per_second=11)


# ---------------------------------------------------------------------- control statistics


@pytest.mark.parametrize(
    ("text", "method"),
    [
        ('{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}', "SUBSCRIBE"),
        ('{"method":"SUBSCRIBE","params":["BAD"],"id":1}', "SUBSCRIBE"),  # refused, logged
        ('{"method":"UNSUBSCRIBE","params":[],"id":1}', "UNSUBSCRIBE"),
        ('{"method":"LIST_SUBSCRIPTIONS","id":1}', "LIST_SUBSCRIPTIONS"),
        ('{"method":"SET_PROPERTY","params":["combined",1],"id":1}', "SET_PROPERTY"),
        ('{"method":"GET_PROPERTY","params":["nope"],"id":1}', "GET_PROPERTY"),
        ('{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":true}', "SUBSCRIBE"),
        ('{"method":"subscribe","params":[],"id":1}', None),
        ('{"method":["SUBSCRIBE"],"id":1}', None),
        ('{"params":[],"id":1}', None),
        ("[]", None),
        ("{not json", None),
    ],
)
def test_which_messages_name_a_control_method(text: str, method: str | None) -> None:
    outcome = handle_control(text, streams=(), combined=False, classify=_classify, max_streams=1024)
    assert outcome.method == method


def _classify(name: str) -> Literal["ok", "retired", "invalid"]:
    return "ok" if name.islower() else "invalid"


def test_control_log_has_times_methods_params_and_ids(sockets: list[websocket.WebSocket]) -> None:
    with fake_with(max_incoming_per_second=None) as fake:  # seven messages in a burst
        ws = make_connect(fake, sockets)("/ws")
        (record,) = fake.wait_for_connections(1)
        before = time.time()
        send(ws, "SUBSCRIBE", 1, ["btcusdt@trade", "ethusdt@trade"])
        send(ws, "UNSUBSCRIBE", "u-2", ["btcusdt@trade"])
        send(ws, "LIST_SUBSCRIPTIONS", 3)
        assert [json.loads(ws.recv())["id"] for _ in range(3)] == [1, "u-2", 3]
        ws.send("{not json")  # in control_messages, not in the log: it names no method
        send(ws, "PING", 4)  # an unknown method: likewise
        assert [json.loads(ws.recv())["id"] for _ in range(2)] == [None, 4]
        send(ws, "SET_PROPERTY", 5, ["combined", True])
        send(ws, "GET_PROPERTY", 6, ["combined"])
        assert [json.loads(ws.recv()) for _ in range(2)] == [
            {"result": None, "id": 5},
            {"result": True, "id": 6},
        ]
        after = time.time()

        done = fake.connection(record.id)
        assert [(e.method, e.params, e.id) for e in done.control_log] == [
            ("SUBSCRIBE", ["btcusdt@trade", "ethusdt@trade"], 1),
            ("UNSUBSCRIBE", ["btcusdt@trade"], "u-2"),
            ("LIST_SUBSCRIPTIONS", None, 3),
            ("SET_PROPERTY", ["combined", True], 5),
            ("GET_PROPERTY", ["combined"], 6),
        ]
        times = [e.time for e in done.control_log]
        assert times == sorted(times)
        assert record.opened_at <= before <= times[0]
        assert times[-1] <= after
        assert len(done.control_messages) == 7  # kept as before: every message
        # Unpacks as the plain (time, method, params, id) tuple.
        sent_at, method, params, request_id = done.control_log[0]
        assert (sent_at, method, params, request_id) == (times[0], "SUBSCRIBE", params, 1)
        assert isinstance(done.control_log[0], ControlLogEntry)
        assert fake.subscriptions() == {record.id: ("ethusdt@trade",)}


def test_control_log_shows_pacing_and_batching(sockets: list[websocket.WebSocket]) -> None:
    # What a pool test asserts: at most N control messages in any second, M streams each.
    with fake_with() as fake:
        ws = make_connect(fake, sockets)("/stream")
        (record,) = fake.wait_for_connections(1)
        batches = [names(300, "trade", start=300 * i) for i in range(3)]
        for i, batch in enumerate(batches):
            send(ws, "SUBSCRIBE", i, batch)
        assert [json.loads(ws.recv()) for _ in batches] == [
            {"result": None, "id": i} for i in range(3)
        ]
        log = fake.connection(record.id).control_log
        assert [len(e.params) for e in log] == [300, 300, 300]
        in_any_second = max(
            sum(1 for other in log if entry.time <= other.time < entry.time + 1.0) for entry in log
        )
        assert in_any_second == 3
        assert len(fake.subscriptions()[record.id]) == 900


def test_subscriptions_lists_open_market_stream_connections_only(
    sockets: list[websocket.WebSocket],
) -> None:
    with fake_with() as fake:
        connect = make_connect(fake, sockets)
        spot = connect("/stream?streams=btcusdt@trade/ethusdt@trade")
        connect("/market/ws/btcusdt@aggTrade")
        connect("/ws-api/v3")
        first, second = fake.wait_for_connections(2)
        fake.wait_for_connections(1, kind="ws-api")
        assert fake.subscriptions() == {
            first.id: ("btcusdt@trade", "ethusdt@trade"),
            second.id: ("btcusdt@aggTrade",),
        }
        spot.close()
        closed(fake, first.id)
        assert fake.subscriptions() == {second.id: ("btcusdt@aggTrade",)}
