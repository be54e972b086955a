"""rxbinance.bridge (issue 14): publish -> a real redis-server -> consume, round trips.

The source is FakeBinance over loopback; Redis is a real redis-server (tests/redis_server.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

import rxbinance.operators as rbo
from rxbinance import BinanceStreams, models, order_book_statistics
from rxbinance.bridge import BridgeError, consume, publish
from rxbinance.errors import InvalidInputError
from rxbinance.events import Gap
from rxbinance.testing import FakeBinance
from tests.conftest import Collector
from tests.redis_server import RedisServer, running_redis

# One stream of every kind FakeBinance serves on spot.
KINDS = [
    "btcusdt@trade",
    "btcusdt@aggTrade",
    "btcusdt@depth@100ms",
    "btcusdt@depth5@100ms",
    "btcusdt@kline_1s",
    "btcusdt@ticker",
    "btcusdt@miniTicker",
    "btcusdt@bookTicker",
    "btcusdt@avgPrice",
    "btcusdt@ticker_1h",
]


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with running_redis() as redis_server:
        yield redis_server


@pytest.fixture
def redis_url(server: RedisServer) -> Iterator[str]:
    server.client().flushall()
    return server.url


@pytest.fixture
def later() -> Iterator[list[Any]]:
    """Subscriptions to dispose after the test; then no bridge thread may be left."""
    disposables: list[Any] = []
    yield disposables
    for disposable in disposables:
        disposable.dispose()
    for thread in threading.enumerate():
        if thread.name.startswith("rxbinance-bridge:"):
            thread.join(5)  # a reader notices its stop within one XREAD block (200 ms)
    assert bridge_threads() == []


def bridge_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("rxbinance-bridge:")]


def step(fake: FakeBinance, direct: Collector, ticks: int) -> None:
    """Run ``ticks`` ticks of the paused market and wait until ``direct`` (a subscriber of the
    published Observable) has every message they sent."""
    before = len(direct.items)  # stable: the previous step waited for all of its messages
    sent = len(fake.step(ticks))
    assert sent > 0
    direct.wait_count(before + sent)


def test_every_stream_kind_survives_the_trip_raw(
    fake: FakeBinance, streams: BinanceStreams, redis_url: str, later: list[Any]
) -> None:
    consumed = {name: Collector() for name in KINDS}
    later.extend(consume(redis_url, f"rxbinance:{n}").subscribe(c) for n, c in consumed.items())
    direct = Collector()
    source = streams.multiplex(KINDS)
    # The publisher subscribes first: the hub calls subscribers in order, so once `direct`
    # has a message the publisher has it too.
    with publish(source, redis_url) as publisher:
        source.subscribe(direct)
        fake.wait_for_connections(1)
        step(fake, direct, 40)
    # dispose() flushed: every message the publisher received is in Redis now.
    assert publisher.statistics().dropped == 0
    sent: dict[str, list[Any]] = {name: [] for name in KINDS}
    for message in direct.items:
        sent[message["stream"]].append(message["data"])
    for name, collector in consumed.items():
        assert len(sent[name]) >= 3, name
        collector.wait_count(len(sent[name]))
        assert collector.items == sent[name], name
        assert collector.threads[0] == f"rxbinance-bridge:rxbinance:{name}"


def test_every_stream_kind_survives_the_trip_typed(
    fake: FakeBinance, streams: BinanceStreams, redis_url: str, later: list[Any]
) -> None:
    key = "typed:all"
    consumed = Collector()
    later.append(consume(redis_url, key).subscribe(consumed))
    direct = Collector()
    typed = streams.multiplex(KINDS).pipe(rbo.parse())
    with publish(typed, redis_url, key=key):
        typed.subscribe(direct)
        fake.wait_for_connections(1)
        step(fake, direct, 40)
    consumed.wait_count(len(direct.items))
    assert consumed.items == direct.items  # frozen dataclasses: equal field by field
    kinds = {type(m) for m in consumed.items}
    assert {models.Trade, models.AggTrade, models.DepthUpdate, models.PartialDepth} <= kinds
    assert {models.Kline, models.Ticker, models.MiniTicker, models.BookTicker} <= kinds
    assert {models.AvgPrice, models.RollingTicker} <= kinds
    trade = next(m for m in consumed.items if isinstance(m, models.Trade))
    assert isinstance(trade.price, Decimal)


def test_raw_consumed_messages_parse_like_live_ones(
    fake: FakeBinance, streams: BinanceStreams, redis_url: str, later: list[Any]
) -> None:
    live = Collector()
    parsed = Collector()
    later.append(consume(redis_url, "rxbinance:btcusdt@trade").pipe(rbo.parse()).subscribe(parsed))
    with publish(streams.trades("BTCUSDT"), redis_url):
        streams.trades("BTCUSDT").pipe(rbo.parse()).subscribe(live)
        fake.wait_for_connections(1)
        step(fake, live, 20)
    parsed.wait_count(len(live.items))
    assert parsed.items == live.items
    assert all(isinstance(t, models.Trade) for t in parsed.items)


def test_start_zero_replays_the_key_and_start_id_resumes_after_it(
    fake: FakeBinance, streams: BinanceStreams, redis_url: str, later: list[Any]
) -> None:
    direct = Collector()
    source = streams.agg_trades("BTCUSDT")
    with publish(source, redis_url):
        source.subscribe(direct)
        fake.wait_for_connections(1)
        step(fake, direct, 30)
    everything = Collector()
    subscription = consume(redis_url, "rxbinance:btcusdt@aggTrade", start="0").subscribe(everything)
    everything.wait_count(len(direct.items))
    assert everything.items == direct.items
    subscription.dispose()
    ids = [i for i, _ in redis_client(redis_url).xrange("rxbinance:btcusdt@aggTrade")]
    after = Collector()
    key = "rxbinance:btcusdt@aggTrade"
    later.append(consume(redis_url, key, start=ids[4].decode()).subscribe(after))
    after.wait_count(len(direct.items) - 5)
    assert after.items == direct.items[5:]


def redis_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url)


def test_consume_is_hot_shared_and_ref_counted(redis_url: str) -> None:
    key = "shared:key"
    first, second = Collector(), Collector()
    a = consume(redis_url, key).subscribe(first)
    b = consume(redis_url, key).subscribe(second)
    assert bridge_threads() == [f"rxbinance-bridge:{key}"]  # one reader for both
    with publish(_of([{"e": "x", "i": i} for i in range(3)]), redis_url, key=key):
        pass
    first.wait_count(3)
    second.wait_count(3)
    assert first.items == second.items == [{"e": "x", "i": i} for i in range(3)]
    a.dispose()
    assert bridge_threads() == [f"rxbinance-bridge:{key}"]  # b still reads
    b.dispose()
    for thread in threading.enumerate():
        if thread.name == f"rxbinance-bridge:{key}":
            thread.join(5)
    assert bridge_threads() == []  # the last dispose stopped the reader


def _of(items: list[Any]) -> Any:
    import reactivex

    return reactivex.from_iterable(items)


def test_models_keep_exact_decimals_and_levels() -> None:
    from rxbinance.bridge._codec import decode, encode_message

    depth = models.DepthUpdate.from_dict(
        {
            "e": "depthUpdate",
            "E": 1,
            "s": "BTCUSDT",
            "U": 1,
            "u": 2,
            "b": [["0.10000000", "1.5"]],
            "a": [["0.20", "0"]],
        }
    )
    quote = models.Quote("BTCUSDT", 7, Decimal("1.10"), Decimal("2"), Decimal("3"), Decimal("4"))
    for value in (depth, quote):
        data, model = encode_message(value)
        fields = {b"d": data, b"t": b"1.0", b"n": b"1", b"s": b""}
        if model is not None:
            fields[b"m"] = model
        back = decode(fields).message
        assert back == value
        assert type(back) is type(value)
    assert (
        str(
            decode({b"d": encode_message(depth)[0], b"m": b"DepthUpdate", b"t": b"1"}).message.bids[
                0
            ][0]
        )
        == "0.10000000"
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"redis_url": "http://localhost"}, "expected redis://"),
        ({"redis_url": "redis://:hunter2@localhost:notaport"}, "bad Redis URL"),
        ({"redis_url": ""}, "redis_url must be"),
        ({"key": ""}, "key must be"),
        ({"start": "yesterday"}, "start must be"),
        ({"group": ""}, "group must be"),
        ({"consumer": "c1"}, "pass group= too"),
        ({"group": "g", "claim_after": 0}, "claim_after must be"),
    ],
)
def test_bad_consume_arguments_raise_value_error(kwargs: dict[str, Any], match: str) -> None:
    arguments: dict[str, Any] = {"redis_url": "redis://127.0.0.1:1", "key": "k", **kwargs}
    with pytest.raises(InvalidInputError, match=match) as info:
        consume(**arguments)
    assert "hunter2" not in str(info.value)


def test_unreachable_redis_is_a_bridge_error_without_the_password(later: list[Any]) -> None:
    from tests.redis_server import free_port

    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    with pytest.raises(BridgeError, match="Redis unreachable") as info:
        publish(_of([]), url)
    assert "hunter2" not in str(info.value)
    assert info.value.unreachable
    errors = Collector()
    later.append(consume(url, "k").subscribe(errors))
    errors.wait_for(lambda c: bool(c.errors))
    assert isinstance(errors.errors[0], BridgeError)
    assert "hunter2" not in str(errors.errors[0])


def test_a_key_of_another_type_is_refused(redis_url: str, later: list[Any]) -> None:
    redis_client(redis_url).set("plain", "x")
    errors = Collector()
    later.append(consume(redis_url, "plain").subscribe(errors))
    errors.wait_for(lambda c: bool(c.errors))
    assert "holds another type than a stream" in str(errors.errors[0])
    publisher = publish(_of([{"e": "x"}]), redis_url, key="plain")
    publisher.dispose()
    assert isinstance(publisher.error, BridgeError)


def test_gap_entries_come_back_as_gaps(redis_url: str, later: list[Any]) -> None:
    from rxbinance.bridge._codec import encode_gap

    client = redis_client(redis_url)
    client.xadd("g", {b"g": encode_gap(5, 9, "why"), b"s": b"btcusdt@trade", b"t": b"2.5"})
    got = Collector()
    later.append(consume(redis_url, "g", start="0").subscribe(got))
    got.wait_count(1)
    assert got.items == [Gap("btcusdt@trade", 2.5, 5, 9, "why")]


def test_keys_default_to_the_binance_stream_name(
    fake: FakeBinance, streams: BinanceStreams, redis_url: str
) -> None:
    # Bare payloads and typed models carry no stream name: it is rebuilt from event and symbol.
    sources = {
        "rxbinance:btcusdt@kline_1s": streams.klines("BTCUSDT", "1s"),
        "rxbinance:btcusdt@trade": streams.trades("BTCUSDT").pipe(rbo.parse()),
        "rxbinance:btcusdt@bookTicker": streams.book_ticker("BTCUSDT"),
        "rxbinance:btcusdt@depth": streams.depth("BTCUSDT", speed=100),
        "rxbinance:unnamed": streams.depth("BTCUSDT", levels=5, speed=100),  # no symbol in it
    }
    direct = Collector()
    counts = dict.fromkeys(sources, 0)
    publishers = []
    for key, source in sources.items():

        def count(_: Any, key: str = key) -> None:
            counts[key] += 1

        publishers.append(publish(source, redis_url))  # first: see the raw round trip
        source.subscribe(count)
        source.subscribe(direct)
    fake.wait_for_connections(len(sources))
    step(fake, direct, 30)
    for publisher in publishers:
        publisher.dispose()
    client = redis_client(redis_url)
    assert all(counts.values())
    assert {key: client.xlen(key) for key in sources} == counts


def test_an_order_book_follows_consumed_depth_events(
    fake: FakeBinance, streams: BinanceStreams, redis_url: str, later: list[Any]
) -> None:
    # The collector publishes the diff depth stream; the book follows the consumed copy, with
    # its snapshots from REST, and every book equals FakeBinance's true book.
    from rxbinance import order_book

    consumed = consume(redis_url, "rxbinance:btcusdt@depth")
    books = Collector()
    later.append(order_book(streams, "BTCUSDT", depth=consumed).subscribe(books))
    direct = Collector()
    depth = streams.depth("BTCUSDT", speed=100)
    with publish(depth, redis_url) as publisher:
        later.append(depth.subscribe(direct))
        fake.wait_for_connections(1, stream="btcusdt@depth@100ms")
        for _ in range(300):  # the snapshot is fetched off the reader: step until synced
            if books.items:
                break
            step(fake, direct, 1)
        books.wait_count(1)
        step(fake, direct, 10)
        assert publisher.flush(10)
        last = fake.with_market(lambda m: m.last_update_id("BTCUSDT"))
        books.wait_for(lambda c: c.items[-1].update_id == last)
    assert not books.errors
    ids = [book.update_id for book in books.items]
    assert ids == sorted(set(ids))
    for book in books.items:
        truth = fake.true_book("BTCUSDT", book.update_id)
        assert book.bids(20) == list(truth.bids[:20])
        assert book.asks(20) == list(truth.asks[:20])
    # Its own book, not the one of the streams' own depth socket.
    assert list(order_book_statistics(streams)) == ["BTCUSDT/1000/100/1"]


def test_a_buffer_outrun_by_the_stream_says_so_in_its_gap(redis_url: str, later: list[Any]) -> None:
    # Redis is up but a burst outruns the writer: what is dropped is a Gap saying why.
    from reactivex.subject import Subject

    source: Subject[Any] = Subject()
    publisher = publish(source, redis_url, key="outrun", buffer=5)
    later.append(publisher)
    gaps: list[Gap] = []
    publisher.events.subscribe(gaps.append)
    assert publisher.flush(10)  # connected before the burst
    for trade_id in range(1, 20_001):
        source.on_next({"e": "trade", "E": 1, "s": "BTCUSDT", "t": trade_id, "p": "1", "q": "1",
                        "T": 1, "m": True, "M": True})  # fmt: skip
    assert publisher.flush(10)
    assert gaps
    assert all(g.reason.startswith("Redis slower than the stream") for g in gaps)
    assert all("trade ids" in g.reason for g in gaps)
