"""Market selection: endpoints per market, USD-M streams on their routes, market-only methods.

Routing is checked over real sockets: FakeBinance serves /public and /market like Binance (a
stream on the wrong route connects and delivers nothing), so data arriving proves the route.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import reactivex

from rxbinance import BinanceStreams
from rxbinance.protocol import names
from rxbinance.protocol.endpoints import MARKETS, private_url
from rxbinance.protocol.frames import expected_event
from rxbinance.testing import FakeBinance
from tests.conftest import Collector, rxbinance_threads


@pytest.fixture
def usdm(fake: FakeBinance) -> Iterator[BinanceStreams]:
    with BinanceStreams(
        market="usdm",
        ws_url=fake.ws_url,
        rest_url=fake.rest_url,
        retry_delay=0.05,
        max_retry_delay=0.2,
        stall_timeout=5.0,
    ) as streams:
        yield streams
    assert not rxbinance_threads(), "close() left threads behind"


# -------------------------------------------------------------------------------- endpoints


@pytest.mark.parametrize("market", sorted(MARKETS))
def test_each_market_picks_its_endpoints(market: str) -> None:
    with BinanceStreams(market=market) as streams:
        expected = MARKETS[market]
        assert streams.market == market
        assert streams.ws_url == expected.ws_url
        assert streams.rest_url == expected.rest_url
        assert streams.ws_api_url == expected.ws_api_url
        assert streams.product == ("usdm" if market.startswith("usdm") else "spot")
        assert streams.rest.market == market
        assert streams.rest.base_url == expected.rest_url


def test_the_usdm_endpoints_are_binances() -> None:
    assert MARKETS["usdm"].ws_url == "wss://fstream.binance.com"
    assert MARKETS["usdm"].rest_url == "https://fapi.binance.com"
    assert MARKETS["usdm-testnet"].ws_url == "wss://fstream.binancefuture.com"
    assert MARKETS["spot-demo"].ws_api_url == "wss://demo-ws-api.binance.com/ws-api/v3"


def test_explicit_urls_override_the_market() -> None:
    with BinanceStreams(
        market="usdm", ws_url="ws://h:1/", rest_url="http://h:2/", ws_api_url="ws://h:3/x"
    ) as streams:
        assert (streams.ws_url, streams.rest_url, streams.ws_api_url) == (
            "ws://h:1",
            "http://h:2",
            "ws://h:3/x",
        )
        assert streams.product == "usdm"  # the market still decides the names and routes


def test_an_unknown_market_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'coinm'") as info:
        BinanceStreams(market="coinm")
    assert "'usdm'" in str(info.value)


def test_private_url() -> None:
    assert (
        private_url("wss://fstream.binance.com/", "k+y", ["ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE"])
        == "wss://fstream.binance.com/private/ws?listenKey=k%2By"
        "&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE"
    )
    assert private_url("ws://h", "k") == "ws://h/private/ws?listenKey=k"


# ---------------------------------------------------------------------------- USD-M routes

Call = Callable[[BinanceStreams], reactivex.Observable[Any]]

ROUTED: list[tuple[str, Call, str]] = [
    ("public", lambda s: s.book_ticker("BTCUSDT"), "btcusdt@bookTicker"),
    ("public", lambda s: s.depth("BTCUSDT"), "btcusdt@depth"),
    ("public", lambda s: s.depth("BTCUSDT", 5, 500), "btcusdt@depth5@500ms"),
    ("public", lambda s: s.depth("BTCUSDT", None, 100), "btcusdt@depth@100ms"),
    ("public", lambda s: s.stream("btcusdt@rpiDepth@500ms"), "btcusdt@rpiDepth@500ms"),
    ("market", lambda s: s.agg_trades("BTCUSDT"), "btcusdt@aggTrade"),
    ("market", lambda s: s.klines("BTCUSDT", "1h"), "btcusdt@kline_1h"),
    ("market", lambda s: s.symbol_ticker("BTCUSDT"), "btcusdt@ticker"),
    ("market", lambda s: s.mini_ticker(), "!miniTicker@arr"),
    ("market", lambda s: s.ticker(), "!ticker@arr"),
    ("market", lambda s: s.mark_price("BTCUSDT"), "btcusdt@markPrice"),
    ("market", lambda s: s.mark_price(None, speed=1000), "!markPrice@arr@1s"),
    ("market", lambda s: s.force_orders("BTCUSDT"), "btcusdt@forceOrder"),
    ("market", lambda s: s.force_orders(), "!forceOrder@arr"),
    (
        "market",
        lambda s: s.continuous_klines("BTCUSDT", "PERPETUAL", "1s"),
        "btcusdt_perpetual@continuousKline_1s",
    ),
    ("market", lambda s: s.agg_trades("BTCUSDT_250328"), "btcusdt_250328@aggTrade"),
]


@pytest.mark.parametrize(("route", "call", "name"), ROUTED, ids=[r[2] for r in ROUTED])
def test_usdm_streams_go_to_their_route(
    fake: FakeBinance, usdm: BinanceStreams, route: str, call: Call, name: str
) -> None:
    got = Collector()
    sub = call(usdm).subscribe(got)
    (connection,) = fake.wait_for_connections(1, stream=name)
    assert connection.path.startswith(f"/{route}/ws/")
    # Of the stream's own kind: a payload of another kind is skipped as malformed.
    payload = {"e": expected_event(name), "E": 1, "n": name}
    assert fake.publish(name, payload) == 1  # 0 would mean: wrong route, silent
    got.wait_count(1)
    assert got.items == [payload]
    sub.dispose()


def test_usdm_multiplex_on_one_route_is_one_socket(fake: FakeBinance, usdm: BinanceStreams) -> None:
    got = Collector()
    sub = usdm.multiplex(["btcusdt@markPrice", "btcusdt@aggTrade"]).subscribe(got)
    (connection,) = fake.wait_for_connections(1, stream="btcusdt@markPrice")
    assert connection.path == "/market/stream?streams=btcusdt@aggTrade/btcusdt@markPrice"
    fake.publish("btcusdt@aggTrade", {"e": "aggTrade"})
    got.wait_count(1)
    assert got.items == [{"stream": "btcusdt@aggTrade", "data": {"e": "aggTrade"}}]
    sub.dispose()


def test_usdm_multiplex_across_routes_merges_one_socket_per_route(
    fake: FakeBinance, usdm: BinanceStreams
) -> None:
    got = Collector()
    sub = usdm.multiplex(
        ["btcusdt@bookTicker", "btcusdt@markPrice", "btcusdt@depth@100ms"]
    ).subscribe(got)
    fake.wait_for_connections(1, stream="btcusdt@bookTicker")
    fake.wait_for_connections(1, stream="btcusdt@markPrice")
    paths = sorted(c.path for c in fake.open_connections)
    assert paths == [
        "/market/stream?streams=btcusdt@markPrice",
        "/public/stream?streams=btcusdt@bookTicker/btcusdt@depth@100ms",
    ]
    assert fake.publish("btcusdt@bookTicker", {"e": "bookTicker"}) == 1
    assert fake.publish("btcusdt@markPrice", {"e": "markPriceUpdate"}) == 1
    got.wait_count(2)
    assert sorted(m["stream"] for m in got.items) == ["btcusdt@bookTicker", "btcusdt@markPrice"]
    sub.dispose()
    fake.wait_for(lambda f: not f.open_connections)


def test_usdm_multiplex_allows_200_streams_per_connection(usdm: BinanceStreams) -> None:
    many = [f"s{i}usdt@aggTrade" for i in range(201)]
    with pytest.raises(ValueError, match="at most 200"):
        usdm.multiplex(many)
    usdm.multiplex(many[:200])  # fine (nothing subscribes, nothing opens)


# ----------------------------------------------------------------- market-only methods


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.trades("BTCUSDT"),
        lambda s: s.avg_price("BTCUSDT"),
        lambda s: s.rolling_ticker("BTCUSDT", "1h"),
        lambda s: s.stream("btcusdt@trade"),
        lambda s: s.stream("!ticker_1d@arr"),
        lambda s: s.multiplex(["btcusdt@aggTrade", "btcusdt@avgPrice"]),
        lambda s: s.klines("BTCUSDT", "1s"),
        lambda s: s.depth("BTCUSDT", speed=1000),
    ],
)
def test_spot_only_streams_are_refused_on_usdm(usdm: BinanceStreams, call: Call) -> None:
    with pytest.raises(ValueError, match="'usdm'"):
        call(usdm)


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.mark_price("BTCUSDT"),
        lambda s: s.force_orders(),
        lambda s: s.continuous_klines("BTCUSDT", "perpetual", "1m"),
        lambda s: s.stream("btcusdt@markPrice"),
        lambda s: s.stream("!bookTicker"),
        lambda s: s.depth("BTCUSDT", speed=500),
    ],
)
def test_usdm_only_streams_are_refused_on_spot(streams: BinanceStreams, call: Call) -> None:
    with pytest.raises(ValueError, match="'spot'"):
        call(streams)


def test_errors_say_which_market(streams: BinanceStreams, usdm: BinanceStreams) -> None:
    with pytest.raises(ValueError, match=r"trades\(\) is not available on market 'usdm'"):
        usdm.trades("BTCUSDT")
    with pytest.raises(ValueError, match="is a spot stream: not available on market 'usdm'"):
        usdm.stream("btcusdt@avgPrice")
    with pytest.raises(ValueError, match="USD-M futures stream: not available on market 'spot'"):
        streams.stream("btcusdt@forceOrder")
    with pytest.raises(ValueError, match=r"mark_price\(\) is a USD-M futures stream"):
        streams.mark_price()
    with pytest.raises(ValueError, match=r"'btcusdt@nope'.*market 'usdm'"):
        usdm.stream("btcusdt@nope")


# ------------------------------------------------------------------------ USD-M names


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (names.mark_price_stream("BTCUSDT"), "btcusdt@markPrice"),
        (names.mark_price_stream("BTCUSDT", 1000), "btcusdt@markPrice@1s"),
        (names.mark_price_stream(None), "!markPrice@arr"),
        (names.force_order_stream(None), "!forceOrder@arr"),
        (names.force_order_stream("ethusdt"), "ethusdt@forceOrder"),
        (names.usdm_depth_stream("BTCUSDT"), "btcusdt@depth"),
        (names.usdm_depth_stream("BTCUSDT", 20, 100), "btcusdt@depth20@100ms"),
        (names.usdm_kline_stream("BTCUSDT", "1M"), "btcusdt@kline_1M"),
        (
            names.continuous_kline_stream("ETHUSDT", "current_quarter", "5m"),
            "ethusdt_current_quarter@continuousKline_5m",
        ),
        (
            names.continuous_kline_stream("BTCUSDT", "TRADIFI_PERPETUAL", "1s"),
            "btcusdt_tradifi_perpetual@continuousKline_1s",
        ),
    ],
)
def test_usdm_builders(built: str, expected: str) -> None:
    assert built == expected
    assert names.validate_usdm_stream_name(built) == built


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda: names.continuous_kline_stream("BTCUSDT", "quarterly", "1m"), "'quarterly'"),
        (lambda: names.continuous_kline_stream("BTCUSDT", "perpetual", "2m"), "'2m'"),
        (lambda: names.continuous_kline_stream("BTCUSDT_250328", "perpetual", "1m"), "BTCUSDT_"),
        (lambda: names.usdm_kline_stream("BTCUSDT", "1s"), "'1s'"),
        (lambda: names.mark_price_stream("BTCUSDT", 500), "500"),
        (lambda: names.usdm_depth_stream("BTCUSDT", 15), "15"),
        (lambda: names.usdm_depth_stream("BTCUSDT", None, 1000), "1000"),
        (lambda: names.force_order_stream("BTC/USDT"), "'BTC/USDT'"),
    ],
)
def test_usdm_bad_input_names_the_value(call: Callable[[], str], named: str) -> None:
    with pytest.raises(ValueError, match="invalid") as info:
        call()
    assert named in str(info.value)


def test_contract_types_and_continuous_intervals() -> None:
    assert names.CONTRACT_TYPES == (
        "perpetual",
        "current_quarter",
        "next_quarter",
        "tradifi_perpetual",
    )
    assert "1s" in names.CONTINUOUS_KLINE_INTERVALS
    assert "1s" not in names.USDM_KLINE_INTERVALS
    for interval in names.CONTINUOUS_KLINE_INTERVALS:
        name = names.continuous_kline_stream("BTCUSDT", "perpetual", interval)
        assert names.usdm_route(name) == "market"
