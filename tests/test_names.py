"""Stream names and validation: table-driven, no sockets."""

from __future__ import annotations

import pytest

from rxbinance.errors import InvalidInputError
from rxbinance.protocol import names
from rxbinance.protocol.endpoints import Product, combined_url, endpoints_for, raw_url
from rxbinance.protocol.frames import FrameKind, classify


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (names.trade_stream("BNBBTC"), "bnbbtc@trade"),
        (names.trade_stream("bnbBTC"), "bnbbtc@trade"),
        (names.agg_trade_stream("BTCUSDT"), "btcusdt@aggTrade"),
        (names.kline_stream("BTCUSDT"), "btcusdt@kline_1m"),
        (names.kline_stream("BTCUSDT", "1M"), "btcusdt@kline_1M"),
        (names.kline_stream("BTCUSDT", "1s"), "btcusdt@kline_1s"),
        (names.depth_stream("BTCUSDT"), "btcusdt@depth"),
        (names.depth_stream("BTCUSDT", speed=100), "btcusdt@depth@100ms"),
        (names.depth_stream("BTCUSDT", 5), "btcusdt@depth5"),
        (names.depth_stream("BTCUSDT", 20, 100), "btcusdt@depth20@100ms"),
        (names.symbol_ticker_stream("ETHBTC"), "ethbtc@ticker"),
        (names.rolling_ticker_stream("ETHBTC", "4h"), "ethbtc@ticker_4h"),
        (names.rolling_ticker_stream(None, "1d"), "!ticker_1d@arr"),
        (names.mini_ticker_stream(None), "!miniTicker@arr"),
        (names.mini_ticker_stream("ETHBTC"), "ethbtc@miniTicker"),
        (names.book_ticker_stream("ETHBTC"), "ethbtc@bookTicker"),
        (names.avg_price_stream("ETHBTC"), "ethbtc@avgPrice"),
        (names.trade_stream("1000SATSUSDT"), "1000satsusdt@trade"),
        (names.trade_stream("币安人生USDT"), "币安人生usdt@trade"),
    ],
)
def test_builders(built: str, expected: str) -> None:
    assert built == expected
    assert names.validate_stream_name(built) == built


@pytest.mark.parametrize("interval", names.KLINE_INTERVALS)
def test_every_kline_interval_is_accepted(interval: str) -> None:
    assert names.kline_stream("BTCUSDT", interval).endswith(f"@kline_{interval}")


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda: names.trade_stream(""), "''"),
        (lambda: names.trade_stream("BTC USDT"), "'BTC USDT'"),
        (lambda: names.trade_stream("btc@usdt"), "'btc@usdt'"),
        (lambda: names.trade_stream("BTC/USDT"), "'BTC/USDT'"),
        (lambda: names.trade_stream(None), "None"),  # type: ignore[arg-type]
        (lambda: names.trade_stream("X" * 33), "'XXXX"),
        (lambda: names.kline_stream("BTCUSDT", "2m"), "'2m'"),
        (lambda: names.kline_stream("BTCUSDT", "1H"), "'1H'"),
        (lambda: names.depth_stream("BTCUSDT", 15), "15"),
        (lambda: names.depth_stream("BTCUSDT", True), "True"),  # type: ignore[arg-type]
        (lambda: names.depth_stream("BTCUSDT", None, 250), "250"),
        (lambda: names.rolling_ticker_stream("BTCUSDT", "2h"), "'2h'"),
    ],
)
def test_bad_input_names_the_value(call: object, named: str) -> None:
    with pytest.raises(ValueError, match="invalid") as info:
        call()  # type: ignore[operator]
    assert named in str(info.value)
    assert isinstance(info.value, InvalidInputError)


def test_interval_error_lists_the_allowed_values() -> None:
    with pytest.raises(ValueError, match="'2m'") as info:
        names.kline_stream("BTCUSDT", "2m")
    for interval in names.KLINE_INTERVALS:
        assert repr(interval) in str(info.value)


