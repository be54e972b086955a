"""FakeBinance in one step: ``fake.streams()`` is a BinanceStreams on every endpoint of the fake.

The pipelines that need REST (order_book, klines_with_history) and user data (WS API on spot,
listen keys on USD-M) run end to end against it, checked against the fake's market; and the
records read as properties.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
import websocket

import rxbinance
from rxbinance import BinanceStreams
from rxbinance.models import Kline
from rxbinance.pipelines import OrderBook
from rxbinance.testing import FakeBinance
from tests.conftest import Collector, rxbinance_threads

KEY, SECRET = "one-step-key", "one-step-secret"
SECOND = 1000


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinance(tick_interval=None, api_keys={KEY: SECRET}) as server:
        yield server
    assert not rxbinance_threads(), "close() left threads behind"


def assert_true_book(fake: FakeBinance, book: OrderBook, top: int = 20) -> None:
    truth = fake.true_book(book.symbol, book.update_id)
    assert book.bids(top) == list(truth.bids[:top]), book.update_id
    assert book.asks(top) == list(truth.asks[:top]), book.update_id


def step_until(fake: FakeBinance, collector: Collector, n: int, limit: int = 600) -> None:
    """Move the paused market until ``collector`` has ``n`` items: a snapshot is fetched off
    the reader thread, so the book syncs on some later event, not on a known one."""
    for _ in range(limit):
        if len(collector.items) >= n:
            return
        fake.step()
    collector.wait_count(n)


# ------------------------------------------------------------------------------ endpoints


def test_spot_streams_use_the_fakes_streams_rest_and_ws_api(fake: FakeBinance) -> None:
    with fake.streams() as streams:
        assert isinstance(streams, BinanceStreams)
        assert (streams.product, streams.ws_url, streams.rest_url, streams.ws_api_url) == (
            "spot",
            fake.ws_url,
            fake.rest_url,
            fake.ws_api_url,
        )


def test_usdm_streams_use_the_fakes_routes_and_never_leave_the_machine(
    fake: FakeBinance,
) -> None:
    with fake.streams(market="usdm") as streams:
        assert (streams.product, streams.ws_url, streams.rest_url) == (
            "usdm",
            fake.ws_url,
            fake.rest_url,
        )
        # The fake simulates no USD-M WebSocket API: the URL is the fake's, which refuses it.
        assert streams.ws_api_url == fake.ws_url + "/ws-fapi/v1"
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(streams.ws_api_url, timeout=5)
        assert refused.value.status_code == 404


def test_keyword_arguments_go_to_binance_streams_and_override(fake: FakeBinance) -> None:
    other = "ws://127.0.0.1:9"
    with fake.streams(max_retries=2, retry_delay=0.05, ws_url=other, api_key=KEY) as streams:
        assert streams.policy.max_retries == 2
        assert streams.policy.retry_delay == 0.05
        assert streams.ws_url == other
        assert streams.rest_url == fake.rest_url  # the others stay the fake's
    with pytest.raises(ValueError, match="coinm"):
        fake.streams(market="coinm")


def test_streams_of_a_fake_that_is_not_running_raise() -> None:
    server = FakeBinance(tick_interval=None)
    with pytest.raises(RuntimeError, match="start"):
        server.streams()


# ------------------------------------------------------------------------------ pipelines


def test_order_book_syncs_from_the_fakes_rest_and_equals_the_true_book(fake: FakeBinance) -> None:
    with fake.streams() as streams:
        books = Collector()
        sub = rxbinance.order_book(streams, "BTCUSDT").subscribe(books)
        fake.wait_for_connections(1, stream="btcusdt@depth@100ms")
        step_until(fake, books, 1)
        fake.step(30)
        last_id = fake.with_market(lambda m: m.last_update_id("BTCUSDT"))
        books.wait_for(lambda c: c.items[-1].update_id == last_id)
        sub.dispose()
    assert not books.errors
    for book in books.items:
        assert_true_book(fake, book)
    depth = [r for r in fake.rest_requests if r.path == "/api/v3/depth"]
    assert depth, "the snapshot came from the fake's REST"
    assert all("symbol=BTCUSDT" in r.query for r in depth)


def test_usdm_order_book_syncs_from_fapi_and_equals_the_true_book(fake: FakeBinance) -> None:
    with fake.streams(market="usdm") as streams:
        books = Collector()
        sub = rxbinance.order_book(streams, "ETHUSDT").subscribe(books)
        (conn,) = fake.wait_for_connections(1, stream="ethusdt@depth@100ms")
        assert conn.path == "/public/ws/ethusdt@depth@100ms"
        step_until(fake, books, 1)
        fake.step(30)
        last_id = fake.with_market(lambda m: m.last_update_id("ETHUSDT"))
        books.wait_for(lambda c: c.items[-1].update_id == last_id)
        sub.dispose()
    assert not books.errors
    for book in books.items:
        assert_true_book(fake, book)
    assert any(r.path == "/fapi/v1/depth" for r in fake.rest_requests)
    assert not any(r.path.startswith("/api/v3/depth") for r in fake.rest_requests)


def test_klines_with_history_takes_history_from_the_fakes_rest(fake: FakeBinance) -> None:
    fake.step(60)  # 6 s of market: history to fetch
    with fake.streams() as streams:
        candles = Collector()
        sub = rxbinance.klines_with_history(streams, "BTCUSDT", "1s", history=4).subscribe(candles)
        candles.wait_count(4)  # the history, before any live candle
        fake.wait_for_connections(1, stream="btcusdt@kline_1s")
        fake.step(30)
        rows = fake.with_market(lambda m: m.rest_klines("BTCUSDT", "1s"))
        last_closed = rows[-2][0]
        candles.wait_for(lambda c: any(k.closed and k.open_time == last_closed for k in c.items))
        sub.dispose()
    assert not candles.errors
    (request,) = [r for r in fake.rest_requests if r.path == "/api/v3/klines"]
    assert "limit=4" in request.query
    emitted: list[Kline] = candles.items
    opens = [k.open_time for k in emitted]
    assert opens == sorted(opens)
    distinct = sorted(set(opens))
    assert distinct == list(range(distinct[0], distinct[-1] + 1, SECOND)), "no gap"
    by_open = {row[0]: row for row in fake.with_market(lambda m: m.rest_klines("BTCUSDT", "1s"))}
    closed = [k for k in emitted if k.closed]
    assert len(closed) >= 3
    assert len({k.open_time for k in closed}) == len(closed), "each candle closes once"
    for candle in closed:
        row = by_open[candle.open_time]
        ohlcv = [candle.open, candle.high, candle.low, candle.close, candle.volume]
        assert ohlcv == [Decimal(x) for x in row[1:6]]
        assert (candle.close_time, candle.trades) == (row[6], row[8])


# ------------------------------------------------------------------------------ user data

EXECUTION = {"e": "executionReport", "E": 1, "s": "ETHBTC", "S": "BUY", "x": "NEW", "i": 7}
FUTURES_ORDER = {"e": "ORDER_TRADE_UPDATE", "E": 1, "T": 1, "o": {"s": "BTCUSDT", "x": "NEW"}}


def test_spot_user_data_over_the_fakes_ws_api(fake: FakeBinance) -> None:
    with fake.streams(api_key=KEY, api_secret=SECRET) as streams:
        got = Collector()
        sub = streams.user().subscribe(got)
        (connection,) = fake.wait_for_user_streams(1, KEY)
        assert connection.kind == "ws-api"
        assert fake.publish_user_event(KEY, EXECUTION) == 1
        got.wait_count(1)
        sub.dispose()
    assert got.items == [EXECUTION]
    assert not got.errors


def test_usdm_user_data_over_the_fakes_listen_keys(fake: FakeBinance) -> None:
    with fake.streams(market="usdm", api_key=KEY, api_secret=SECRET) as streams:
        got = Collector()
        sub = streams.user().subscribe(got)
        (connection,) = fake.wait_for_user_streams(1, KEY)
        assert connection.path.startswith("/private/ws?listenKey=")
        assert fake.publish_user_event(KEY, FUTURES_ORDER) == 1
        got.wait_count(1)
        sub.dispose()
    assert got.items == [FUTURES_ORDER]
    assert any(r.path == "/fapi/v1/listenKey" for r in fake.rest_requests)


# ------------------------------------------------------------------------------ records


def test_open_connections_is_a_property_like_connections(fake: FakeBinance) -> None:
    assert isinstance(type(fake).open_connections, property)
    assert isinstance(type(fake).connections, property)
    assert fake.open_connections == ()
    first = websocket.create_connection(fake.ws_url + "/ws/btcusdt@trade", timeout=5)
    second = websocket.create_connection(fake.ws_url + "/ws/ethusdt@trade", timeout=5)
    fake.wait_for(lambda f: len(f.open_connections) == 2)
    assert [c.path for c in fake.open_connections] == ["/ws/btcusdt@trade", "/ws/ethusdt@trade"]
    first.close()
    fake.wait_for(lambda f: len(f.open_connections) == 1)
    (still_open,) = fake.open_connections
    assert still_open.path == "/ws/ethusdt@trade"
    assert still_open.closed_at is None
    assert [c.path for c in fake.connections] == ["/ws/btcusdt@trade", "/ws/ethusdt@trade"]
    second.close()


def test_the_package_docstring_example_runs() -> None:
    import textwrap

    import rxbinance.testing

    doc = rxbinance.testing.__doc__
    assert doc is not None
    block = doc.split("api_secret=...)``)::\n", 1)[1].split("\nAny other client:", 1)[0]
    assert "fake.streams()" in block
    exec(compile(textwrap.dedent(block), "rxbinance.testing example", "exec"), {})
