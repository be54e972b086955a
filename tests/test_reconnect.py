"""Self-healing against FakeBinance's faults, over real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import reactivex.operators as ops

from rxbinance import BinanceStreams
from rxbinance.events import (
    Connected,
    Connecting,
    Disconnected,
    GaveUp,
    Reconnecting,
    RolledOver,
    ShutdownAnnounced,
)
from rxbinance.testing import FakeBinance
from tests.conftest import Collector

GIVE_UP = {"e": "error", "m": "Max reconnect retries reached"}


def trade(i: int) -> dict[str, Any]:
    return {"e": "trade", "E": 1, "s": "BTCUSDT", "t": i, "p": "1.0", "q": "1", "T": 1, "m": True}


@pytest.fixture
def events(streams: BinanceStreams) -> Iterator[Collector]:
    collector = Collector()
    subscription = streams.events.subscribe(collector)
    yield collector
    subscription.dispose()


def connected_count(events: Collector) -> int:
    return sum(isinstance(e, Connected) for e in events.items)


def subscribe_and_wait(fake: FakeBinance, streams: BinanceStreams) -> tuple[Collector, Any]:
    got = Collector()
    sub = streams.trades("BTCUSDT").subscribe(got)
    fake.wait_for_connections(1, stream="btcusdt@trade")
    return got, sub


@pytest.mark.parametrize("close_code", [None, 1000, 1001, 1011])
def test_a_dropped_connection_is_reopened_and_data_flows_again(
    fake: FakeBinance, streams: BinanceStreams, events: Collector, close_code: int | None
) -> None:
    got, sub = subscribe_and_wait(fake, streams)
    fake.publish("btcusdt@trade", trade(1))
    got.wait_count(1)
    fake.drop_connections(code=close_code)
    events.wait_for(lambda c: connected_count(c) == 2)
    fake.wait_for_connections(1, stream="btcusdt@trade")
    fake.publish("btcusdt@trade", trade(2))
    got.wait_count(2)
    assert [m["t"] for m in got.items] == [1, 2]
    disconnected = [e for e in events.items if isinstance(e, Disconnected)]
    assert disconnected[0].code == (close_code or 1006)
    assert [type(e) for e in events.items[:5]] == [
        Connecting,
        Connected,
        Disconnected,
        Reconnecting,
        Connecting,
    ]
    assert not got.completed
    sub.dispose()


def test_handshake_refusals_are_retried(
    fake: FakeBinance, streams: BinanceStreams, events: Collector
) -> None:
    fake.refuse_connections(2)
    got, sub = subscribe_and_wait(fake, streams)
    assert [a.accepted for a in fake.attempts] == [False, False, True]
    assert [a.status for a in fake.attempts[:2]] == [503, 503]
    reconnecting = [e for e in events.items if isinstance(e, Reconnecting)]
    assert [e.attempt for e in reconnecting] == [1, 2]
    fake.publish("btcusdt@trade", trade(1))
    got.wait_count(1)
    sub.dispose()


def test_refusing_everything_costs_six_attempts_then_the_error_dict(
    fake: FakeBinance, streams: BinanceStreams, events: Collector
) -> None:
    fake.refuse_connections(None)
    a, b = Collector(), Collector()
    subs = [streams.trades("BTCUSDT").subscribe(a), streams.trades("BTCUSDT").subscribe(b)]
    a.wait_completed()
    b.wait_completed()
    assert len(fake.attempts) == 6  # the first attempt and max_retries=5 retries
    assert a.items == [GIVE_UP]
    assert b.items == [GIVE_UP]
    gave_up = [e for e in events.items if isinstance(e, GaveUp)]
    assert len(gave_up) == 1
    assert gave_up[0].stream == "btcusdt@trade"
    assert streams.statistics() == {}  # the key is forgotten

    # ... so a later subscriber starts afresh.
    fake.accept_connections()
    c = Collector()
    sub = streams.trades("BTCUSDT").subscribe(c)
    fake.wait_for_connections(1, stream="btcusdt@trade")
    fake.publish("btcusdt@trade", trade(3))
    c.wait_count(1)
    assert c.items == [trade(3)]
    for s in [*subs, sub]:
        s.dispose()


def test_connection_refused_by_the_os_is_retried_then_given_up() -> None:
    with FakeBinance() as fake:
        url = fake.ws_url  # a port that is closed once the server stops
    with BinanceStreams(ws_url=url, max_retries=2, retry_delay=0.01, max_retry_delay=0.02) as s:
        got, events = Collector(), Collector()
        s.events.subscribe(events)
        s.trades("BTCUSDT").subscribe(got)
        got.wait_completed()
        assert got.items == [GIVE_UP]
        assert sum(isinstance(e, Connecting) for e in events.items) == 3


def test_a_message_resets_the_failure_count(fake: FakeBinance) -> None:
    with BinanceStreams(ws_url=fake.ws_url, max_retries=2, retry_delay=0.01) as streams:
        got = Collector()
        streams.trades("BTCUSDT").subscribe(got)
        for round_ in range(3):
            # The (round_ + 1)th connection is up (the dropped ones are closed).
            fake.wait_for(
                lambda f, n=round_ + 1: len(f.connections) == n and len(f.open_connections) == 1
            )
            fake.publish("btcusdt@trade", trade(round_))
            got.wait_count(round_ + 1)
            # Each drop costs two retries (one refused): with max_retries=2 the stream survives
            # a second round only because the message before the drop reset the count.
            fake.refuse_connections(1)
            fake.drop_connections()
        fake.wait_for_connections(1, stream="btcusdt@trade")
        assert not got.completed
        assert [m["t"] for m in got.items] == [0, 1, 2]


def test_a_stall_is_detected_and_healed(fake: FakeBinance) -> None:
    with BinanceStreams(ws_url=fake.ws_url, stall_timeout=0.5, retry_delay=0.01) as streams:
        events = Collector()
        streams.events.subscribe(events)
        got = Collector()
        streams.trades("BTCUSDT").subscribe(got)
        fake.wait_for_connections(1, stream="btcusdt@trade")
        fake.stall(None)
        events.wait_for(lambda c: any(isinstance(e, Disconnected) for e in c.items))
        stalled = next(e for e in events.items if isinstance(e, Disconnected))
        assert "no data and no ping" in stalled.reason
        fake.unstall()
        events.wait_for(lambda c: connected_count(c) == 2)
        fake.wait_for_connections(1, stream="btcusdt@trade")
        fake.publish("btcusdt@trade", trade(5))
        got.wait_count(1)


@pytest.mark.parametrize("combined", [False, True])
def test_server_shutdown_reconnects_at_once_without_counting(
    fake: FakeBinance, combined: bool
) -> None:
    # max_retries=0: one counted failure would end the stream, so surviving three shutdowns
    # proves they are not counted.
    with BinanceStreams(ws_url=fake.ws_url, max_retries=0, retry_delay=30.0) as streams:
        events = Collector()
        streams.events.subscribe(events)
        got = Collector()
        source = streams.multiplex(["btcusdt@trade"]) if combined else streams.trades("BTCUSDT")
        source.subscribe(got)
        for i in range(3):
            fake.wait_for_connections(1)
            fake.publish("btcusdt@trade", trade(i))
            got.wait_count(i + 1)
            fake.server_shutdown()
            events.wait_for(lambda c, n=i: connected_count(c) == n + 2)
        assert not got.completed
        # Make-before-break (issue 11): each announcement opened the replacement at once,
        # without a reconnect delay or a counted retry; a replacement takes over when it
        # delivers (how many did by now depends on which socket the fake published to while
        # the old one was closing).
        assert [e for e in events.items if isinstance(e, Reconnecting)] == []
        # Each announcement comes before the connection it caused (the replacement is started
        # after the event is out, so a subscriber never sees the effect before its cause).
        assert [type(e) for e in events.items if isinstance(e, ShutdownAnnounced | Connected)] == [
            Connected,
            ShutdownAnnounced,
        ] * 3 + [Connected]
        rolled = [e for e in events.items if isinstance(e, RolledOver)]
        assert {e.reason for e in rolled} <= {"serverShutdown"}
        assert [(m["data"] if combined else m)["t"] for m in got.items] == [0, 1, 2]
        assert all("serverShutdown" not in str(m) for m in got.items)


def test_every_subscriber_of_a_multiplex_gets_the_error_dict(fake: FakeBinance) -> None:
    with BinanceStreams(ws_url=fake.ws_url, max_retries=1, retry_delay=0.01) as streams:
        got = Collector()
        streams.multiplex(["btcusdt@trade", "ethusdt@trade"]).pipe(ops.take(5)).subscribe(got)
        fake.wait_for_connections(1)
        fake.refuse_connections(None)
        fake.drop_connections()
        got.wait_completed()
        assert got.items == [GIVE_UP]
