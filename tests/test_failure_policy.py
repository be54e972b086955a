"""What each failure means, over real sockets to FakeBinance: 4xx refusals end a stream at once
with the reason, 429/5xx are retried, a bug in the read path is not retried, and a socket closed
before it started never connects."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from rxbinance import BinanceStreams
from rxbinance.errors import HandshakeError, InternalError, RxBinanceError
from rxbinance.events import ConnectionEvent, Reconnecting, Rejected
from rxbinance.protocol.frames import FrameKind
from rxbinance.testing import FakeBinance
from rxbinance.transport import StreamSocket
from tests.conftest import Collector

GIVE_UP = {"e": "error", "m": "Max reconnect retries reached"}


@pytest.mark.parametrize(("status", "meaning"), [(451, "restricted location"), (404, "path")])
def test_a_4xx_handshake_ends_the_stream_at_once_saying_why(
    fake: FakeBinance, status: int, meaning: str
) -> None:
    fake.refuse_connections(status=status)
    # A long retry delay: if this were retried, the test would wait for it and fail the check.
    with BinanceStreams(ws_url=fake.ws_url, rest_url=fake.rest_url, retry_delay=30.0) as streams:
        events: list[ConnectionEvent] = []
        streams.events.subscribe(events.append)
        got = Collector()
        streams.trades("BTCUSDT").subscribe(got)
        got.wait_for(lambda c: bool(c.errors))
        (error,) = got.errors
        assert isinstance(error, HandshakeError)
        assert error.status == status
        assert f"HTTP {status}" in str(error)
        assert meaning in str(error)
        assert got.items == []  # not the generic give-up
        assert len(fake.attempts) == 1
        assert [type(e) for e in events if isinstance(e, (Rejected, Reconnecting))] == [Rejected]
        assert streams.statistics() == {}  # forgotten: a later subscriber tries afresh


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_429_or_5xx_handshake_is_retried_then_given_up(fake: FakeBinance, status: int) -> None:
    fake.refuse_connections(status=status)
    with BinanceStreams(
        ws_url=fake.ws_url, rest_url=fake.rest_url, max_retries=2, retry_delay=0.01
    ) as streams:
        got = Collector()
        streams.trades("BTCUSDT").subscribe(got)
        got.wait_completed()
        assert got.items == [GIVE_UP]
        assert got.errors == []
        assert len(fake.attempts) == 3


def test_a_bug_in_the_read_path_is_reported_not_retried(fake: FakeBinance) -> None:
    closed: list[RxBinanceError | None] = []
    done = threading.Event()

    def buggy_classify(message: Any) -> FrameKind:
        raise KeyError("a bug of ours")

    def on_closed(failure: RxBinanceError | None) -> None:
        closed.append(failure)
        done.set()

    sock = StreamSocket(
        fake.ws_url + "/ws/btcusdt@trade",
        key="btcusdt@trade",
        on_message=lambda m: None,
        on_event=lambda e: None,
        on_closed=on_closed,
        classify=buggy_classify,
    )
    sock.start()
    fake.wait_for_connections(1, stream="btcusdt@trade")
    fake.publish("btcusdt@trade", {"e": "trade", "t": 1})
    assert done.wait(10)
    sock.join(5)
    (failure,) = closed
    assert isinstance(failure, InternalError)  # not a ConnectionFailure: never retried
    assert isinstance(failure.__cause__, KeyError)
    assert "crashed" in str(failure)


def test_a_socket_closed_before_it_starts_never_connects(fake: FakeBinance) -> None:
    closed: list[RxBinanceError | None] = []
    sock = StreamSocket(
        fake.ws_url + "/ws/btcusdt@trade",
        key="btcusdt@trade",
        on_message=lambda m: None,
        on_event=lambda e: None,
        on_closed=closed.append,
    )
    sock.close()  # the last subscriber left between the socket's creation and its start
    sock.start()
    sock.join(5)
    assert closed == [None]
    assert fake.attempts == ()


def test_refuse_connections_names_the_statuses_it_knows(fake: FakeBinance) -> None:
    with pytest.raises(ValueError, match="451"):
        fake.refuse_connections(status=418)
