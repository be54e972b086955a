"""BinanceStreams against FakeBinance over real loopback sockets: sharing, validation, delivery."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import reactivex.operators as ops
from reactivex.scheduler import EventLoopScheduler

from rxbinance import BinanceStreams
from rxbinance.events import MalformedFrame
from rxbinance.testing import FakeBinance
from tests.conftest import Collector

TRADE = {
    "e": "trade",
    "E": 1672515782136,
    "s": "BTCUSDT",
    "t": 12345,
    "p": "0.001",
    "q": "100",
    "T": 1672515782136,
    "m": True,
    "M": True,
}


def trade(i: int) -> dict[str, Any]:
    return {**TRADE, "t": i, "p": f"{i}.00"}


def open_paths(fake: FakeBinance) -> list[str]:
    return [c.path for c in fake.connections if c.closed_at is None]


def test_two_calls_two_subscribers_share_one_socket(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    a, b = Collector(), Collector()
    sub_a = streams.trades("BTCUSDT").subscribe(a)
    sub_b = streams.trades("btcusdt").subscribe(b)
    fake.wait_for_connections(1, stream="btcusdt@trade")
    for i in range(5):
        fake.publish("btcusdt@trade", trade(i))
    a.wait_count(5)
    b.wait_count(5)
    assert [m["t"] for m in a.items] == [0, 1, 2, 3, 4]
    assert b.items == a.items
    assert len(fake.attempts) == 1
    assert open_paths(fake) == ["/ws/btcusdt@trade"]
    assert streams.statistics()["btcusdt@trade"].subscribers == 2
    sub_a.dispose()
    sub_b.dispose()


def test_last_dispose_closes_the_socket_and_the_next_subscriber_opens_a_fresh_one(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    first, second = Collector(), Collector()
    sub_1 = streams.trades("BTCUSDT").subscribe(first)
    sub_2 = streams.trades("BTCUSDT").subscribe(second)
    fake.wait_for_connections(1, stream="btcusdt@trade")
    sub_1.dispose()
    fake.publish("btcusdt@trade", trade(1))
    second.wait_count(1)  # one subscriber left: the socket is still open
    assert fake.connections[0].closed_at is None
    sub_2.dispose()
    # The bound: the socket closes within a second of the last dispose.
    fake.wait_for(lambda f: f.connections[0].closed_at is not None, timeout=1.0)
    assert fake.connections[0].close_code == 1000  # a polite close frame, not a drop
    assert streams.statistics() == {}

    third = Collector()
    sub_3 = streams.trades("BTCUSDT").subscribe(third)
    fake.wait_for_connections(1, stream="btcusdt@trade")
    fake.publish("btcusdt@trade", trade(2))
    third.wait_count(1)
    assert len(fake.connections) == 2
    assert third.items == [trade(2)]
    sub_3.dispose()


def test_depth_and_trades_of_one_symbol_are_two_sockets(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    subs = [
        streams.trades("BNBBTC").subscribe(Collector()),
        streams.depth("BNBBTC").subscribe(Collector()),
        streams.depth("BNBBTC", 5, 100).subscribe(Collector()),
    ]
    fake.wait_for_connections(3)
    assert sorted(open_paths(fake)) == [
        "/ws/bnbbtc@depth",
        "/ws/bnbbtc@depth5@100ms",
        "/ws/bnbbtc@trade",
    ]
    for sub in subs:
        sub.dispose()


@pytest.mark.parametrize(
    ("path", "open_stream"),
    [
        ("/ws/btcusdt@aggTrade", lambda s: s.agg_trades("BTCUSDT")),
        ("/ws/btcusdt@kline_1M", lambda s: s.klines("BTCUSDT", "1M")),
        ("/ws/btcusdt@kline_1m", lambda s: s.klines("BTCUSDT")),
        ("/ws/btcusdt@ticker", lambda s: s.symbol_ticker("BTCUSDT")),
        ("/ws/btcusdt@ticker_4h", lambda s: s.rolling_ticker("BTCUSDT", "4h")),
        ("/ws/!ticker_1d@arr", lambda s: s.ticker()),
        ("/ws/!miniTicker@arr", lambda s: s.mini_ticker()),
        ("/ws/btcusdt@miniTicker", lambda s: s.mini_ticker("BTCUSDT")),
        ("/ws/btcusdt@bookTicker", lambda s: s.book_ticker("BTCUSDT")),
        ("/ws/btcusdt@avgPrice", lambda s: s.avg_price("BTCUSDT")),
        ("/ws/btcusdt@depth@100ms", lambda s: s.depth("BTCUSDT", speed=100)),
        ("/ws/btcusdt@depth20", lambda s: s.depth("BTCUSDT", 20)),
        ("/ws/ethbtc@kline_1s", lambda s: s.stream("ethbtc@kline_1s")),
    ],
)
def test_every_stream_method_opens_its_binance_path(
    fake: FakeBinance, streams: BinanceStreams, path: str, open_stream: Any
) -> None:
    sub = open_stream(streams).subscribe(Collector())
    fake.wait_for(lambda f: path in open_paths(f))
    sub.dispose()


def test_market_data_flows_from_the_simulator(fake: FakeBinance, streams: BinanceStreams) -> None:
    trades, book = Collector(), Collector()
    subs = [
        streams.trades("ETHUSDT").subscribe(trades),
        streams.depth("ETHUSDT", 10, 100).subscribe(book),
    ]
    fake.wait_for_connections(2)
    for _ in range(200):  # the simulator trades on most ticks; 200 steps is plenty
        if len(trades.items) >= 3 and book.items:
            break
        fake.step(5)
    trades.wait_count(3)
    book.wait_count(1)
    assert all(m["e"] == "trade" and m["s"] == "ETHUSDT" for m in trades.items)
    ids = [m["t"] for m in trades.items]
    assert ids == sorted(set(ids))
    assert len(book.items[-1]["bids"]) == 10
    for sub in subs:
        sub.dispose()


@pytest.mark.parametrize(
    ("call", "bad"),
    [
        (lambda s: s.trades("BTC USDT"), "'BTC USDT'"),
        (lambda s: s.klines("BTCUSDT", "2m"), "'2m'"),
        (lambda s: s.depth("BTCUSDT", 15), "15"),
        (lambda s: s.depth("BTCUSDT", speed=250), "250"),
        (lambda s: s.rolling_ticker("BTCUSDT", "2h"), "'2h'"),
        (lambda s: s.stream("BTCUSDT@trade"), "'BTCUSDT@trade'"),
        (lambda s: s.stream("!ticker@arr"), "'!ticker@arr'"),
        (lambda s: s.mini_ticker(update_time=500), "500"),
        (lambda s: s.multiplex(["btcusdt@trade", "ETHUSDT@trade"]), "'ETHUSDT@trade'"),
    ],
)
def test_bad_input_raises_before_any_socket_opens(
    fake: FakeBinance, streams: BinanceStreams, call: Any, bad: str
) -> None:
    with pytest.raises(ValueError, match=r"invalid|retired|stream") as info:
        call(streams)
    assert bad in str(info.value)
    assert not fake.attempts


def test_multiplex_refuses_user_data_streams(fake: FakeBinance, streams: BinanceStreams) -> None:
    listen_key = "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"
    with pytest.raises(ValueError, match=listen_key):
        streams.multiplex(["btcusdt@trade", listen_key])
    with pytest.raises(ValueError, match="1024"):
        streams.multiplex([f"s{i}usdt@trade" for i in range(1025)])
    assert not fake.attempts


def test_a_raising_subscriber_does_not_hurt_the_others(
    fake: FakeBinance, streams: BinanceStreams, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(_: Any) -> None:
        raise RuntimeError("subscriber bug")

    good = Collector()
    subs = [
        streams.trades("BTCUSDT").subscribe(explode),
        streams.trades("BTCUSDT").subscribe(good),
    ]
    fake.wait_for_connections(1, stream="btcusdt@trade")
    for i in range(3):
        fake.publish("btcusdt@trade", trade(i))
    good.wait_count(3)
    assert len(fake.connections) == 1
    assert fake.connections[0].closed_at is None
    assert "subscriber bug" in caplog.text
    for sub in subs:
        sub.dispose()


def test_subscribers_run_on_the_reader_thread_by_default(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    got = Collector()
    sub = streams.trades("BTCUSDT").subscribe(got)
    fake.wait_for_connections(1)
    fake.publish("btcusdt@trade", trade(1))
    got.wait_count(1)
    assert got.threads == ["rxbinance:btcusdt@trade"]
    reader = next(t for t in threading.enumerate() if t.name == "rxbinance:btcusdt@trade")
    assert reader.daemon
    sub.dispose()


def test_scheduler_argument_moves_delivery_off_the_reader(fake: FakeBinance) -> None:
    scheduler = EventLoopScheduler(
        thread_factory=lambda target: threading.Thread(target=target, name="user-loop", daemon=True)
    )
    with BinanceStreams(ws_url=fake.ws_url, scheduler=scheduler) as streams:
        got = Collector()

        def explode(_: Any) -> None:
            raise RuntimeError("boom on the scheduler")

        subs = [
            streams.trades("BTCUSDT").subscribe(explode),
            streams.trades("BTCUSDT").subscribe(got),
        ]
        fake.wait_for_connections(1)
        for i in range(3):
            fake.publish("btcusdt@trade", trade(i))
        got.wait_count(3)
        # In order, on the scheduler's thread, and the raising subscriber did not kill it.
        assert [m["t"] for m in got.items] == [0, 1, 2]
        assert set(got.threads) == {"user-loop"}
        for sub in subs:
            sub.dispose()
    scheduler.dispose()


def test_mini_ticker_update_time_is_honoured_on_event_time(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    every, slow = Collector(), Collector()
    subs = [
        streams.mini_ticker("BTCUSDT").subscribe(every),
        streams.mini_ticker("BTCUSDT", update_time=3000).subscribe(slow),
    ]
    fake.wait_for_connections(1, stream="btcusdt@miniTicker")
    assert len(fake.connections) == 1  # both share the one socket
    base = 1_700_000_000_000
    for second in range(10):
        payload = {"e": "24hrMiniTicker", "E": base + second * 1000, "s": "BTCUSDT", "c": "1"}
        fake.publish("btcusdt@miniTicker", payload)
    every.wait_count(10)
    slow.wait_count(4)
    assert [m["E"] - base for m in slow.items] == [0, 3000, 6000, 9000]
    for sub in subs:
        sub.dispose()


def test_all_market_mini_ticker_merges_symbols_between_emissions(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    slow, every = Collector(), Collector()
    subs = [
        streams.mini_ticker(update_time=2000).subscribe(slow),
        streams.mini_ticker().subscribe(every),
    ]
    fake.wait_for_connections(1, stream="!miniTicker@arr")
    base = 1_700_000_000_000
    batches = [["BTCUSDT"], ["ETHUSDT"], ["BNBBTC"], ["BTCUSDT"], ["ETHUSDT"]]
    for i, symbols in enumerate(batches):
        fake.publish(
            "!miniTicker@arr",
            [{"e": "24hrMiniTicker", "E": base + i * 1000, "s": s, "c": str(i)} for s in symbols],
        )
    every.wait_count(5)
    slow.wait_count(3)
    emitted = [sorted(t["s"] for t in batch) for batch in slow.items]
    # t=0 passes; ETH (t=1) waits; t=2 passes carrying ETH and BNB; BTC (t=3) waits; t=4 passes.
    assert emitted == [["BTCUSDT"], ["BNBBTC", "ETHUSDT"], ["BTCUSDT", "ETHUSDT"]]
    for sub in subs:
        sub.dispose()


def test_malformed_frames_are_reported_not_fatal(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    got, events = Collector(), Collector()
    streams.events.pipe(ops.filter(lambda e: isinstance(e, MalformedFrame))).subscribe(events)
    sub = streams.trades("BTCUSDT").subscribe(got)
    fake.wait_for_connections(1)
    fake.publish("btcusdt@trade", "{not json")
    fake.publish("btcusdt@trade", trade(7))
    got.wait_count(1)
    events.wait_count(1)
    assert got.items == [trade(7)]
    assert events.items[0].stream == "btcusdt@trade"
    assert "{not json" in events.items[0].excerpt
    assert len(fake.connections) == 1  # no reconnect for a bad frame
    sub.dispose()


def test_close_completes_subscribers_and_stops_every_thread(fake: FakeBinance) -> None:
    streams = BinanceStreams(ws_url=fake.ws_url)
    a, b = Collector(), Collector()
    streams.trades("BTCUSDT").subscribe(a)
    streams.book_ticker("ETHUSDT").subscribe(b)
    fake.wait_for_connections(2)
    streams.close()
    assert a.completed
    assert b.completed
    ours = {"rxbinance:btcusdt@trade", "rxbinance:ethusdt@bookTicker"}
    assert not [t for t in threading.enumerate() if t.name in ours]
    fake.wait_for(lambda f: all(c.closed_at is not None for c in f.connections))
    late = Collector()
    streams.trades("BTCUSDT").subscribe(late)
    assert isinstance(late.errors[0], RuntimeError)
    assert "closed" in str(late.errors[0])
    streams.close()  # idempotent


def test_dispose_from_inside_a_callback(fake: FakeBinance, streams: BinanceStreams) -> None:
    got = Collector()
    streams.trades("BTCUSDT").pipe(ops.take(2)).subscribe(got)
    fake.wait_for_connections(1)
    for i in range(4):
        fake.publish("btcusdt@trade", trade(i))
    got.wait_completed()
    assert [m["t"] for m in got.items] == [0, 1]
    fake.wait_for(lambda f: f.connections[0].closed_at is not None, timeout=1.0)


def test_best_bid_ask_method_gives_typed_quotes_on_the_book_ticker_socket(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    from decimal import Decimal

    raw, quotes = Collector(), Collector()
    subs = [
        streams.book_ticker("BNBUSDT").subscribe(raw),
        streams.best_bid_ask("BNBUSDT").subscribe(quotes),
    ]
    fake.wait_for_connections(1, stream="bnbusdt@bookTicker")
    ticker = {
        "u": 400900217,
        "s": "BNBUSDT",
        "b": "25.3519",
        "B": "31.21",
        "a": "25.3652",
        "A": "40.66",
    }
    fake.publish("bnbusdt@bookTicker", ticker)
    quotes.wait_count(1)
    raw.wait_count(1)
    quote = quotes.items[0]
    assert quote.best_bid == (Decimal("25.3519"), Decimal("31.21"))
    assert quote.best_ask == (Decimal("25.3652"), Decimal("40.66"))
    assert quote.spread == Decimal("0.0133")
    assert len(fake.connections) == 1  # one socket for both
    for sub in subs:
        sub.dispose()
