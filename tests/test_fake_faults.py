"""FakeBinance's connection rules and fault injection, over real sockets with websocket-client.

Rules: ping/pong deadline, incoming rate limit (1008), max streams, max connection age, slow
consumers. Faults: drop (abrupt and with a close frame), refuse, stall, malformed frames,
serverShutdown, order-book gaps.
"""

from __future__ import annotations

import itertools
import json
import socket
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websocket

from rxbinance.testing import FakeBinance

TIMEOUT = 10.0
Connect = Callable[..., websocket.WebSocket]


def make_connect(fake: FakeBinance, opened: list[websocket.WebSocket]) -> Connect:
    def connect(path: str, **kwargs: Any) -> websocket.WebSocket:
        ws = websocket.create_connection(fake.ws_url + path, timeout=TIMEOUT, **kwargs)
        opened.append(ws)
        return ws

    return connect


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinance(tick_interval=None, close_timeout=0.3) as server:
        yield server


@pytest.fixture
def connect(fake: FakeBinance, sockets: list[websocket.WebSocket]) -> Connect:
    return make_connect(fake, sockets)


def recv_close(ws: websocket.WebSocket) -> tuple[int, str]:
    """Read until the server's close frame; return its (code, reason)."""
    while True:
        opcode, frame = ws.recv_data_frame(True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            (code,) = struct.unpack("!H", frame.data[:2])
            return code, frame.data[2:].decode()


def closed(fake: FakeBinance, connection_id: int) -> Any:
    fake.wait_for(lambda f: not f.connection(connection_id).is_open, timeout=TIMEOUT)
    return fake.connection(connection_id)


# -------------------------------------------------------------------------------- drops


def test_drop_connections_abruptly(fake: FakeBinance, connect: Connect) -> None:
    ws = connect("/ws/btcusdt@trade")
    api = connect("/ws-api/v3")
    records = fake.wait_for_connections(2, kind=None)
    assert fake.drop_connections() == 2
    for client in (ws, api):
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
            client.recv()
    for record in records:
        done = closed(fake, record.id)
        assert (done.close_code, done.close_reason, done.close_cause) == (1006, "", "drop")
    assert fake.open_connections == ()


def test_drop_connections_with_a_close_frame(fake: FakeBinance, connect: Connect) -> None:
    ws = connect("/stream?streams=btcusdt@trade")
    (record,) = fake.wait_for_connections(1)
    assert fake.drop_connections(4000, "bye") == 1
    assert recv_close(ws) == (4000, "bye")
    done = closed(fake, record.id)
    assert (done.close_code, done.close_reason, done.close_cause) == (4000, "bye", "drop")


def test_refuse_connections(fake: FakeBinance, connect: Connect) -> None:
    fake.refuse_connections(2)
    for _ in range(2):
        with pytest.raises(websocket.WebSocketBadStatusException) as caught:
            connect("/ws/btcusdt@trade")
        assert caught.value.status_code == 503
        assert json.loads(caught.value.resp_body)["code"] == -1008
    connect("/ws/btcusdt@trade")
    attempts = fake.wait_for_attempts(3)
    assert [(a.accepted, a.status) for a in attempts] == [(False, 503), (False, 503), (True, 101)]

    fake.refuse_connections(None)  # all, until accept_connections()
    for _ in range(3):
        with pytest.raises(websocket.WebSocketBadStatusException):
            connect("/ws-api/v3")
    fake.accept_connections()
    connect("/ws-api/v3")
    assert [a.status for a in fake.wait_for_attempts(7)][3:] == [503, 503, 503, 101]


# ----------------------------------------------------------------------------- stall


def test_stall_freezes_data_control_and_pings(sockets: list[websocket.WebSocket]) -> None:
    with FakeBinance(
        tick_interval=None,
        ping_interval=0.05,
        pong_timeout=0.5,
        max_incoming_per_second=None,
        close_timeout=0.3,
    ) as fake:
        connect = make_connect(fake, sockets)
        ws = connect("/ws/btcusdt@trade")
        (record,) = fake.wait_for_connections(1)
        seen = 0  # pings this client read (and so answered: websocket-client does it in recv)
        while seen < 2:
            opcode, _frame = ws.recv_data_frame(True)
            seen += opcode == websocket.ABNF.OPCODE_PING
        fake.wait_for(lambda f: f.connection(record.id).pongs_received >= 1)

        fake.stall()
        assert fake.stalled
        before = fake.connection(record.id)
        while seen < before.pings_sent:  # pings already on the wire when the stall began
            opcode, _frame = ws.recv_data_frame(True)
            seen += opcode == websocket.ABNF.OPCODE_PING
        assert fake.publish("btcusdt@trade", {"x": 1}) == 0
        assert fake.send_malformed() == 0
        events = fake.step(30)  # the market keeps moving...
        assert any(name == "btcusdt@trade" for name, _ in events)
        ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
        ws.ping(b"hello")
        # ...but nothing reaches the client: no data, no reply, no pong, no server ping, for
        # longer than pong_timeout, and the silent client is not dropped for it.
        ws.settimeout(1.0)
        with pytest.raises(websocket.WebSocketTimeoutException):
            ws.recv_data_frame(True)
        during = fake.connection(record.id)
        assert during.is_open
        assert (during.frames_sent, during.pings_sent) == (before.frames_sent, before.pings_sent)

        fake.unstall()
        assert not fake.stalled
        ws.settimeout(TIMEOUT)
        got_pong = got_reply = False
        while not (got_pong and got_reply):
            opcode, frame = ws.recv_data_frame(True)
            if opcode == websocket.ABNF.OPCODE_PONG and frame.data == b"hello":
                got_pong = True
            elif opcode == websocket.ABNF.OPCODE_TEXT:
                message = json.loads(frame.data)
                assert message == {"result": ["btcusdt@trade"], "id": 1}  # no stale market data
                got_reply = True
        # Pinging again, and the client answering keeps it alive past pong_timeout.
        after = fake.connection(record.id).pings_sent
        while fake.connection(record.id).pings_sent < after + 12:
            ws.recv_data_frame(True)
        assert fake.connection(record.id).is_open


def test_stall_with_a_duration_ends_by_itself(fake: FakeBinance, connect: Connect) -> None:
    connect("/ws/btcusdt@trade")
    fake.wait_for_connections(1)
    fake.stall(0.2)
    assert fake.stalled
    fake.wait_for(lambda f: not f.stalled, timeout=TIMEOUT)
    assert fake.publish("btcusdt@trade", {}) == 1


def test_connections_opened_during_a_stall_are_stalled(fake: FakeBinance, connect: Connect) -> None:
    fake.stall()
    ws = connect("/ws")  # the handshake still completes
    fake.wait_for_connections(1)
    ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1}))
    ws.settimeout(0.3)
    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv()
    fake.unstall()
    ws.settimeout(TIMEOUT)
    assert json.loads(ws.recv()) == {"result": None, "id": 1}