@pytest.mark.parametrize(
    "name",
    [
        "btcusdt@trade",
        "btcusdt@aggTrade",
        "btcusdt@blockTrade",
        "btcusdt@referencePrice",
        "btcusdt@kline_1M",
        "btcusdt@kline_1d@+08:00",
        "btcusdt@depth",
        "btcusdt@depth@100ms",
        "btcusdt@depth10@100ms",
        "btcusdt@ticker_1h",
        "!ticker_4h@arr",
        "!miniTicker@arr",
    ],
)
def test_valid_stream_names(name: str) -> None:
    assert names.validate_stream_name(name) == name


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("BTCUSDT@trade", "lowercase"),
        ("btcusdt@aggtrade", "aggTrade"),
        ("btcusdt@kline_2m", "kline_<interval>"),
        ("btcusdt@depth15", "depth"),
        ("btcusdt", "<symbol>@<kind>"),
        ("", "non-empty"),
        ("!ticker@arr", "retired"),
        ("!bookTicker", "removed"),
        ("btcusdt@trade/ethusdt@trade", "<symbol>@<kind>"),
    ],
)
def test_invalid_stream_names(name: str, hint: str) -> None:
    with pytest.raises(ValueError, match="stream") as info:
        names.validate_stream_name(name)
    assert hint in str(info.value)


def test_validate_stream_names_sorts_and_dedupes() -> None:
    assert names.validate_stream_names(["b@trade", "a@trade", "b@trade"]) == [
        "a@trade",
        "b@trade",
    ]
    with pytest.raises(ValueError, match="at least one"):
        names.validate_stream_names([])
    with pytest.raises(ValueError, match="list"):
        names.validate_stream_names("btcusdt@trade")


def test_urls() -> None:
    assert raw_url("ws://h:1/", "btcusdt@trade") == "ws://h:1/ws/btcusdt@trade"
    assert raw_url("ws://h:1", "!miniTicker@arr") == "ws://h:1/ws/!miniTicker@arr"
    assert (
        combined_url("ws://h:1", ["a@trade", "b@depth5"])
        == "ws://h:1/stream?streams=a@trade/b@depth5"
    )
    assert endpoints_for("spot").ws_url == "wss://stream.binance.com:9443"
    with pytest.raises(ValueError, match="'nope'"):
        endpoints_for("nope")


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ({"e": "trade", "p": "1"}, FrameKind.DATA),
        ({"u": 1, "s": "BNBUSDT", "b": "1", "B": "1", "a": "2", "A": "1"}, FrameKind.DATA),
        ({"lastUpdateId": 1, "bids": [], "asks": []}, FrameKind.DATA),
        ([{"e": "24hrMiniTicker"}], FrameKind.DATA),
        ({"stream": "a@trade", "data": {"e": "trade"}}, FrameKind.DATA),
        ({"e": "serverShutdown", "E": 1}, FrameKind.SERVER_SHUTDOWN),
        ({"stream": "!serverShutdown", "data": {"e": "serverShutdown"}}, FrameKind.SERVER_SHUTDOWN),
        ({"result": None, "id": 1}, FrameKind.CONTROL_REPLY),
        ({"error": {"code": 2, "msg": "Invalid request"}, "id": None}, FrameKind.CONTROL_REPLY),
    ],
)
def test_classify(message: object, kind: FrameKind) -> None:
    assert classify(message) is kind


# -- market-aware validation: one function for both products ------------------------------

SPOT_INTERVALS = (
    "'1s', '1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '1d', '3d', '1w', "
    "'1M'"
)
USDM_INTERVALS = SPOT_INTERVALS.removeprefix("'1s', ")


@pytest.mark.parametrize(
    ("product", "name"),
    [
        ("spot", "btcusdt@trade"),
        ("spot", "btcusdt@kline_1s"),
        ("spot", "btcusdt@kline_1d@+08:00"),
        ("spot", "btcusdt@depth"),
        ("spot", "btcusdt@depth@100ms"),
        ("spot", "btcusdt@depth5@100ms"),
        ("spot", "btcusdt@ticker_4h"),
        ("spot", "!ticker_1d@arr"),
        ("spot", "!miniTicker@arr"),
        ("spot", "币安人生usdt@aggTrade"),
        ("usdm", "btcusdt@aggTrade"),
        ("usdm", "btcusdt@kline_1M"),
        ("usdm", "btcusdt@depth"),
        ("usdm", "btcusdt@depth@100ms"),
        ("usdm", "btcusdt@depth@500ms"),
        ("usdm", "btcusdt@depth20@500ms"),
        ("usdm", "btcusdt@rpiDepth@500ms"),
        ("usdm", "btcusdt@markPrice@1s"),
        ("usdm", "btcusdt_250328@bookTicker"),
        ("usdm", "btcusdt_perpetual@continuousKline_1s"),
        ("usdm", "!ticker@arr"),
        ("usdm", "!bookTicker"),
        ("usdm", "!markPrice@arr@1s"),
    ],
)
def test_market_aware_valid_names(product: Product, name: str) -> None:
    assert names.validate_stream_name(name, product) == name
    assert names.validate_stream_names([name, name], product=product) == [name]


