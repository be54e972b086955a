"""The hub's guarantees (issue 9, part 1), through BinanceStreams and its public seams.

Scripted sockets (rxbinance.testing.ScriptedTransport) make each interleaving exact; a few tests
repeat the point over real loopback sockets to FakeBinance.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from reactivex import Observer

import rxbinance
from rxbinance import BinanceStreams
from rxbinance._reactive.hub import Hub, Sink
from rxbinance.errors import ConnectError, InvalidInputError, StreamsClosed
from rxbinance.events import Connected, ConnectionEvent, GaveUp
from rxbinance.testing import FakeBinance, ScriptedTransport
from tests.conftest import Collector

TRADE = {"e": "trade", "E": 1, "s": "BTCUSDT", "t": 1, "p": "1", "q": "1", "T": 1, "m": True}


def scripted(**kwargs: Any) -> tuple[BinanceStreams, ScriptedTransport]:
    transport = ScriptedTransport()
    return BinanceStreams(transport=transport, **kwargs), transport


# -- no user code under a library lock -------------------------------------------------------


def test_an_events_subscriber_may_close_the_streams_from_its_callback(fake: FakeBinance) -> None:
    streams = BinanceStreams(ws_url=fake.ws_url, rest_url=fake.rest_url)
    closed = threading.Event()

    def on_event(event: ConnectionEvent) -> None:
        if isinstance(event, Connected):
            streams.close()  # used to hang for ever: close() took the events lock we were under
            closed.set()

    streams.events.subscribe(on_event)
    data = Collector()
    streams.trades("BTCUSDT").subscribe(data)
    assert closed.wait(10), "close() from an events callback did not return"
    data.wait_completed()


def test_a_subscriber_may_dispose_and_subscribe_from_its_callback() -> None:
    streams, transport = scripted()
    received: list[Any] = []
    later = Collector()
    subscription: list[Any] = []

    def on_next(message: Any) -> None:
        received.append(message)
        subscription[0].dispose()  # inside our own on_next
        streams.trades("BTCUSDT").subscribe(later)  # and a new subscriber, same key

    subscription.append(streams.trades("BTCUSDT").subscribe(on_next))
    first = transport.sockets[0]
    first.deliver(TRADE)
    assert received == [TRADE]
    assert first.closed  # the last subscriber left: its socket was closed...
    second = transport.sockets[1]  # ...and the newcomer got a fresh one
    assert second.started
    assert not second.closed
    second.deliver({**TRADE, "t": 2})
    assert [m["t"] for m in later.items] == [2]
    streams.close()


# -- calls into one observer never overlap ------------------------------------------------------


def test_close_does_not_complete_a_subscriber_while_it_is_inside_on_next() -> None:
    streams, transport = scripted()
    inside = threading.Event()
    release = threading.Event()
    calls: list[tuple[str, str]] = []
    overlap: list[str] = []
    busy = threading.Lock()

    def on_next(message: Any) -> None:
        if not busy.acquire(False):
            overlap.append("on_next")
        calls.append(("next", threading.current_thread().name))
        inside.set()
        release.wait(10)
        busy.release()

    def on_completed() -> None:
        if not busy.acquire(False):
            overlap.append("on_completed")
        calls.append(("completed", threading.current_thread().name))
        busy.release()

    streams.trades("BTCUSDT").subscribe(Observer(on_next, None, on_completed))
    sock = transport.sockets[0]
    reader = threading.Thread(target=sock.deliver, args=(TRADE,), name="fake-reader")
    reader.start()
    assert inside.wait(10)
    streams.close()  # on the main thread, while the reader is inside on_next
    assert calls == [("next", "fake-reader")]  # not completed yet: that would overlap
    release.set()
    reader.join(10)
    # The completion was handed to the thread that was inside, after on_next returned.
    assert calls == [("next", "fake-reader"), ("completed", "fake-reader")]
    assert overlap == []


# -- a raising subscriber costs nobody else anything -----------------------------------------


@pytest.mark.parametrize(
    ("count", "raising"),
    [(1, {0}), (2, {0}), (2, {1}), (10, {0}), (10, {9}), (10, {2, 3, 7}), (10, set(range(10)))],
)
def test_the_fan_out_calls_every_subscriber_in_order_whichever_raise(
    count: int, raising: set[int], caplog: pytest.LogCaptureFixture
) -> None:
    streams, transport = scripted()
    calls: list[tuple[int, int]] = []

    def subscriber(index: int) -> Any:
        def on_next(message: Any) -> None:
            calls.append((index, message["t"]))
            if index in raising:
                raise RuntimeError(f"subscriber {index}")

        return on_next

    for index in range(count):
        streams.trades("BTCUSDT").subscribe(subscriber(index))
    with caplog.at_level(logging.ERROR, logger="rxbinance.streams"):
        for t in range(1, 4):
            transport.sockets[0].deliver({**TRADE, "t": t})
    # Every subscriber, raising or not, got every message, in subscription order.
    assert calls == [(index, t) for t in range(1, 4) for index in range(count)]
    # Each raising subscriber was reported for its own exception: the first in full.
    reported = [r.exc_info[1] for r in caplog.records if r.exc_info is not None]
    assert [str(e) for e in reported] == [f"subscriber {i}" for i in sorted(raising)]
    streams.close()


# -- terminal events reach everyone ---------------------------------------------------------------


def test_the_give_up_reaches_every_subscriber_and_a_joiner_during_it_starts_afresh() -> None:
    streams, transport = scripted(max_retries=0)
    a, b = Collector(), Collector()
    rejoined = Collector()

    def on_next_a(message: Any) -> None:
        a.on_next(message)
        if message == {"e": "error", "m": "Max reconnect retries reached"}:
            # Joining while the key is terminating: a fresh socket, not a replayed end.
            streams.trades("BTCUSDT").subscribe(rejoined)

    streams.trades("BTCUSDT").subscribe(Observer(on_next_a, a.on_error, a.on_completed))
    streams.trades("BTCUSDT").subscribe(b)
    transport.sockets[0].fail(ConnectError("refused"))
    give_up = {"e": "error", "m": "Max reconnect retries reached"}
    assert a.items == [give_up]
    assert a.completed
    assert b.items == [give_up]
    assert b.completed
    assert not rejoined.completed
    assert len(transport.sockets) == 2
    assert not transport.sockets[1].closed
    transport.sockets[1].deliver(TRADE)
    assert rejoined.items == [TRADE]
    streams.close()
    assert rejoined.completed


@pytest.mark.parametrize(
    "subscribe",
    [
        lambda s: s.trades("BTCUSDT"),
        lambda s: s.multiplex(["btcusdt@trade", "ethusdt@trade"]),
        lambda s: rxbinance.order_book(s, "BTCUSDT"),
        lambda s: rxbinance.klines_with_history(s, "BTCUSDT", "1m", history=5),
        lambda s: s.best_bid_ask("BTCUSDT"),
    ],
    ids=["trades", "multiplex", "order_book", "klines_with_history", "best_bid_ask"],
)
def test_subscribing_after_close_fails_at_once(subscribe: Any) -> None:
    streams, transport = scripted(rest_url="http://127.0.0.1:9")
    streams.close()
    collector = Collector()
    subscribe(streams).subscribe(collector)
    assert [type(e) for e in collector.errors] == [StreamsClosed]
    assert isinstance(collector.errors[0], RuntimeError)  # what it was before: still caught
    assert transport.sockets == []


# -- a start that fails leaves nothing behind ---------------------------------------------


def test_a_book_that_cannot_start_leaves_no_zombie_and_fails_every_subscriber_alike() -> None:
    # ws_url of our own without rest_url: the book cannot get its REST client (found late,
    # at the first subscription, not when order_book() is called).
    streams, transport = scripted()
    streams = BinanceStreams(ws_url="ws://127.0.0.1:9", transport=transport)
    book = rxbinance.order_book(streams, "BTCUSDT")
    first, second = Collector(), Collector()
    book.subscribe(first)
    assert [type(e) for e in first.errors] == [InvalidInputError]
    assert "rest_url" in str(first.errors[0])
    assert "ws://127.0.0.1:9" in str(first.errors[0])
    assert streams.context.hub.entries() == []  # nothing registered, nothing half-started
    book.subscribe(second)
    assert [str(e) for e in second.errors] == [str(first.errors[0])]
    assert streams.context.hub.entries() == []
    assert transport.sockets == []
    streams.close()


class _Refusing:
    """A source whose start fails (bad input found late)."""

    starts = 0

    def start(self, sink: Sink[Any]) -> None:
        _Refusing.starts += 1
        raise InvalidInputError("symbol FOO is not traded on this market")

    def stop(self) -> None:
        pass


def test_a_source_whose_start_raises_is_evicted_and_the_next_subscriber_retries() -> None:
    hub = Hub()
    shared = hub.observable("foo", _Refusing)
    first, second = Collector(), Collector()
    _Refusing.starts = 0
    shared.subscribe(first)
    shared.subscribe(second)
    assert [str(e) for e in first.errors] == ["symbol FOO is not traded on this market"]
    assert [str(e) for e in second.errors] == ["symbol FOO is not traded on this market"]
    assert _Refusing.starts == 2  # each tried afresh: no zombie entry answered the second
    assert hub.entries() == []


def test_a_late_joiner_of_a_stateful_source_gets_the_current_state_first_and_only_newer() -> None:
    hub = Hub()
    sinks: list[Sink[Any]] = []

    class Counter:
        def start(self, sink: Sink[Any]) -> None:
            sinks.append(sink)

        def stop(self) -> None:
            pass

    shared = hub.observable("state", Counter)
    early, late = Collector(), Collector()
    shared.subscribe(early)
    sink = sinks[0]
    sink.post(1, current=True)
    sink.post(2, current=True)  # posted, not yet flushed, when the late one joins
    shared.subscribe(late)
    sink.post(3, current=True)
    sink.flush()
    assert early.items == [1, 2, 3]
    assert late.items == [2, 3]  # the state at its join, then what came after: no repeat
    sink.forget_current()
    after_reset = Collector()
    shared.subscribe(after_reset)
    assert after_reset.items == []


def test_gave_up_event_then_the_dict_over_real_sockets(fake: FakeBinance) -> None:
    fake.refuse_connections()
    with BinanceStreams(
        ws_url=fake.ws_url, rest_url=fake.rest_url, max_retries=1, retry_delay=0.01
    ) as streams:
        events: list[ConnectionEvent] = []
        streams.events.subscribe(events.append)
        collector = Collector()
        streams.trades("BTCUSDT").subscribe(collector)
        collector.wait_completed()
        assert collector.items == [{"e": "error", "m": "Max reconnect retries reached"}]
        assert any(isinstance(e, GaveUp) for e in events)
        assert streams.statistics() == {}


def test_redundant_copies_merge_in_order_and_end_only_when_all_have() -> None:
    opened = threading.Semaphore(0)
    transport = ScriptedTransport(on_open=lambda _: opened.release())
    with BinanceStreams(
        transport=transport, redundancy=2, retry_delay=0.01, max_retries=0
    ) as streams:
        got = Collector()
        events: list[ConnectionEvent] = []
        streams.events.subscribe(events.append)
        streams.agg_trades("BTCUSDT", backfill=False).subscribe(got)
        assert opened.acquire(timeout=5)
        assert opened.acquire(timeout=5)  # the second copy, opened a little later
        first, second = transport.sockets
        agg = {"e": "aggTrade", "s": "BTCUSDT", "p": "1", "q": "1", "T": 1}
        first.deliver({**agg, "a": 1})
        second.deliver({**agg, "a": 1})  # a repeat: dropped
        second.deliver({**agg, "a": 2})  # the second copy was faster this time
        first.deliver({**agg, "a": 2})
        first.deliver({**agg, "a": 3})
        assert [m["a"] for m in got.items] == [1, 2, 3]
        first.fail(ConnectError("refused"))  # max_retries=0: this copy gives up...
        second.deliver({**agg, "a": 4})  # ...the stream does not
        assert [m["a"] for m in got.items] == [1, 2, 3, 4]
        assert not got.completed
        # The copy that went down is an event; the stream's subscribers saw nothing of it.
        assert [type(e) for e in events if isinstance(e, GaveUp)] == [GaveUp]
        second.fail(ConnectError("refused"))  # the last copy ends: the stream ends
        got.wait_completed()
        assert got.items[-1] == {"e": "error", "m": "Max reconnect retries reached"}
        stats_first = streams.statistics()
        assert stats_first == {}  # forgotten once ended


def test_redundancy_is_checked() -> None:
    with pytest.raises(ValueError, match="redundancy"):
        BinanceStreams(redundancy=0)
    with pytest.raises(ValueError, match="redundancy"):
        BinanceStreams(redundancy=True)  # type: ignore[arg-type]