# -------------------------------------------------------------------- scripted faults


def test_send_malformed_goes_to_stream_connections_only(
    fake: FakeBinance, connect: Connect
) -> None:
    raw = connect("/ws/btcusdt@trade")
    combined = connect("/stream")
    api = connect("/ws-api/v3")
    fake.wait_for_connections(3, kind=None)
    assert fake.send_malformed() == 2
    assert raw.recv() == "{not json"
    assert combined.recv() == "{not json"
    assert fake.send_malformed('{"e":') == 2
    assert raw.recv() == '{"e":'
    api.send(json.dumps({"id": 1, "method": "ping"}))
    assert json.loads(api.recv())["id"] == 1  # the WS API connection got nothing else first


def test_server_shutdown(fake: FakeBinance, connect: Connect) -> None:
    raw = connect("/ws/btcusdt@trade")
    combined = connect("/stream?streams=btcusdt@trade")
    micro = connect("/ws?timeUnit=MICROSECOND")
    api = connect("/ws-api/v3")
    fake.wait_for_connections(4, kind=None)
    now = fake.with_market(lambda m: m.time_ms)
    assert fake.server_shutdown(close_code=1012) == 4
    event = {"e": "serverShutdown", "E": now}
    assert json.loads(raw.recv()) == event
    assert json.loads(combined.recv()) == {"stream": "!serverShutdown", "data": event}
    assert json.loads(micro.recv()) == {"e": "serverShutdown", "E": now * 1000}
    assert json.loads(api.recv()) == {"event": event}
    for ws in (raw, combined, micro, api):
        assert recv_close(ws) == (1012, "")
    fake.wait_for(lambda f: not f.open_connections)
    assert {(r.close_code, r.close_cause) for r in fake.connections} == {(1012, "server_shutdown")}