@pytest.mark.parametrize(
    ("product", "name", "fragments"),
    [
        # a parameter out of range: the value, and the allowed values of that product
        ("spot", "btcusdt@kline_2m", ["'btcusdt@kline_2m'", "interval", "'2m'", SPOT_INTERVALS]),
        ("usdm", "btcusdt@kline_2m", ["USD-M", "'2m'", f"allowed are {USDM_INTERVALS}"]),
        ("usdm", "btcusdt@kline_1s", ["'1s'", USDM_INTERVALS, "continuousKline_1s"]),
        ("spot", "btcusdt@depth15", ["'btcusdt@depth15'", "levels", "'15'", "5, 10, 20"]),
        ("usdm", "btcusdt@depth15@500ms", ["'15'", "5, 10, 20"]),
        (
            "spot",
            "btcusdt@depth@250ms",
            ["'@250ms'", "on spot", "'@100ms' (100 ms) or no suffix (1000 ms)"],
        ),
        (
            "usdm",
            "btcusdt@depth@1000ms",
            ["'@1000ms'", "'@100ms' (100 ms), no suffix (250 ms) or '@500ms' (500 ms)"],
        ),
        ("usdm", "btcusdt@depth10@250ms", ["'@250ms'", "no suffix (250 ms)"]),
        ("spot", "btcusdt@ticker_2h", ["'2h'", "'1h', '4h', '1d'"]),
        ("spot", "!ticker_2h@arr", ["'2h'", "'1h', '4h', '1d'"]),
        ("spot", "btcusdt@kline_1m@+09:00", ["'@+09:00'", "'@+08:00'"]),
        ("usdm", "btcusdt@kline_1m@+08:00", ["'@+08:00'", "no suffix"]),
        ("usdm", "btcusdt@markPrice@3s", ["'@3s'", "'@1s' (1000 ms) or no suffix (3000 ms)"]),
        ("usdm", "btcusdt_quarterly@continuousKline_1m", ["'quarterly'", "'perpetual'"]),
        ("usdm", "btcusdt_perpetual@continuousKline_2m", ["'2m'", SPOT_INTERVALS]),
        # a stream of the other product says so
        ("usdm", "btcusdt@trade", ["'btcusdt@trade' is a spot stream", "not available on USD-M"]),
        ("usdm", "btcusdt@ticker_1h", ["is a spot stream"]),
        ("spot", "btcusdt@markPrice", ["is a USD-M futures stream", "not available on spot"]),
        ("spot", "!forceOrder@arr", ["is a USD-M futures stream"]),
        # retired spot streams name their replacement (both live on USD-M)
        ("spot", "!ticker@arr", ["retired", "'!ticker_1d@arr'"]),
        ("spot", "!bookTicker", ["removed", "'<symbol>@bookTicker'"]),
        # case
        ("spot", "BTCUSDT@trade", ["lowercase: 'btcusdt'"]),
        ("usdm", "BTCUSDT@kline_2m", ["lowercase: 'btcusdt'", "'2m'"]),
        ("spot", "btcusdt@aggtrade", ["'aggtrade' is spelt 'aggTrade'"]),
        ("usdm", "btcusdt@bookticker", ["'bookticker' is spelt 'bookTicker'"]),
        # nothing recognisable: every shape of that product
        ("spot", "btcusdt@nope", ["'btcusdt@nope'", "trade, aggTrade", "depth[5|10|20][@100ms]"]),
        ("usdm", "btcusdt@nope", ["'btcusdt@nope'", "markPrice[@1s]", "[@500ms|@100ms]"]),
        ("spot", "btc-usdt@kline_2m", ["'btc-usdt@kline_2m'", "<symbol>@<kind>"]),
        ("usdm", "", ["non-empty"]),
    ],
)
def test_market_aware_invalid_names(product: Product, name: str, fragments: list[str]) -> None:
    with pytest.raises(InvalidInputError) as info:
        names.validate_stream_name(name, product)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    with pytest.raises(InvalidInputError) as many:
        names.validate_stream_names(["btcusdt@bookTicker", name], product=product)
    assert str(many.value) == message


