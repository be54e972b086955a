"""Stream names and validation: table-driven, no sockets."""

from __future__ import annotations

import pytest

from rxbinance.errors import InvalidInputError
from rxbinance.protocol import names
from rxbinance.protocol.endpoints import combined_url, endpoints_for, raw_url
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