def test_inject_gap_shows_on_the_wire(fake: FakeBinance, connect: Connect) -> None:
    ws = connect("/ws/btcusdt@depth@100ms")
    fake.wait_for_connections(1)
    events = fake.step(3)
    fake.inject_gap("BTCUSDT", 4)
    events += fake.step(3)
    received = [json.loads(ws.recv()) for _ in events]
    assert received == [payload for _, payload in events]
    jumps = [b["U"] - a["u"] - 1 for a, b in itertools.pairwise(received)]
    assert sorted(jumps) == [0] * (len(jumps) - 1) + [4]


# -------------------------------------------------------------------------------- rules


def test_client_that_does_not_answer_pings_is_dropped(sockets: list[websocket.WebSocket]) -> None:
    with FakeBinance(
        tick_interval=None,
        ping_interval=0.05,
        pong_timeout=1.0,
        close_timeout=0.3,
        max_incoming_per_second=None,
    ) as fake:
        connect = make_connect(fake, sockets)
        connect("/ws/btcusdt@trade")  # never reads, so never pongs
        (silent_record,) = fake.wait_for_connections(1)
        liar = connect("/ws/btcusdt@trade")  # only sends unsolicited pongs
        reader = connect("/ws/btcusdt@trade")  # reads, so websocket-client answers pings
        records = fake.wait_for_connections(3)
        liar_id, reader_id = records[1].id, records[2].id

        payloads: list[bytes] = []
        while fake.connection(reader_id).pings_sent < 25:
            opcode, frame = reader.recv_data_frame(True)  # answers the ping it returns
            if opcode == websocket.ABNF.OPCODE_PING:
                payloads.append(frame.data)
                liar.pong(b"")
        assert b"" not in payloads
        assert len(set(payloads)) == len(payloads)  # every ping carries its own payload
        # Every ping the reader saw was answered (more may be in flight on a busy machine).
        fake.wait_for(lambda f: f.connection(reader_id).pongs_received >= len(payloads))

        done = closed(fake, silent_record.id)
        assert (done.close_code, done.close_reason, done.close_cause) == (
            1008,
            "Pong timeout",
            "pong_timeout",
        )
        assert done.pongs_received == 0
        liar_done = closed(fake, liar_id)
        assert liar_done.close_cause == "pong_timeout"
        assert liar_done.pongs_received >= 1  # unsolicited pongs were seen but did not count
        assert fake.connection(reader_id).is_open


@pytest.mark.parametrize("frame", ["text", "ping", "pong"])
def test_more_than_five_incoming_frames_per_second_closes_1008(
    fake: FakeBinance, connect: Connect, frame: str
) -> None:
    ws = connect("/ws/btcusdt@trade")
    (record,) = fake.wait_for_connections(1)
    for i in range(6):
        if frame == "text":
            ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        elif frame == "ping":
            ws.ping(b"p")
        else:
            ws.pong(b"")
    assert recv_close(ws) == (1008, "Too many requests")
    done = closed(fake, record.id)
    assert (done.close_code, done.close_cause) == (1008, "rate_limit")