def test_the_market_is_named_when_given() -> None:
    with pytest.raises(InvalidInputError) as other:
        names.validate_stream_name("btcusdt@trade", "usdm", market="usdm-testnet")
    assert str(other.value) == (
        "stream 'btcusdt@trade' is a spot stream: not available on market 'usdm-testnet'"
    )
    with pytest.raises(InvalidInputError) as bad:
        names.validate_stream_names(["btcusdt@depth15"], product="spot", market="spot-demo")
    assert str(bad.value).endswith(" (market 'spot-demo')")
    assert "5, 10, 20" in str(bad.value)
    with pytest.raises(InvalidInputError, match="invalid product 'coinm'"):
        names.validate_stream_name("btcusdt@trade", "coinm")  # type: ignore[arg-type]


def test_the_usdm_and_default_forms_give_the_same_answers() -> None:
    for name in ("btcusdt@depth@1000ms", "btcusdt@trade", "btcusdt@markPrice"):
        for product, short in (("usdm", names.validate_usdm_stream_name), ("spot", None)):
            try:
                expected = names.validate_stream_name(name, product)  # type: ignore[arg-type]
            except InvalidInputError as exc:
                expected = str(exc)
            call = short or names.validate_stream_name
            try:
                got = call(name)
            except InvalidInputError as exc:
                got = str(exc)
            assert got == expected


@pytest.mark.parametrize(
    ("product", "speeds", "default", "intervals"),
    [
        ("spot", (100, 1000), 1000, names.KLINE_INTERVALS),
        ("usdm", (100, 250, 500), 250, names.USDM_KLINE_INTERVALS),
    ],
)
def test_per_product_values(
    product: Product, speeds: tuple[int, ...], default: int, intervals: tuple[str, ...]
) -> None:
    assert names.depth_speeds(product) == speeds
    assert names.default_depth_speed(product) == default
    assert names.kline_intervals(product) == intervals
    for speed in speeds:  # every allowed speed builds a name its product accepts
        built = names.depth_stream_for(product, "BTCUSDT", None, speed)
        assert names.validate_stream_name(built, product) == built
        assert ("@" in built.partition("@")[2]) is (speed != default)


@pytest.mark.parametrize(
    ("product", "levels", "speed", "expected"),
    [
        ("spot", None, None, "btcusdt@depth"),
        ("spot", 5, 100, "btcusdt@depth5@100ms"),
        ("usdm", None, None, "btcusdt@depth"),
        ("usdm", None, 500, "btcusdt@depth@500ms"),
        ("usdm", 20, 100, "btcusdt@depth20@100ms"),
    ],
)
def test_depth_stream_for(
    product: Product, levels: int | None, speed: int | None, expected: str
) -> None:
    assert names.depth_stream_for(product, "BTCUSDT", levels, speed) == expected


@pytest.mark.parametrize(
    ("product", "speed", "message"),
    [
        ("usdm", 1000, "invalid depth speed 1000 ms on USD-M futures: allowed are 100, 250, 500"),
        ("spot", 250, "invalid depth speed 250 ms on spot: allowed are 100, 1000"),
        ("spot", 500, "invalid depth speed 500 ms on spot: allowed are 100, 1000"),
        ("spot", True, "invalid depth speed True ms on spot: allowed are 100, 1000"),
    ],
)
def test_depth_stream_for_refuses_speeds_of_the_other_product(
    product: Product, speed: int, message: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        names.depth_stream_for(product, "BTCUSDT", None, speed)
    assert str(info.value) == message