def test_five_incoming_frames_per_second_are_fine(fake: FakeBinance, connect: Connect) -> None:
    ws = connect("/ws/btcusdt@trade")
    (record,) = fake.wait_for_connections(1)
    for i in range(5):
        ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
    assert [json.loads(ws.recv())["id"] for _ in range(5)] == [0, 1, 2, 3, 4]
    assert fake.publish("btcusdt@trade", {"still": "open"}) == 1
    assert json.loads(ws.recv()) == {"still": "open"}
    assert fake.connection(record.id).is_open


def test_ws_api_is_not_limited_to_five_frames(fake: FakeBinance, connect: Connect) -> None:
    api = connect("/ws-api/v3")
    fake.wait_for_connections(1, kind="ws-api")
    for i in range(12):
        api.send(json.dumps({"id": i, "method": "ping"}))
    assert [json.loads(api.recv())["status"] for _ in range(12)] == [200] * 12


def test_fast_pings_need_a_matching_rate_limit() -> None:
    with pytest.raises(ValueError, match="pongs alone would exceed"):
        FakeBinance(tick_interval=None, ping_interval=0.1)  # 10 pongs/s against 5/s
    FakeBinance(tick_interval=None, ping_interval=0.1, max_incoming_per_second=None)
    FakeBinance(tick_interval=None, ping_interval=0.5, max_incoming_per_second=5)


def test_max_streams(sockets: list[websocket.WebSocket]) -> None:
    with FakeBinance(
        tick_interval=None, max_streams=3, max_incoming_per_second=None, close_timeout=0.3
    ) as fake:
        connect = make_connect(fake, sockets)
        with pytest.raises(websocket.WebSocketBadStatusException) as caught:
            connect("/ws/a@trade/b@trade/c@trade/d@trade")
        assert caught.value.status_code == 400
        assert json.loads(caught.value.resp_body) == {
            "code": -1101,
            "msg": "Too many parameters; expected '3' and received '4'.",
        }
        ws = connect("/stream?streams=a@trade/b@trade/c@trade")
        (record,) = fake.wait_for_connections(1)
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["d@trade"], "id": 1}))
        reply = json.loads(ws.recv())
        assert reply["id"] == 1
        assert reply["error"]["code"] == 2
        assert fake.connection(record.id).streams == ("a@trade", "b@trade", "c@trade")
        # Swapping streams within the limit works.
        ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["a@trade"], "id": 2}))
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["d@trade"], "id": 3}))
        assert [json.loads(ws.recv()) for _ in range(2)] == [
            {"result": None, "id": 2},
            {"result": None, "id": 3},
        ]
        assert fake.connection(record.id).streams == ("b@trade", "c@trade", "d@trade")


def test_max_connection_age(sockets: list[websocket.WebSocket]) -> None:
    with FakeBinance(tick_interval=None, max_connection_age=0.3, close_timeout=0.3) as fake:
        connect = make_connect(fake, sockets)
        ws = connect("/ws/btcusdt@trade")
        api = connect("/ws-api/v3")
        records = fake.wait_for_connections(2, kind=None)
        for client in (ws, api):
            assert recv_close(client) == (1001, "")
        for record in records:
            done = closed(fake, record.id)
            assert (done.close_code, done.close_cause) == (1001, "max_age")
            assert done.closed_at is not None
            assert done.closed_at - done.opened_at >= 0.29


def test_slow_consumer_is_dropped(sockets: list[websocket.WebSocket]) -> None:
    with FakeBinance(tick_interval=None, max_send_buffer=256 * 1024, close_timeout=0.3) as fake:
        connect = make_connect(fake, sockets)
        connect("/ws/btcusdt@trade", sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
        (record,) = fake.wait_for_connections(1)
        chunk = "x" * 65536
        for _ in range(5000):  # at most ~330 MB, far more than any socket buffer holds
            if fake.publish("btcusdt@trade", chunk) == 0:
                break
        else:
            pytest.fail("a client that never reads was never dropped")
        done = closed(fake, record.id)
        assert (done.close_code, done.close_cause) == (1006, "slow_consumer")
